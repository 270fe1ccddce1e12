"""Reads of the notifications: who is told about a request, through which channels, what
each person asked not to be sent, and which reminders fall due."""

from django.db.models import Exists, OuterRef

from accounts.selectors import Actor, people_in_roles
from approvals.deciders import actor_refusal, decision_refusal, is_requester
from approvals.models import OPEN_STATES, ApprovalRequest
from notifications.models import Channel, NotificationEvent, NotificationKind
from zakops.models import Action, Operator, OperatorRole

# What each role can be sent. Quarantined requests and expiries are the admins' concern;
# viewers decide nothing, so they are sent nothing.
ROLE_KINDS = {
    OperatorRole.ADMIN: tuple(NotificationKind.values),
    OperatorRole.OPERATOR: (NotificationKind.REQUESTED, NotificationKind.REMINDER),
}


def kinds_for_role(role: str | None) -> tuple[str, ...]:
    return ROLE_KINDS.get(role, ())


def preferences_of(preferences) -> dict[str, bool]:
    """Which kinds a person wants, from their zakops.operators.preferences
    (`{"notifications": {"requested": false}}`). Anything not switched off is on; a
    value that is not a JSON object (the column is the backend's) counts as nothing set."""
    chosen = preferences.get("notifications") if isinstance(preferences, dict) else None
    chosen = chosen if isinstance(chosen, dict) else {}
    return {kind: chosen.get(kind) is not False for kind in NotificationKind.values}


def channels_for(*, kind: str, risk_level: str) -> list[Channel]:
    """The enabled channels that take `kind` at `risk_level`."""
    return [channel for channel in Channel.objects.filter(enabled=True) if channel.takes(kind=kind, risk_level=risk_level)]


def _may_be_told(person: Actor, *, kind: str, request: ApprovalRequest, action: Action) -> bool:
    if kind == NotificationKind.EXPIRED:
        # Nobody decides an expired request any more; four-eyes still keeps the requester out.
        return actor_refusal(person) is None and not is_requester(person, request, action)
    return decision_refusal(actor=person, request=request, action=action) is None


def recipients_for(*, kind: str, request: ApprovalRequest, action: Action, actor: Actor | None = None) -> list[str]:
    """The e-mail addresses to tell about `request`: the reviewers who may decide it (for
    an expiry, the admins), never the requester or whoever caused the event, and not those
    who switched `kind` off. Three queries."""
    roles = [role for role, kinds in ROLE_KINDS.items() if kind in kinds]
    people = [
        person for person in people_in_roles(roles=roles)
        if _may_be_told(person, kind=kind, request=request, action=action)
        and not (actor and actor.kind == "user" and person.name.lower() == actor.name.lower())
    ]
    preferences = dict(
        Operator.objects.filter(pk__in=[person.actor_id for person in people]).values_list("pk", "preferences")
    )
    addresses = {}
    for person in people:
        if "@" in person.name and preferences_of(preferences.get(person.actor_id))[kind]:
            addresses.setdefault(person.name.lower(), person.name)
    return sorted(addresses.values())


def reminder_requests_due(*, now, limit: int = 500) -> list:
    """Ids of open requests whose reminder falls due by `now` and has not been written."""
    reminded = NotificationEvent.objects.filter(request=OuterRef("request"), kind=NotificationKind.REMINDER)
    return list(
        NotificationEvent.objects.filter(
            kind=NotificationKind.REQUESTED, remind_at__lte=now,
            request__state__in=OPEN_STATES, request__expires_at__gt=now,
        )
        .exclude(Exists(reminded))
        .order_by("remind_at")
        .values_list("request_id", flat=True)[:limit]
    )
