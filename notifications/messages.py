"""What a notification says, composed when it is sent (so the time left is current): the
subject and text of an e-mail, a Slack message, the JSON body of a signed webhook, and
the `hitl.decided` body of an engine webhook.

Every message carries the action's title, type, risk level, deal, the time left and a
link to its detail page (HITL_BASE_URL + /actions/<action_id>/).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.urls import reverse

from notifications.models import Notification, NotificationEvent, NotificationKind

SUBJECT_PREFIX = "[ZakOps HITL]"


@dataclass(frozen=True)
class Message:
    subject: str
    text: str  # plain text: the e-mail body
    slack_text: str  # Slack mrkdwn
    payload: dict  # the signed webhook's JSON body


def time_left(left: timedelta) -> str:
    """'3 h 20 min', '45 min', 'under a minute', or 'none' once the deadline has passed."""
    seconds = int(left.total_seconds())
    if seconds <= 0:
        return "none"
    if seconds < 60:
        return "under a minute"
    hours, minutes = divmod(seconds // 60, 60)
    if hours >= 48:
        return f"{hours // 24} days {hours % 24} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def detail_url(action_id: str) -> str:
    return settings.HITL_BASE_URL + reverse("review-detail", args=[action_id])


def _one_line(text: str, limit: int = 200) -> str:
    """Header-safe: a subject may not hold a line break."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def message_for(notification: Notification, *, now: datetime) -> Message:
    """The message of `notification` (its event, request, action and deal loaded)."""
    event = notification.event
    request = event.request
    action = request.action
    title = _one_line(action.title or action.action_type)
    left = time_left(request.expires_at - now)
    link = detail_url(action.action_id)
    subject, headline = _subject_and_headline(event, title=title, left=left)
    facts = _facts(event, title=title, left=left)
    text = "\n".join(
        [headline, "", *(f"{name}: {value}" for name, value in facts), "", f"Open it: {link}", "",
         "You can choose what you are sent on your profile page: " + settings.HITL_BASE_URL + reverse("profile")]
    )
    slack_text = "\n".join(
        [f"*{_slack_escape(subject)}*", _slack_escape(headline),
         " · ".join(f"{name}: {_slack_escape(str(value))}" for name, value in facts[1:5]),
         f"<{link}|Open {_slack_escape(action.action_id)} in ZakOps HITL>"]
    )
    payload = {
        "type": "hitl.notification",
        "kind": event.kind,
        "notification_id": notification.pk,
        "subject": subject,
        "text": "\n".join([headline, *(f"{name}: {value}" for name, value in facts), link]),
        "url": link,
        "time_left": left,
        **_payload_subjects(event, now=now),
    }
    return Message(subject=f"{SUBJECT_PREFIX} {subject}", text=text, slack_text=slack_text, payload=payload)


def _subject_and_headline(event, *, title: str, left: str) -> tuple[str, str]:
    """What happened, in the subject line and in the first line of the text."""
    request = event.request
    level = request.risk_level
    if event.kind == NotificationKind.REQUESTED:
        return f"Approval needed ({level}): {title}", "An action waits for your decision."
    if event.kind == NotificationKind.QUARANTINED:
        return (
            f"Quarantined ({level}): {title}",
            f"{event.actor_name or 'A reviewer'} quarantined this request: an admin decides it now.",
        )
    if event.kind == NotificationKind.REMINDER:
        return f"Reminder, {left} left ({level}): {title}", f"Nobody has decided this request yet, and it expires in {left}."
    waited = time_left(request.expires_at - request.created_at)
    return (
        f"Expired undecided ({level}): {title}",
        f"Nobody decided this request in the {waited} it was open: it expired at {_when(request.expires_at)} "
        "and the action was rejected, so it will not run.",
    )


def _facts(event, *, title: str, left: str) -> list[tuple[str, str]]:
    """The (name, value) lines every message lists about the request."""
    request = event.request
    action = request.action
    deal = action.deal
    deadline = f"expires {_when(request.expires_at)}" if left != "none" else f"expired {_when(request.expires_at)}"
    facts = [
        ("Title", title),
        ("Type", action.action_type),
        ("Risk level", f"{request.risk_level} (score {request.score:.2f})"),
        ("Deal", f"{deal.display_name or deal.canonical_name} ({deal.deal_id})" if deal else "none"),
        ("Time left", f"{left} ({deadline})"),
        ("Requested by", request.requested_by or request.requested_via or "—"),
    ]
    if event.kind == NotificationKind.QUARANTINED and event.reason:
        facts.append(("Reason", event.reason))
    if event.kind == NotificationKind.EXPIRED:
        facts.append(("Opened", _when(request.created_at)))
    return facts


def _payload_subjects(event, *, now: datetime) -> dict:
    """The webhook body's structured part: the action, the request, who and why."""
    request = event.request
    action = request.action
    deal = action.deal
    return {
        "action": {
            "action_id": action.action_id, "title": action.title, "action_type": action.action_type,
            "deal_id": action.deal_id, "deal_name": (deal.display_name or deal.canonical_name) if deal else None,
        },
        "request": {
            "request_id": str(request.id), "state": request.state, "risk_level": request.risk_level,
            "score": request.score, "expires_at": request.expires_at.isoformat(),
            "seconds_left": max(0, int((request.expires_at - now).total_seconds())),
            "requested_by": request.requested_by or None,
        },
        "reason": event.reason or None,
        "actor": event.actor_name or None,
    }


DECIDED_EVENT = "hitl.decided"
APPROVED = "approved"  # the one end whose inputs the engine runs


def decision_event_id(event: NotificationEvent) -> str:
    """The id of a decision's event: the same on every try and every engine channel, and
    different from any other request's, so a receiver can drop a second delivery."""
    return str(uuid.uuid5(event.request_id, DECIDED_EVENT))


def decision_payload(event: NotificationEvent) -> dict:
    """The `hitl.decided` body: how the request ended (approved, rejected, expired or
    cancelled), by whom, when and why, and for an approval the inputs the engine is to
    run, a reviewer's edits included."""
    request = event.request
    action = request.action
    return {
        "type": DECIDED_EVENT,
        "event_id": decision_event_id(event),
        "action_id": action.action_id,
        "request_id": str(request.id),
        "round": request.round,
        "action_type": action.action_type,
        "risk_level": request.risk_level,
        "state": request.state,
        "approved_inputs": (action.inputs or {}) if request.state == APPROVED else None,
        "edited": request.original_inputs is not None,
        "reason": request.reason or None,
        "decided_by": request.decided_by_name or None,
        "at": request.decided_at.isoformat() if request.decided_at else None,
    }
