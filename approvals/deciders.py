"""Who may decide an approval request (SPEC §3): roles, risk level and four-eyes.

The workflow's services, the reviewer pages and the notifications read the same rules,
so that whoever is told a request waits for them is exactly who may decide it.
"""

from accounts.selectors import Actor
from approvals.models import ApprovalRequest, RequestState
from zakops.models import Action, RiskLevel


def is_requester(actor: Actor, request: ApprovalRequest, action: Action) -> bool:
    """Four-eyes: whether `actor` asked for the action or sent its request. Emails match
    whatever their case, ids as UUIDs."""
    mine = {actor.name.lower()} | ({str(actor.actor_id).lower()} if actor.actor_id else set())
    theirs = {request.requested_by, request.requested_via, action.created_by}
    theirs |= {str(value) for value in (request.requested_via_id, action.operator_id) if value}
    return bool(mine & ({(value or "").strip().lower() for value in theirs} - {""}))


def actor_refusal(actor: Actor) -> str | None:
    """The rules that refuse a caller whatever the request."""
    if actor.kind != "user":
        return "Service accounts can not decide approvals: a person must."
    if actor.role not in ("operator", "admin"):
        return "Viewers can not decide approvals: it needs the operator or admin role."
    if actor.actor_id is None:
        return (
            f"{actor.name} has no ZakOps operator record (an account made with createsuperuser has none): "
            f"run `manage.py create_operator {actor.name} --role admin`, or give it a role in admin."
        )
    return None


def decision_refusal(*, actor: Actor, request: ApprovalRequest, action: Action) -> str | None:
    """Why `actor` may not decide `request` (SPEC §3), or None when they may."""
    refusal = actor_refusal(actor)
    if refusal:
        return refusal
    if actor.role != "admin" and request.risk_level == RiskLevel.CRITICAL:
        return "Only an admin can decide a critical request."
    if actor.role != "admin" and request.state == RequestState.QUARANTINED:
        return "Only an admin can decide a quarantined request."
    if is_requester(actor, request, action):
        return "You requested this action, so someone else must decide it (four-eyes)."
    return None
