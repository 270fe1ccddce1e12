"""Writes of the approval workflow (SPEC §3): request, approve, reject, quarantine, cancel,
expire. Every effect of a transition is in this module.

Each transition runs in one transaction and writes, together: the request's new state,
the mirrored fields of the action in zakops.actions (what the engine reads), one
zakops.deal_events row and one zakops.outbox row. Reject, expire and cancel also cancel
the action's active checkpoints.

Exactly one decision wins: the action's row is locked first (PostgreSQL; SQLite
transactions begin IMMEDIATE), then the request moves with a compare-and-set
`UPDATE … WHERE state = <the state read> AND expires_at > now`, whose row count says
whether this caller won. Locks are always taken in the order action, then request.
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.selectors import SYSTEM, Actor
from approvals.models import OPEN_STATES, ApprovalRequest, IdempotencyRecord, RequestState
from checkpoints.services import checkpoints_cancel_for_action
from risk.rulebook import rulebook_current
from risk.services import risk_assess
from zakops.models import Action, ActionStatus, Deal, DealEvent, OutboxEvent, RiskLevel
from zakops_hitl.errors import Conflict, InvalidInput, NotAllowed, NotFound

EVENT_SOURCE = "zakops-hitl"
MAX_REASON = 2000
IDEMPOTENCY_KEEP = timedelta(hours=48)  # keys are honoured for at least 24 h

EVENTS = {
    RequestState.PENDING: "hitl.approval_requested",
    RequestState.APPROVED: "hitl.approved",
    RequestState.REJECTED: "hitl.rejected",
    RequestState.QUARANTINED: "hitl.escalated",
    RequestState.EXPIRED: "hitl.expired",
    RequestState.CANCELLED: "hitl.cancelled",
}
DECISIONS = {"approve": RequestState.APPROVED, "reject": RequestState.REJECTED, "quarantine": RequestState.QUARANTINED}
# An action in one of these states is finished or running: a new approval round can not
# send it back to the queue (the engine creates a new action instead).
NO_NEW_ROUND = (ActionStatus.PROCESSING, ActionStatus.COMPLETED, ActionStatus.CANCELLED, ActionStatus.REJECTED)


def _record(*, action: Action, request: ApprovalRequest, actor: Actor, reason: str) -> None:
    """The audit row and the outbox row of one transition, in the caller's transaction."""
    event_type = EVENTS[request.state]
    details = {
        "action_id": action.action_id,
        "request_id": str(request.id),
        "round": request.round,
        "state": request.state,
        "risk_level": request.risk_level,
        "reason": reason,
        "decider": actor.name,
        "decider_id": str(actor.actor_id) if actor.actor_id else None,
        "decider_type": actor.kind,
    }
    DealEvent.objects.create(
        deal_id=action.deal_id,
        event_type=event_type,
        source=EVENT_SOURCE,
        actor=actor.name,
        actor_id=details["decider_id"],
        actor_type=actor.kind,
        details=details,
    )
    OutboxEvent.objects.create(
        correlation_id=action.correlation,
        aggregate_type="action",
        aggregate_id=action.action_id,
        event_type=event_type,
        event_data={**details, "action_status": action.status},
        trace_id=action.trace_id,
    )


def _locked_action(action_id: str) -> Action | None:
    return Action.objects.select_for_update().filter(pk=action_id).first()


def _action_update(action: Action, **fields) -> None:
    fields["updated_at"] = timezone.now()
    for name, value in fields.items():
        setattr(action, name, value)
    action.save(update_fields=list(fields))


def _check_reason(reason: str, *, required: bool) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise InvalidInput("reason: a reason is required.", field="reason")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"reason: at most {MAX_REASON} characters.", field="reason")
    return reason


# --- request -------------------------------------------------------------------------


