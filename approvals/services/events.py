"""What a transition tells others, in its own transaction: the action's mirrored fields in
zakops.actions (what the engine reads), one zakops.deal_events row (the audit) and one
zakops.outbox row; once committed (never for one rolled back), a log line and the metrics.
"""

import logging

from django.db import transaction
from django.utils import timezone

from accounts.selectors import Actor
from approvals import metrics
from approvals.models import QUEUE_CHANNEL, ApprovalRequest, RequestState
from common.changes import feed
from zakops.models import Action, DealEvent, OutboxEvent

decision_logger = logging.getLogger("hitl.decisions")

EVENT_SOURCE = "zakops-hitl"
EVENTS = {
    RequestState.PENDING: "hitl.approval_requested",
    RequestState.APPROVED: "hitl.approved",
    RequestState.REJECTED: "hitl.rejected",
    RequestState.QUARANTINED: "hitl.escalated",
    RequestState.EXPIRED: "hitl.expired",
    RequestState.CANCELLED: "hitl.cancelled",
}


def action_update(action: Action, **fields) -> None:
    """Write the action's mirrored fields (its row locked by the caller)."""
    fields["updated_at"] = timezone.now()
    for name, value in fields.items():
        setattr(action, name, value)
    action.save(update_fields=list(fields))


def transition_record(*, action: Action, request: ApprovalRequest, actor: Actor, reason: str) -> None:
    """The audit row and the outbox row of the transition `request` just made, in the
    caller's transaction; the reviewer pages' live queue hears of it on commit, as do the
    log and the metrics."""
    event_type = EVENTS[request.state]
    _after_commit(action=action, request=request, actor=actor, event_type=event_type)
    event_record(action=action, request=request, actor=actor, event_type=event_type, reason=reason)


def event_record(*, action: Action, request: ApprovalRequest, actor: Actor, event_type: str, **extra) -> None:
    """An audit row and its outbox row, in the caller's transaction: for a transition
    (through transition_record), or for something that is not a state change (a vote, an
    edit, an amendment, a takeover)."""
    feed.announce(QUEUE_CHANNEL, key=action.action_id)  # the queue's version, and the action's poll
    details = {
        "action_id": action.action_id,
        "request_id": str(request.id),
        "round": request.round,
        "state": request.state,
        "risk_level": request.risk_level,
        "decider": actor.name,
        "decider_id": str(actor.actor_id) if actor.actor_id else None,
        "decider_type": actor.kind,
        **extra,
    }
    DealEvent.objects.create(
        deal_id=action.deal_id, event_type=event_type, source=EVENT_SOURCE, actor=actor.name,
        actor_id=details["decider_id"], actor_type=actor.kind, details=details,
    )
    OutboxEvent.objects.create(
        correlation_id=action.correlation, aggregate_type="action", aggregate_id=action.action_id,
        event_type=event_type, event_data={**details, "action_status": action.status}, trace_id=action.trace_id,
    )


def _after_commit(*, action: Action, request: ApprovalRequest, actor: Actor, event_type: str) -> None:
    """Once the transition is committed: one log line and the metrics. What is logged
    names the action, the request and the outcome; never the reason, which is free text."""
    fields = {
        "event": event_type, "action_id": action.action_id, "approval_request_id": str(request.id),
        "round": request.round, "outcome": request.state, "risk_level": request.risk_level,
        "decider": actor.name, "decider_type": actor.kind,
    }
    opened_at, state, level = request.created_at, request.state, request.risk_level

    def committed():
        metrics.transition_count(
            state=state, decider=actor.kind, risk_level=level, opened_at=opened_at, decided_at=timezone.now()
        )
        decision_logger.info(
            "%s %s (request %s, round %s): %s by %s", event_type, fields["action_id"], fields["approval_request_id"],
            fields["round"], state, actor.name, extra=fields,
        )

    transaction.on_commit(committed)
