"""Opening approval requests (SPEC §3): a request, one round, for an action the engine
sends; amending an open request when the engine calls again; adopting an action the
engine set to PENDING_APPROVAL by itself, so that it is shown, decided and expires like
any other. Opening a request that needs a person also writes the notices to send
(`approvals.notices`); `hitl_notify` sends them later, so no call waits for an e-mail.
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.selectors import SYSTEM, Actor
from approvals import notices
from approvals.deciders import normalised_addresses
from approvals.models import OPEN_STATES, ApprovalRequest, ApprovalVote, RequestState
from approvals.services import events, locks
from common.errors import Conflict, InvalidInput, NotAllowed, NotFound
from risk.rulebook import rulebook_current
from risk.services import risk_assess
from zakops.models import Action, ActionStatus, Deal

# Statuses from which an action can not be sent (back) to approval: approved and waiting
# to run, running, or finished. The engine creates a new action instead.
NO_NEW_ROUND = (
    ActionStatus.QUEUED, ActionStatus.PROCESSING, ActionStatus.COMPLETED, ActionStatus.CANCELLED, ActionStatus.REJECTED,
)
SEVERITY = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def request_latest(action: Action | str) -> ApprovalRequest | None:
    """The latest round of the action (or the action's id)."""
    return ApprovalRequest.objects.filter(action=action).order_by("-round").first()


def assessment_context(action: Action, context: dict | None) -> dict:
    """The context risk is assessed with: the deal's stored stage counts, and what the
    caller says may only make the assessment stricter (a closed deal), never milder."""
    context = dict(context or {})
    if action.deal_id:
        stored = Deal.objects.filter(pk=action.deal_id).values_list("stage", flat=True).first()
        if stored is not None and context.get("deal_stage") != "closed":
            context["deal_stage"] = stored
    return context


def raised_fields(request: ApprovalRequest, assessment, now) -> dict:
    """The request's fields once a stricter assessment applies: its level's rules (role,
    approvals needed) and a deadline no later than that level's."""
    hours = rulebook_current().config.timeout_hours[assessment.level]
    return dict(
        risk_level=assessment.level, score=assessment.score, reasons=list(assessment.reasons),
        recommendations=assessment.recommendations, matched_rules=assessment.matched_rules,
        score_breakdown=assessment.breakdown, requires_approval=True,
        expires_at=min(request.expires_at, now + timedelta(hours=hours)),
    )


def settled_conflict(request: ApprovalRequest) -> Conflict:
    """409 for a request that is no longer open, or past its deadline: who decided what,
    and when."""
    request = request.as_seen()
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


# --- opening a request -----------------------------------------------------------------


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
    new_round: bool = False,
) -> tuple[ApprovalRequest, bool]:
    """Assess the action and open a request for it; (request, created).

    Only the engine (a service account) and code in process open requests. Creates the
    action row when the engine has not written it yet. An action with a request gets
    its latest one back and nothing changes, unless the engine asks for a `new_round`
    (never for an approved, running or finished action). An action that needs no
    approval is approved at once by the system.
    """
    if requester.kind == "user":
        raise NotAllowed("People can not open approval requests: the action engine (a service account) does.")
    action = locks.action_lock(action_id)
    if action is None:
        action = _action_create(
            action_id=action_id, action_type=action_type, title=title, summary=summary, deal_id=deal_id,
            capability_id=capability_id, correlation_id=correlation_id, inputs=inputs or {},
            created_by=requested_by or requester.name,
        )
    _check_same_action(action, action_type=action_type, deal_id=deal_id, inputs=inputs)
    latest = request_latest(action)
    if latest is not None and latest.is_open:
        _amend(request=latest, action=action, requester=requester, requested_by=requested_by, context=context)
        return latest, False
    # A decided action keeps its decision; the engine setting it back to PENDING_APPROVAL
    # by itself, or asking for a new round, opens one.
    if latest is not None and not new_round and action.status != ActionStatus.PENDING_APPROVAL:
        return latest, False
    if action.status in NO_NEW_ROUND:
        raise Conflict(
            f"Action {action_id} is {action.status}; it can not go back to approval.", action_status=action.status
        )
    request = _open_round(
        action=action, requester=requester, context=assessment_context(action, context), requested_by=requested_by,
    )
    return request, True


