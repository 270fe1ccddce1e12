"""Writes of the notifications: the rows an approval transition writes in its own
transaction, the reminders, delivery by the worker (`hitl_notify`), people's choices and
the channels admins configure.

Delivery never runs inside a transition: a request or decision only writes rows, and a
dead webhook costs the worker a timeout, never a reviewer or the engine anything. A pass
of the worker looks up what is due and, one notification at a time, claims it with a
compare-and-set `UPDATE … WHERE <still due>` (so of several workers exactly one gets
it), sends it with no transaction open, and records the outcome only if it still holds
it. The hold lasts as long as the send can (`hold_for`): a worker that died mid-send
leaves the one message in hand to be taken again after that, and the rest untouched.
"""

import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.selectors import Actor
from approvals.models import OPEN_STATES, ApprovalRequest
from common.errors import NotFound
from notifications.messages import decision_payload, message_for
from notifications.models import (
    DECIDED,
    SIGNED_KINDS,
    Channel,
    ChannelKind,
    Notification,
    NotificationEvent,
    NotificationKind,
    NotificationStatus,
)
from notifications.selectors import channels_for, preferences_of, recipients_for, reminder_requests_due
from notifications.transports import DeliveryError, email_send, engine_post, slack_post, webhook_post, webhook_target
from zakops.models import Action, Operator

logger = logging.getLogger(__name__)

# A worker holds a notification for the longest its send can take (hold_for) plus this,
# for the database round trips around it: a live hold is never taken over.
HOLD_MARGIN = timedelta(seconds=5)
SMTP_STEPS = 10  # waits of an SMTP session, each up to the timeout: connect, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, …
MAX_RETRY_DELAY = timedelta(hours=1)


# --- written with the event ----------------------------------------------------------


def _remind_at(request: ApprovalRequest):
    share = settings.HITL_NOTIFY_REMINDER_PERCENT / 100
    if not share:
        return None
    return request.expires_at - (request.expires_at - request.created_at) * share


def notifications_write(
    *, kind: str, request: ApprovalRequest, action: Action, actor: Actor | None = None, reason: str = ""
) -> NotificationEvent | None:
    """Record that `kind` happened to `request` and write its notifications: an e-mail to
    each person to tell and one post to each webhook channel that takes it. Runs in the
    caller's transaction, so the rows exist exactly when the transition does. None when
    the event was written already (two workers finding the same reminder), and for a
    decision that no engine webhook takes."""
    channels = channels_for(kind=kind, risk_level=request.risk_level)
    if kind == DECIDED and not channels:  # no engine webhook: a decision writes no rows
        return None
    try:
        with transaction.atomic():
            event = NotificationEvent.objects.create(
                request=request, kind=kind, actor_name=actor.name if actor else "", reason=reason,
                remind_at=_remind_at(request) if kind == NotificationKind.REQUESTED else None,
            )
    except IntegrityError:
        return None
    now = timezone.now()
    rows = []
    for channel in channels:
        recipients = (
            recipients_for(kind=kind, request=request, action=action, actor=actor)
            if channel.kind == ChannelKind.EMAIL else [""]
        )
        rows += [
            Notification(
                event=event, channel=channel, recipient=recipient, max_attempts=settings.HITL_NOTIFY_MAX_ATTEMPTS,
                next_attempt_at=now, created_at=now,
            )
            for recipient in recipients
        ]
    Notification.objects.bulk_create(rows)
    return event


def notifications_remind(*, now=None) -> int:
    """Write the reminders that fall due: for each open request with its configured share
    of time left (HITL_NOTIFY_REMINDER_PERCENT) and no reminder yet. Once per request,
    however many workers look at once (one event per request and kind)."""
    now = now or timezone.now()
    written = 0
    for request_id in reminder_requests_due(now=now):
        with transaction.atomic():
            request = (
                ApprovalRequest.objects.select_related("action")
                .filter(pk=request_id, state__in=OPEN_STATES, expires_at__gt=now)
                .first()
            )
            if request and notifications_write(kind=NotificationKind.REMINDER, request=request, action=request.action):
                written += 1
    return written


# --- delivery ------------------------------------------------------------------------


