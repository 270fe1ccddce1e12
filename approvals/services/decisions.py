"""Deciding an approval request: approve, reject or quarantine; the votes of a level that
needs several people; and a batch of decisions, each through the same single decision.

Exactly one decision wins: the action's row is locked first, then the request moves with a
compare-and-set `UPDATE … WHERE state = <the state read> AND expires_at > now`, whose row
count says whether this caller won (`locks`). Reject also cancels the action's active
checkpoints; quarantine, approval and rejection write the notices to send (`approvals.notices`).
"""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.selectors import Actor
from approvals import notices
from approvals.deciders import actor_refusal, approval_needs_reason, approvals_needed, decision_refusal
from approvals.models import ApprovalRequest, ApprovalVote, Claim, RequestState
from approvals.services import events, locks
from approvals.services.claims import ClaimHeld, claim_for_decision
from approvals.services.edits import inputs_checked, inputs_edit
from approvals.services.requests import request_to_decide, settled_conflict
from checkpoints.services import checkpoints_cancel_for_action
from common.errors import Conflict, HitlError, InvalidInput, NotAllowed, NotFound
from zakops.models import Action, ActionStatus

MAX_REASON = 2000
DECISIONS = {"approve": RequestState.APPROVED, "reject": RequestState.REJECTED, "quarantine": RequestState.QUARANTINED}


def reason_checked(reason: str, *, required: bool) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise InvalidInput("reason: a reason is required.", field="reason")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"reason: at most {MAX_REASON} characters.", field="reason")
    return reason


def approval_decide(
    *, action_id: str, actor: Actor, decision: str, reason: str = "", inputs: dict | None = None
) -> ApprovalRequest:
    """Approve, reject or quarantine the action's open request; exactly one caller wins.
    Another reviewer's live claim refuses it (ClaimHeld) until the caller takes it over.
    The reviewer pages' single decision, the API's and each item of a batch enter here.

    An approval of a level that needs more than one (HITL_APPROVALS_*) is a vote until
    the last one: the request stays pending, with the vote on it. With `inputs`, an
    approver edits the action's inputs and approves in one step; when the edit raises the
    level so that this approval no longer completes it under the new level's rules, the
    edit is kept and a Conflict says who must decide now."""
    refusal = actor_refusal(actor)  # who may decide nothing is told so before their input is read
    if refusal:
        raise NotAllowed(refusal)
    if decision not in DECISIONS:
        raise InvalidInput(f"decision: one of {', '.join(DECISIONS)}.", field="decision")
    reason = reason_checked(reason, required=decision != "approve")
    if inputs is not None:
        if decision != "approve":
            raise InvalidInput("inputs: only an approval can edit the inputs.", field="inputs")
        inputs = inputs_checked(inputs)
    after_edit = None
    with transaction.atomic():
        request = request_to_decide(action_id)
        action, now = request.action, timezone.now()
        claim = _check_decidable(request=request, actor=actor, decision=decision, reason=reason, now=now)
        if inputs is not None and inputs != (action.inputs or {}):
            after_edit = inputs_edit(
                request=request, action=action, actor=actor, inputs=inputs, reason=reason, claim=claim, now=now
            )
        if after_edit is None:
            request = _decide_locked(
                request=request, action=action, actor=actor, decision=decision, reason=reason, now=now,
                claimed=claim is not None,
            )
    if after_edit is not None:
        raise after_edit  # after the commit: the edit stands
    return request


def _check_decidable(*, request: ApprovalRequest, actor: Actor, decision: str, reason: str, now) -> Claim | None:
    """Refuse a decision the request no longer admits, or `actor` may not make; the
    request's claim, read under the action's lock, when it lets them."""
    if not request.is_open or request.expires_at <= now:
        raise settled_conflict(request)
    if decision == "quarantine" and request.state == RequestState.QUARANTINED:
        raise Conflict("The request is already quarantined.", request_id=str(request.id), state=request.state)
    refusal = decision_refusal(actor=actor, request=request, action=request.action)
    if refusal:
        raise NotAllowed(refusal)
    claim = claim_for_decision(request=request, actor=actor, now=now)
    if decision == "approve" and not reason and approval_needs_reason(request):
        raise InvalidInput(
            f"reason: a reason is required to approve a {approval_needs_reason(request)} request; it is recorded with the approval.",
            field="reason",
        )
    if decision == "approve" and ApprovalVote.objects.filter(request=request, voter_id=actor.actor_id).exists():
        needed = approvals_needed(request.risk_level)
        raise Conflict(
            f"You already approved this request ({len(request.votes)} of {needed}); another eligible reviewer must approve it.",
            request_id=str(request.id), state=request.state, votes=request.votes,
        )
    return claim