@transaction.atomic
def approval_request(
    *,
    action_id: str,
    action_type: str,
    requester: Actor,
    title: str | None = None,
    summary: str | None = None,
    deal_id: str | None = None,
    capability_id: str | None = None,
    correlation_id=None,
    inputs: dict | None = None,
    context: dict | None = None,
    requested_by: str = "",
) -> tuple[ApprovalRequest, bool]:
    """Assess the action and open a request for it; (request, created).

    Creates the action row when the engine has not written it yet. An action with an
    open request gets that request back. An action that needs no approval is approved
    at once by the system.
    """
    action = _locked_action(action_id)
    if action is None:
        if deal_id and not Deal.objects.filter(pk=deal_id).exists():
            raise InvalidInput(f"deal_id: no deal {deal_id}.", field="deal_id")
        now = timezone.now()
        Action.objects.bulk_create(
            [
                Action(
                    action_id=action_id, action_type=action_type, title=title, summary=summary, deal_id=deal_id,
                    capability_id=capability_id, correlation_id=correlation_id, inputs=inputs or {},
                    created_by=requested_by or requester.name, source="system", retry_count=0, audit_trail=[],
                    created_at=now, updated_at=now,
                )
            ],
            ignore_conflicts=True,  # the engine may be writing the same row right now
        )
        action = _locked_action(action_id)
    elif action.action_type.lower() != action_type.lower():
        raise Conflict(f"Action {action_id} is a {action.action_type}, not a {action_type}.")

    open_request = ApprovalRequest.objects.filter(action=action, state__in=OPEN_STATES).first()
    if open_request is not None:
        return open_request, False
    if action.status in NO_NEW_ROUND:
        raise Conflict(
            f"Action {action_id} is {action.status}; it can not go back to approval.", action_status=action.status
        )

    context = dict(context or {})
    if "deal_stage" not in context and action.deal_id:
        context["deal_stage"] = Deal.objects.filter(pk=action.deal_id).values_list("stage", flat=True).first()
    assessment = risk_assess(
        action_type=action.action_type, inputs=inputs if inputs is not None else action.inputs or {}, context=context
    )
    now = timezone.now()
    hours = rulebook_current().config.timeout_hours[assessment.level]
    last_round = ApprovalRequest.objects.filter(action=action).order_by("-round").values_list("round", flat=True).first()
    request = ApprovalRequest.objects.create(
        action=action,
        round=(last_round or 0) + 1,
        state=RequestState.PENDING,
        risk_level=assessment.level,
        score=assessment.score,
        reasons=assessment.reasons,
        recommendations=assessment.recommendations,
        matched_rules=assessment.matched_rules,
        requires_approval=assessment.requires_approval,
        requested_by=requested_by or action.created_by or "",
        requested_via=requester.name,
        expires_at=now + timedelta(hours=hours),
    )
    _action_update(
        action, status=ActionStatus.PENDING_APPROVAL, risk_level=assessment.level,
        requires_human_review=assessment.requires_approval,
    )
    _record(action=action, request=request, actor=requester, reason="")

    if not assessment.requires_approval:
        reason = f"Approved automatically: risk {assessment.level}, no rule requires a person's approval."
        _compare_and_set(
            request, when=Q(state=RequestState.PENDING), now=now, state=RequestState.APPROVED,
            decided_at=now, decided_by_name=SYSTEM.name, reason=reason,
        )
        _action_update(action, status=ActionStatus.QUEUED, approved_at=now, approved_by=None)
        _record(action=action, request=request, actor=SYSTEM, reason=reason)
    return request, True


# --- decisions -----------------------------------------------------------------------


def _is_requester(actor: Actor, request: ApprovalRequest, action: Action) -> bool:
    mine = {actor.name.lower()} | ({str(actor.actor_id).lower()} if actor.actor_id else set())
    requesters = {(request.requested_by or "").lower(), (action.created_by or "").lower()} - {""}
    return bool(mine & requesters)


def decision_refusal(*, actor: Actor, request: ApprovalRequest, action: Action) -> str | None:
    """Why `actor` may not decide `request` (SPEC §3), or None when they may."""
    if actor.kind == "service":
        return "Service accounts can not decide approvals: a person must."
    if actor.role not in ("operator", "admin"):
        return "Viewers can not decide approvals: it needs the operator or admin role."
    if actor.actor_id is None:
        return "This account has no operator id; an admin can fix that with create_operator."
    if actor.role != "admin" and request.risk_level == RiskLevel.CRITICAL:
        return "Only an admin can decide a critical request."
    if actor.role != "admin" and request.state == RequestState.QUARANTINED:
        return "Only an admin can decide a quarantined request."
    if _is_requester(actor, request, action):
        return "You requested this action, so someone else must decide it (four-eyes)."
    return None


def _settled_conflict(request: ApprovalRequest) -> Conflict:
    """409 for a request that is no longer open: who decided what, and when."""
    when = f"{request.decided_at:%Y-%m-%d %H:%M:%S} UTC" if request.decided_at else "earlier"
    who = request.decided_by_name or "the system"
    if request.state == RequestState.EXPIRED:
        detail = f"The request expired at {request.expires_at:%Y-%m-%d %H:%M:%S} UTC; it can no longer be decided."
    elif request.state == RequestState.CANCELLED:
        detail = f"The request was cancelled by {who} at {when}."
    else:
        detail = f"Already {request.state} by {who} at {when}."
    return Conflict(
        detail,
        request_id=str(request.id),
        state=request.state,
        decided_by=str(request.decided_by) if request.decided_by else None,
        decided_by_name=request.decided_by_name or None,
        decided_at=request.decided_at,
        reason=request.reason,
    )


def _compare_and_set(request: ApprovalRequest, *, when: Q, now, **changes) -> bool:
    """Move `request` with one `UPDATE … WHERE <when>`; the row count says whether this
    caller won. On a win the object holds what was written, without reading it back."""
    changes["updated_at"] = now
    if not ApprovalRequest.objects.filter(when, pk=request.pk).update(**changes):
        return False
    for name, value in changes.items():
        setattr(request, name, value)
    return True


def _latest_request_locking_action(action_id: str) -> ApprovalRequest:
    """The action's latest request with its action, the action's row locked: one query.

    The request's columns may be older than the lock if another decision committed while
    this one waited; the compare-and-set on its state catches that."""
    request = (
        ApprovalRequest.objects.select_related("action")
        .select_for_update(of=("action",))
        .filter(action_id=action_id)
        .order_by("-round")
        .first()
    )
    if request is None:
        if _locked_action(action_id) is None:
            raise NotFound(f"No action {action_id}.")
        raise NotFound(f"Action {action_id} has no approval request.")
    return request