def _action_create(*, action_id: str, deal_id: str | None, **fields) -> Action:
    """The action's row, written as the engine would when it has not written it yet, and
    locked."""
    if deal_id and not Deal.objects.filter(pk=deal_id).exists():
        raise InvalidInput(f"deal_id: no deal {deal_id}.", field="deal_id")
    now = timezone.now()
    Action.objects.bulk_create(
        [
            Action(
                action_id=action_id, deal_id=deal_id, source="system", retry_count=0, audit_trail=[],
                created_at=now, updated_at=now, **fields,
            )
        ],
        ignore_conflicts=True,  # the engine may be writing the same row right now
    )
    return locks.action_lock(action_id)


def _check_same_action(action: Action, *, action_type: str, deal_id: str | None, inputs: dict | None) -> None:
    """What the engine runs is the stored row: a request may not describe another action."""
    if action.action_type.lower() != action_type.lower():
        raise Conflict(f"Action {action.action_id} is a {action.action_type}, not a {action_type}.")
    if deal_id is not None and deal_id != action.deal_id:
        raise Conflict(f"Action {action.action_id} belongs to deal {action.deal_id or 'none'}, not {deal_id}.")
    if inputs is not None and inputs != (action.inputs or {}):
        raise Conflict(
            f"inputs differ from the stored inputs of action {action.action_id}, which are what the engine runs."
        )


def _open_round(
    *, action: Action, requester: Actor, context: dict, requested_by: str, adopted: bool = False
) -> ApprovalRequest:
    """Assess the action and open its next round, in the caller's transaction (the action
    row locked). An assessment that needs no approval is approved at once by the system,
    except for an adopted action: the engine itself held it for a person."""
    assessment = risk_assess(action_type=action.action_type, inputs=action.inputs or {}, context=context)
    reasons = list(assessment.reasons)
    requires_approval = assessment.requires_approval or adopted
    if adopted:
        reasons.append("The engine set the action to PENDING_APPROVAL itself: a person decides.")
    now = timezone.now()
    hours = rulebook_current().config.timeout_hours[assessment.level]
    last = request_latest(action)
    request = ApprovalRequest.objects.create(
        action=action,
        action_type=action.action_type,
        round=(last.round if last else 0) + 1,
        state=RequestState.PENDING,
        risk_level=assessment.level,
        score=assessment.score,
        reasons=reasons,
        recommendations=assessment.recommendations,
        matched_rules=assessment.matched_rules,
        score_breakdown=assessment.breakdown,
        requires_approval=requires_approval,
        requested_by=requested_by or action.created_by or "",
        requested_via=requester.name,
        requested_via_id=requester.actor_id,
        expires_at=now + timedelta(hours=hours),
    )
    events.action_update(
        action, status=ActionStatus.PENDING_APPROVAL, risk_level=assessment.level, requires_human_review=requires_approval,
    )
    adoption = "Adopted from the engine's own pending action." if adopted else ""
    events.transition_record(action=action, request=request, actor=requester, reason=adoption)
    if requires_approval:
        notices.notice(kind=notices.REQUESTED, request=request, action=action, actor=requester)
    else:
        _approve_at_once(request=request, action=action, now=now)
    return request


def _approve_at_once(*, request: ApprovalRequest, action: Action, now) -> None:
    """The system approves a request that no rule requires a person for, as it opens."""
    reason = f"Approved automatically: risk {request.risk_level}, no rule requires a person's approval."
    locks.request_compare_and_set(
        request, when=Q(state=RequestState.PENDING), now=now, state=RequestState.APPROVED,
        decided_at=now, decided_by_name=SYSTEM.name, reason=reason,
    )
    events.action_update(action, status=ActionStatus.QUEUED, approved_at=now, approved_by=None)
    events.transition_record(action=action, request=request, actor=SYSTEM, reason=reason)