def _decide_locked(
    *, request: ApprovalRequest, action: Action, actor: Actor, decision: str, reason: str, now, claimed: bool
) -> ApprovalRequest:
    """The decision, once every check passed (the action's row locked); `claimed` says
    whether the request had a claim row, which the decision then ends."""
    extra = {}
    needed = approvals_needed(request.risk_level) if decision == "approve" else 1
    if needed > 1:
        extra["votes"], last = _vote(request=request, action=action, actor=actor, reason=reason, now=now, needed=needed)
        if not last:
            if claimed:  # the voter's claim ends: the next approver claims it
                locks.claim_end(request, reviewer_id=actor.actor_id)
            return request

    if decision == "quarantine":
        changes = {"escalated_by": actor.actor_id, "escalated_by_name": actor.name, "escalated_at": now, "escalation_reason": reason}
    else:
        changes = {"decided_by": actor.actor_id, "decided_by_name": actor.name, "decided_at": now, "reason": reason}
    new_state = DECISIONS[decision]
    when = Q(state=request.state, expires_at__gt=now)
    if not locks.request_compare_and_set(request, when=when, now=now, state=new_state, **changes, **extra):
        request.refresh_from_db()
        raise settled_conflict(request)

    if new_state == RequestState.APPROVED:
        events.action_update(action, status=ActionStatus.QUEUED, approved_by=actor.actor_id, approved_at=now)
    elif new_state == RequestState.REJECTED:
        events.action_update(action, status=ActionStatus.REJECTED)
        checkpoints_cancel_for_action(action_id=action.action_id)
    if new_state == RequestState.QUARANTINED:
        notices.notice(kind=notices.QUARANTINED, request=request, action=action, actor=actor, reason=reason)
    else:
        notices.notice(kind=notices.DECIDED, request=request, action=action, actor=actor, reason=reason)
    if claimed:
        # A decided request is nobody's to review; a quarantined one waits for an admin,
        # whom the quarantining reviewer's claim must not hold off.
        locks.claim_end(request)
    events.transition_record(action=action, request=request, actor=actor, reason=reason)
    return request


def _vote(*, request: ApprovalRequest, action: Action, actor: Actor, reason: str, now, needed: int) -> tuple[list, bool]:
    """One approval of a request that needs `needed` by different people: its vote row,
    its audit row, and the request's votes with it; whether it is the last. The request
    takes the votes now unless this is the last, which the approval writes with them."""
    counted = ApprovalVote.objects.filter(request=request).count()
    ApprovalVote.objects.create(request=request, voter_id=actor.actor_id, voter_name=actor.name, reason=reason, created_at=now)
    votes = [*request.votes, {"name": actor.name, "at": now.isoformat()}]
    last = counted + 1 >= needed
    when = Q(state=request.state, expires_at__gt=now)
    if not last and not locks.request_compare_and_set(request, when=when, now=now, votes=votes):
        request.refresh_from_db()
        raise settled_conflict(request)
    events.event_record(
        action=action, request=request, actor=actor, event_type="hitl.approval_vote", reason=reason,
        votes=counted + 1, approvals_needed=needed,
    )
    return votes, last


# --- a batch ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionOutcome:
    """What became of one decision of a batch, or of the pages' single one: `decided`,
    `conflict` (already decided, expired, cancelled), `claimed` (someone else is reviewing
    it), `refused` (not allowed, or bad input) or `missing`."""

    action_id: str
    outcome: str
    detail: str
    request: ApprovalRequest | None = None
    # For a conflict: request_id, state, decided_by_name, decided_at, reason; for a claimed
    # request: claimed_by, claimed_at, claim_expires_at.
    conflict: dict | None = None

    @classmethod
    def decided(cls, action_id: str, request: ApprovalRequest) -> "DecisionOutcome":
        """What approval_decide returned, as the reviewer reads it: a vote says how many more."""
        if request.state == RequestState.PENDING and request.votes:
            detail = (
                f"Approval recorded: {len(request.votes)} of {approvals_needed(request.risk_level)} "
                f"({', '.join(vote['name'] for vote in request.votes)}); another eligible reviewer must approve."
            )
        else:
            detail = f"{request.state.title()}."
        return cls(action_id, "decided", detail, request=request)

    @classmethod
    def failed(cls, action_id: str, error: HitlError) -> "DecisionOutcome":
        """What approval_decide refused with, as the reviewer reads it."""
        if isinstance(error, ClaimHeld):
            return cls(action_id, "claimed", error.detail, conflict=error.extra)
        if isinstance(error, Conflict):
            return cls(action_id, "conflict", error.detail, conflict=error.extra)
        if isinstance(error, NotFound):
            return cls(action_id, "missing", error.detail)
        return cls(action_id, "refused", error.detail)


def approvals_decide_many(*, actor: Actor, decisions: list[tuple]) -> list[DecisionOutcome]:
    """Decide each (action_id, decision, reason[, inputs]) through approval_decide, each in
    its own transaction, so that one refusal or conflict undoes nothing else; an outcome
    for each, in the order given.

    A caller who may decide nothing (a viewer, a service account) is refused as a whole.
    The actions are decided in the order of their ids (a stable sort: one action's items
    keep their order), so that a batch run inside a caller's transaction (the API's
    Idempotency-Key) locks rows in the same order as any other batch."""
    refusal = actor_refusal(actor)
    if refusal:
        raise NotAllowed(refusal)
    outcomes: list[DecisionOutcome | None] = [None] * len(decisions)
    for at in sorted(range(len(decisions)), key=lambda index: decisions[index][0]):
        outcomes[at] = _decide_one(actor, *decisions[at])
    return outcomes


def _decide_one(actor: Actor, action_id: str, decision: str, reason: str, *edited) -> DecisionOutcome:
    try:
        request = approval_decide(
            action_id=action_id, actor=actor, decision=decision, reason=reason, inputs=edited[0] if edited else None
        )
    except HitlError as exc:
        return DecisionOutcome.failed(action_id, exc)
    return DecisionOutcome.decided(action_id, request)