def approval_decide(*, action_id: str, actor: Actor, decision: str, reason: str = "") -> ApprovalRequest:
    """Approve, reject or quarantine the action's open request; exactly one caller wins."""
    new_state = DECISIONS[decision]
    reason = _check_reason(reason, required=decision != "approve")
    with transaction.atomic():
        request = _latest_request_locking_action(action_id)
        action = request.action
        if actor.kind == "service" or actor.role not in ("operator", "admin"):
            raise NotAllowed(decision_refusal(actor=actor, request=request, action=action))
        if not request.is_open:
            raise _settled_conflict(request)
        now = timezone.now()
        if request.expires_at <= now:
            raise Conflict(
                f"The request expired at {request.expires_at:%Y-%m-%d %H:%M:%S} UTC; it can no longer be decided.",
                request_id=str(request.id), state=RequestState.EXPIRED, decided_by=None, decided_at=None,
            )
        if decision == "quarantine" and request.state == RequestState.QUARANTINED:
            raise Conflict("The request is already quarantined.", request_id=str(request.id), state=request.state)
        refusal = decision_refusal(actor=actor, request=request, action=action)
        if refusal:
            raise NotAllowed(refusal)

        if decision == "quarantine":
            changes = {"escalated_by": actor.actor_id, "escalated_by_name": actor.name, "escalated_at": now, "escalation_reason": reason}
        else:
            changes = {"decided_by": actor.actor_id, "decided_by_name": actor.name, "decided_at": now, "reason": reason}
        if not _compare_and_set(request, when=Q(state=request.state, expires_at__gt=now), now=now, state=new_state, **changes):
            request.refresh_from_db()
            raise _settled_conflict(request)

        if new_state == RequestState.APPROVED:
            _action_update(action, status=ActionStatus.QUEUED, approved_by=actor.actor_id, approved_at=now)
        elif new_state == RequestState.REJECTED:
            _action_update(action, status=ActionStatus.REJECTED)
            checkpoints_cancel_for_action(action_id=action.action_id)
        _record(action=action, request=request, actor=actor, reason=reason)
        return request


@transaction.atomic
def approval_cancel(*, action_id: str, actor: Actor, reason: str = "") -> ApprovalRequest:
    """The engine withdraws the action: its open request is cancelled, the action too."""
    reason = _check_reason(reason, required=False)
    if actor.kind != "service" and actor.role != "admin":
        raise NotAllowed("Only the engine (a service account) or an admin can cancel an action's approval.")
    request = _latest_request_locking_action(action_id)
    action = request.action
    now = timezone.now()
    cancelled = _compare_and_set(
        request, when=Q(state__in=OPEN_STATES), now=now, state=RequestState.CANCELLED,
        decided_by=actor.actor_id, decided_by_name=actor.name, decided_at=now, reason=reason,
    )
    if not cancelled:
        request.refresh_from_db()
        raise _settled_conflict(request)
    _action_update(action, status=ActionStatus.CANCELLED)
    checkpoints_cancel_for_action(action_id=action.action_id)
    _record(action=action, request=request, actor=actor, reason=reason)
    return request


# --- expiry --------------------------------------------------------------------------


def _expire_one(request_id, now) -> bool:
    with transaction.atomic():
        request = ApprovalRequest.objects.filter(pk=request_id).first()
        if request is None:
            return False
        # Action first, as everywhere; one a reviewer is deciding right now is left to them.
        action = Action.objects.select_for_update(skip_locked=True).filter(pk=request.action_id).first()
        if action is None:
            return False
        reason = "No decision before the request expired."
        expired = _compare_and_set(
            request, when=Q(state__in=OPEN_STATES, expires_at__lte=now), now=now, state=RequestState.EXPIRED,
            decided_by_name=SYSTEM.name, decided_at=now, reason=reason,
        )
        if not expired:
            return False
        _action_update(action, status=ActionStatus.REJECTED)  # an expired action must never run
        checkpoints_cancel_for_action(action_id=action.action_id)
        _record(action=action, request=request, actor=SYSTEM, reason=reason)
        return True


def approvals_expire(*, now=None, batch: int = 500) -> int:
    """Expire overdue open requests, each in its own transaction. Safe with several
    sweeps at once: each request is claimed by a compare-and-set, so it expires once.
    One a reviewer is deciding at that moment is skipped, not waited for."""
    now = now or timezone.now()
    expired, after = 0, None
    overdue = ApprovalRequest.objects.filter(state__in=OPEN_STATES, expires_at__lte=now).order_by("pk")
    while True:
        page = list((overdue.filter(pk__gt=after) if after else overdue).values_list("pk", flat=True)[:batch])
        if not page:
            return expired
        expired += sum(_expire_one(pk, now) for pk in page)
        after = page[-1]


def idempotency_records_forget(*, now=None) -> int:
    cutoff = (now or timezone.now()) - IDEMPOTENCY_KEEP
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