def _amend(*, request: ApprovalRequest, action: Action, requester: Actor, requested_by: str, context: dict | None) -> None:
    """A call for an action whose request is already open (a retry, or the engine calling
    after the sweep or its own poll adopted the action it set to PENDING_APPROVAL) may
    name who asked for the action, and give a stricter context: both are taken, as they
    would have been had this call opened the request; a milder context changes nothing.
    A person it names may no longer decide, and their vote, if any, no longer counts."""
    now = timezone.now()
    if request.expires_at <= now:
        return
    named = normalised_addresses(requested_by) - normalised_addresses(request.requested_by)
    assessment = risk_assess(
        action_type=action.action_type, inputs=action.inputs or {}, context=assessment_context(action, context)
    )
    rose = SEVERITY[assessment.level] > SEVERITY[request.risk_level]
    if not named and not rose:
        return
    changes = raised_fields(request, assessment, now) if rose else {}
    if named:
        merged = f"{request.requested_by}, {requested_by}" if request.requested_by else requested_by
        if len(merged) > ApprovalRequest._meta.get_field("requested_by").max_length:
            raise Conflict(f"The request for action {action.action_id} names too many requesters to add {requested_by}.")
        changes["requested_by"] = merged
        votes = [vote for vote in request.votes if not normalised_addresses(vote["name"]) & named]
        if len(votes) < len(request.votes):
            changes["votes"] = votes
            ApprovalVote.objects.filter(request=request).exclude(voter_name__in=[vote["name"] for vote in votes]).delete()
    previous_level = request.risk_level
    locks.request_compare_and_set(request, when=Q(state=request.state), now=now, **changes)
    if rose:
        events.action_update(action, risk_level=assessment.level)
    events.event_record(
        action=action, request=request, actor=requester, event_type="hitl.request_amended", reason="",
        requesters_added=sorted(named), previous_risk_level=previous_level, risk_level_now=request.risk_level,
    )


# --- adoption --------------------------------------------------------------------------


def _adopt(action: Action) -> ApprovalRequest:
    """A request for an action the engine set to PENDING_APPROVAL by itself, assessed from
    its row (the caller holds the action's lock and found no open request)."""
    return _open_round(
        action=action, requester=SYSTEM, context=assessment_context(action, None), requested_by="", adopted=True,
    )


def request_to_decide(action_id: str) -> ApprovalRequest:
    """The action's open request (else its latest), with the action's row locked, for a
    decision or a cancel.

    Usually one query (`locks.request_lock`). When nothing open was read, the request is
    read again under the lock, and an action the engine set to PENDING_APPROVAL by itself
    is adopted (given a request)."""
    request = locks.request_lock(action_id)
    if request is not None and request.is_open:
        return request
    action = request.action if request is not None else locks.action_lock(action_id)
    if action is None:
        raise NotFound(f"No action {action_id}.")
    request = request_latest(action)
    if request is not None and request.is_open:
        request.action = action
        return request
    if action.status == ActionStatus.PENDING_APPROVAL:
        return _adopt(action)
    if request is None:
        raise NotFound(f"Action {action_id} has no approval request.")
    request.action = action
    return request


def approval_adopt(*, action_id: str) -> ApprovalRequest | None:
    """The open request of an action the engine set to PENDING_APPROVAL by itself, opened
    now (as the sweep opens it) when it has none; None when the action is unknown or not
    PENDING_APPROVAL. For the engine's poll, which must never read "no such request" for an
    action waiting for a person. Unlike the sweep it waits for the action's lock: whoever
    holds it (a sweep, a reviewer deciding, another poll) adopts it first, and this call
    then finds that request open and returns it, so racing callers open one request."""
    with transaction.atomic():
        action = locks.action_lock(action_id, pending_only=True)
        if action is None:
            return None
        found = ApprovalRequest.objects.filter(action=action, state__in=OPEN_STATES).order_by("-round").first()
        return found if found is not None else _adopt(action)


def approvals_adopt_pending(*, batch: int = 500) -> int:
    """Open a request for every action the engine set to PENDING_APPROVAL by itself, so
    that it is shown, decided and expires like any other. Each in its own transaction,
    the action locked and rechecked: sweeps and reviewers racing adopt it once."""
    adopted, after = 0, None
    unadopted = (
        Action.objects.filter(status=ActionStatus.PENDING_APPROVAL)
        .exclude(Exists(ApprovalRequest.objects.filter(action=OuterRef("pk"), state__in=OPEN_STATES)))
        .order_by("pk")
    )
    while True:
        page = list((unadopted.filter(pk__gt=after) if after else unadopted).values_list("pk", flat=True)[:batch])
        if not page:
            return adopted
        adopted += sum(_adopt_one(pk) for pk in page)
        after = page[-1]


def _adopt_one(action_id: str) -> bool:
    with transaction.atomic():
        action = locks.action_lock(action_id, skip_locked=True)
        if action is None or action.status != ActionStatus.PENDING_APPROVAL:
            return False  # a reviewer is deciding it right now (and adopts it), or it moved on
        if ApprovalRequest.objects.filter(action=action, state__in=OPEN_STATES).exists():
            return False
        _adopt(action)
        return True