@dataclass
class DeliveryCounts:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.retrying + self.failed + self.skipped

    def add(self, other: "DeliveryCounts") -> None:
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.skipped += other.skipped


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure: the base, doubled each time."""
    return min(timedelta(seconds=settings.HITL_NOTIFY_RETRY_SECONDS * 2 ** (attempts - 1)), MAX_RETRY_DELAY)


def _due(now) -> Q:
    return Q(status=NotificationStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=NotificationStatus.SENDING, claimed_until__lte=now
    )


def hold_for(kind: str) -> timedelta:
    """How long a worker holds a notification it is about to send: the longest the send
    can take, plus HOLD_MARGIN. A post has one timeout in all; an SMTP session one per step."""
    timeout = settings.HITL_NOTIFY_TIMEOUT_SECONDS
    return timedelta(seconds=timeout * (SMTP_STEPS if kind == ChannelKind.EMAIL else 1)) + HOLD_MARGIN


class _PassClock:
    """The time during a pass: the `now` it started with (a test picks its own), moved on
    by the time spent since, as a pass may send for minutes."""

    def __init__(self, now):
        self.start, self._started = now, time.monotonic()

    def __call__(self):
        return self.start + timedelta(seconds=time.monotonic() - self._started)


class _HoldLost(Exception):
    """Another worker took the notification over: it is theirs to send."""


@dataclass
class _Held:
    """The one notification a worker holds, and the token that proves it."""

    notification: Notification
    token: uuid.UUID

    def _mine(self):
        return Notification.objects.filter(pk=self.notification.pk, claim=self.token, status=NotificationStatus.SENDING)

    def renew(self, until) -> None:
        if not self._mine().update(claimed_until=until):
            raise _HoldLost

    def settle(self, **changes) -> bool:
        """Record an outcome, if this worker still holds it."""
        if self._mine().update(claim=None, claimed_until=None, **changes):
            return True
        logger.warning("notification %s: its hold ran out before the outcome was recorded", self.notification.pk)
        return False


def _claim(*, pk: int, kind: str, now, clock: _PassClock) -> _Held | None:
    """Take one notification, if it is still due: a compare-and-set, so of several workers
    exactly one gets it. None when another worker was first."""
    token = uuid.uuid4()
    taken = Notification.objects.filter(_due(now), pk=pk).update(
        status=NotificationStatus.SENDING, claim=token, claimed_until=clock() + hold_for(kind),
        attempts=F("attempts") + 1, last_attempt_at=timezone.now(),
    )
    if not taken:
        return None
    notification = Notification.objects.select_related("channel", "event__request__action__deal").get(pk=pk)
    return _Held(notification, token)


def _why_not_send(notification: Notification, now) -> str:
    request = notification.event.request
    if not notification.channel.enabled:
        return "Not sent: the channel was disabled."
    if notification.event.kind not in (NotificationKind.EXPIRED, DECIDED):  # news of an end is never stale
        if not request.is_open:
            return f"Not sent: the request was {request.state} before it went out."
        if request.expires_at <= now:
            return "Not sent: the request expired before it went out."
    return ""


def _send(held: _Held, clock: _PassClock) -> None:
    notification = held.notification
    channel = notification.channel
    if channel.kind == ChannelKind.EMAIL:
        email_send(to=notification.recipient, message=message_for(notification, now=clock()), notification_id=notification.pk)
        return
    target = webhook_target(channel.url)
    # Resolving the name may have taken a while: a full post's time from here, or nothing
    # is sent if another worker took the notification over meanwhile.
    held.renew(clock() + hold_for(channel.kind))
    if channel.kind == ChannelKind.ENGINE:
        engine_post(target=target, secret=channel.signing_secret, payload=decision_payload(notification.event))
    elif channel.kind == ChannelKind.SLACK:
        slack_post(target=target, message=message_for(notification, now=clock()))
    else:
        message = message_for(notification, now=clock())
        webhook_post(target=target, secret=channel.signing_secret, message=message, notification_id=notification.pk)


def _postpone_channel(channel: Channel, *, now, retry_at, error: str) -> int:
    """The channel did not answer: what else waits for it waits for its next try, so a
    dead receiver costs a pass one timeout, not one per message."""
    return Notification.objects.filter(
        channel=channel, status=NotificationStatus.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=retry_at, last_error=f"Not tried: the channel did not answer just before ({error}).")


def _deliver_one(held: _Held, *, now, clock: _PassClock, counts: DeliveryCounts, down: set) -> None:
    """Send one held notification and record what happened. A channel that does not
    answer goes into `down`: the pass tries it no more."""
    notification = held.notification
    event, channel = notification.event, notification.channel
    where = notification.recipient or f"channel {channel.name!r} ({channel.kind})"
    about = f"notification {notification.pk} ({event.kind}, {event.request.action_id}) to {where}"
    skip = _why_not_send(notification, clock())
    if skip:
        if held.settle(status=NotificationStatus.SKIPPED, last_error=skip):
            counts.skipped += 1
            logger.info("%s skipped: %s", about, skip)
        return
    try:
        _send(held, clock)
    except _HoldLost:
        logger.warning("%s: another worker took it over before it was sent", about)
        return
    except DeliveryError as exc:
        if exc.refused:  # an address we do not send to: retrying would change nothing
            if held.settle(status=NotificationStatus.FAILED, last_error=str(exc)):
                counts.failed += 1
                logger.error("%s refused: %s", about, exc)
            return
        error, unreachable = str(exc), exc.unreachable
    except Exception as exc:  # one broken message must not stop the rest of the pass
        error, unreachable = f"unexpected {type(exc).__name__}", False
        logger.error("%s: %s while composing or sending", about, error)
    else:
        if held.settle(status=NotificationStatus.SENT, sent_at=timezone.now(), last_error=""):
            counts.sent += 1
            logger.info("%s sent (attempt %s)", about, notification.attempts)
        return

    delay = retry_delay(notification.attempts)
    if unreachable:
        down.add(channel.pk)
        counts.retrying += _postpone_channel(channel, now=now, retry_at=now + delay, error=error)
    if notification.attempts >= notification.max_attempts:
        if held.settle(status=NotificationStatus.FAILED, last_error=error):
            counts.failed += 1
            logger.error("%s failed for good after %s attempts: %s", about, notification.attempts, error)
        return
    if held.settle(status=NotificationStatus.PENDING, next_attempt_at=now + delay, last_error=error):
        counts.retrying += 1
        logger.warning(
            "%s failed (attempt %s of %s), next try in %s s: %s",
            about, notification.attempts, notification.max_attempts, int(delay.total_seconds()), error,
        )


def notifications_deliver(*, now=None, batch: int = 50, stop=lambda: False) -> DeliveryCounts:
    """Send the notifications due at `now`, one at a time: each is claimed just before it
    is sent, and held only while it is, so the others stay free for any worker and a
    worker that dies leaves at most the one in hand. Safe with any number of workers at
    once: each notification is sent by one. `batch`: how many are looked up at a time;
    `stop()` true ends the pass after the message in hand (the rest stay due)."""
    now = now or timezone.now()
    clock = _PassClock(now)
    counts, down = DeliveryCounts(), set()
    while True:
        due = list(
            Notification.objects.filter(_due(now)).exclude(channel_id__in=down)
            .order_by("next_attempt_at", "pk").values_list("pk", "channel_id", "channel__kind")[:batch]
        )
        for pk, channel_id, kind in due:
            if stop():
                return counts
            if channel_id in down:
                continue
            held = _claim(pk=pk, kind=kind, now=now, clock=clock)
            if held is not None:
                _deliver_one(held, now=now, clock=clock, counts=counts, down=down)
        if len(due) < batch:
            return counts


def notifications_work(*, now=None, batch: int = 50, stop=lambda: False) -> tuple[int, DeliveryCounts]:
    """One pass of the worker: write the reminders that fell due, then send what is due
    (until `stop()`). (reminders written, counts)."""
    now = now or timezone.now()
    reminders = notifications_remind(now=now)
    return reminders, notifications_deliver(now=now, batch=batch, stop=stop)


def notifications_retry(*, notifications) -> int:
    """Give failed notifications (a queryset) another round of attempts, now."""
    return notifications.filter(status=NotificationStatus.FAILED).update(
        status=NotificationStatus.PENDING, next_attempt_at=timezone.now(),
        max_attempts=F("attempts") + settings.HITL_NOTIFY_MAX_ATTEMPTS,
    )


# --- people and channels -------------------------------------------------------------


@transaction.atomic
def notification_preferences_set(*, operator_id, wanted: dict[str, bool]) -> dict[str, bool]:
    """Store which kinds a person wants in zakops.operators.preferences
    (`{"notifications": {"requested": false, …}}`), keeping every other key there."""
    operator = Operator.objects.select_for_update().filter(pk=operator_id).first()
    if operator is None:
        raise NotFound("This account has no ZakOps operator record to keep preferences in.")
    preferences = operator.preferences if isinstance(operator.preferences, dict) else {}
    chosen = preferences.get("notifications") if isinstance(preferences.get("notifications"), dict) else {}
    chosen = {**chosen, **{kind: bool(on) for kind, on in wanted.items() if kind in NotificationKind.values}}
    operator.preferences = {**preferences, "notifications": chosen}
    operator.updated_at = timezone.now()
    operator.save(update_fields=["preferences", "updated_at"])
    return preferences_of(operator.preferences)


SIGNING_SECRET_PREFIX = "whsec_"


def channel_save(*, channel: Channel) -> str | None:
    """Save a channel. A signed or engine webhook without a signing secret gets a new one,
    which is returned so that it can be shown once; other kinds keep none."""
    generated = None
    if channel.kind in SIGNED_KINDS and not channel.signing_secret:
        generated = channel.signing_secret = SIGNING_SECRET_PREFIX + secrets.token_urlsafe(32)
    elif channel.kind not in SIGNED_KINDS:
        channel.signing_secret = ""
    channel.save()
    return generated
