"""The engine withdraws an action: its open request is cancelled, the action too, and the
action's active checkpoints; the cancellation is told like a decision (`approvals.notices`)."""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.selectors import Actor
from approvals import notices
from approvals.models import OPEN_STATES, ApprovalRequest, RequestState
from approvals.services import events, locks
from approvals.services.decisions import reason_checked
from approvals.services.requests import request_to_decide, settled_conflict
from checkpoints.services import checkpoints_cancel_for_action
from common.errors import NotAllowed
from zakops.models import ActionStatus


@transaction.atomic
def approval_cancel(*, action_id: str, actor: Actor, reason: str = "") -> ApprovalRequest:
    """The engine withdraws the action: its open request is cancelled, the action too.

    Only the engine (a service account) or code in process: a reviewer who does not want
    an action run rejects it, which the audit trail records as a decision."""
    reason = reason_checked(reason, required=False)
    if actor.kind == "user":
        raise NotAllowed("Only the engine (a service account) can cancel an action; a reviewer rejects it instead.")
    request = request_to_decide(action_id)
    action = request.action
    now = timezone.now()
    cancelled = locks.request_compare_and_set(
        request, when=Q(state__in=OPEN_STATES, expires_at__gt=now), now=now, state=RequestState.CANCELLED,
        decided_by=actor.actor_id, decided_by_name=actor.name, decided_at=now, reason=reason,
    )
    if not cancelled:
        request.refresh_from_db()
        raise settled_conflict(request)
    events.action_update(action, status=ActionStatus.CANCELLED)
    checkpoints_cancel_for_action(action_id=action.action_id)
    events.transition_record(action=action, request=request, actor=actor, reason=reason)
    notices.notice(kind=notices.DECIDED, request=request, action=action, actor=actor, reason=reason)
    return request
