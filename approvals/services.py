"""Writes of the approval workflow (SPEC §3): request, approve, reject, quarantine, cancel,
expire. Every effect of a transition is in this module.

Each transition runs in one transaction and writes, together: the request's new state,
the mirrored fields of the action in zakops.actions (what the engine reads), one
zakops.deal_events row and one zakops.outbox row. Reject, expire and cancel also cancel
the action's active checkpoints. Opening a request that needs a person, quarantining and
expiring also write the notices to send (`approvals.notices`); `hitl_notify`
sends them later, so no transition waits for an e-mail or a webhook.

Exactly one decision wins: the action's row is locked first (PostgreSQL; SQLite
transactions begin IMMEDIATE), then the request moves with a compare-and-set
`UPDATE … WHERE state = <the state read> AND expires_at > now`, whose row count says
whether this caller won. Locks are always taken in the order action, then request.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.selectors import SYSTEM, Actor
from approvals import metrics, notices
from approvals.deciders import actor_refusal, decision_refusal, normalised_addresses
from approvals.models import (
    EXPIRED_REASON,
    OPEN_STATES,
    QUEUE_CHANNEL,
    ApprovalRequest,
    ApprovalVote,
    Claim,
    RequestState,
)
from checkpoints.services import checkpoints_cancel_for_action
from common.changes import feed
from common.errors import Conflict, HitlError, InvalidInput, NotAllowed, NotFound
from common.parsers import json_problem
from risk.rulebook import rulebook_current
from risk.services import risk_assess
from zakops.models import Action, ActionStatus, Deal, DealEvent, OutboxEvent

decision_logger = logging.getLogger("hitl.decisions")

EVENT_SOURCE = "zakops-hitl"
MAX_REASON = 2000

EVENTS = {
    RequestState.PENDING: "hitl.approval_requested",
    RequestState.APPROVED: "hitl.approved",
    RequestState.REJECTED: "hitl.rejected",
    RequestState.QUARANTINED: "hitl.escalated",
    RequestState.EXPIRED: "hitl.expired",
    RequestState.CANCELLED: "hitl.cancelled",
}
SEVERITY = {"low": 0, "medium": 1, "high": 2, "critical": 3}
DECISIONS = {"approve": RequestState.APPROVED, "reject": RequestState.REJECTED, "quarantine": RequestState.QUARANTINED}


def _after_commit(*, action: Action, request: ApprovalRequest, actor: Actor, event_type: str) -> None:
    """Once the transition is committed (never for one rolled back): one log line and the
    metrics. What is logged names the action, the request and the outcome; never the
    reason, which is free text."""
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


def _record(*, action: Action, request: ApprovalRequest, actor: Actor, reason: str) -> None:
    """The audit row and the outbox row of one transition, in the caller's transaction;
    the reviewer pages' live queue hears of it on commit, as do the log and the metrics."""
    event_type = EVENTS[request.state]
    _after_commit(action=action, request=request, actor=actor, event_type=event_type)
    _record_event(action=action, request=request, actor=actor, event_type=event_type, reason=reason)


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

# Statuses from which an action can not be sent (back) to approval: approved and waiting
# to run, running, or finished. The engine creates a new action instead.
NO_NEW_ROUND = (
    ActionStatus.QUEUED, ActionStatus.PROCESSING, ActionStatus.COMPLETED, ActionStatus.CANCELLED, ActionStatus.REJECTED,
)


def _latest_request(action: Action) -> ApprovalRequest | None:
    return ApprovalRequest.objects.filter(action=action).order_by("-round").first()


def _assessment_context(action: Action, context: dict | None) -> dict:
    """The context risk is assessed with: the deal's stored stage counts, and what the
    caller says may only make the assessment stricter (a closed deal), never milder."""
    context = dict(context or {})
    if action.deal_id:
        stored = Deal.objects.filter(pk=action.deal_id).values_list("stage", flat=True).first()
        if stored is not None and context.get("deal_stage") != "closed":
            context["deal_stage"] = stored
    return context


def _open_round(
    *, action: Action, requester: Actor, inputs: dict, context: dict, requested_by: str, adopted: bool = False
) -> ApprovalRequest:
    """Assess the action and open its next round, in the caller's transaction (the action
    row locked). An assessment that needs no approval is approved at once by the system,
    except for an adopted action: the engine itself held it for a person."""
    assessment = risk_assess(action_type=action.action_type, inputs=inputs, context=context)
    reasons = list(assessment.reasons)
    requires_approval = assessment.requires_approval or adopted
    if adopted:
        reasons.append("The engine set the action to PENDING_APPROVAL itself: a person decides.")
    now = timezone.now()
    hours = rulebook_current().config.timeout_hours[assessment.level]
    last = _latest_request(action)
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
    _action_update(
        action, status=ActionStatus.PENDING_APPROVAL, risk_level=assessment.level, requires_human_review=requires_approval,
    )
    _record(action=action, request=request, actor=requester, reason="Adopted from the engine's own pending action." if adopted else "")

    if not requires_approval:
        reason = f"Approved automatically: risk {assessment.level}, no rule requires a person's approval."
        _compare_and_set(
            request, when=Q(state=RequestState.PENDING), now=now, state=RequestState.APPROVED,
            decided_at=now, decided_by_name=SYSTEM.name, reason=reason,
        )
        _action_update(action, status=ActionStatus.QUEUED, approved_at=now, approved_by=None)
        _record(action=action, request=request, actor=SYSTEM, reason=reason)
    else:
        notices.notice(kind=notices.REQUESTED, request=request, action=action, actor=requester)
    return request


def _adopt(action: Action) -> ApprovalRequest:
    """A request for an action the engine set to PENDING_APPROVAL by itself, assessed from
    its row (the caller holds the action's lock and found no open request)."""
    return _open_round(
        action=action, requester=SYSTEM, inputs=action.inputs or {}, context=_assessment_context(action, None),
        requested_by="", adopted=True,
    )


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
    # What the engine runs is the stored row: a request may not describe another action.
    if action.action_type.lower() != action_type.lower():
        raise Conflict(f"Action {action_id} is a {action.action_type}, not a {action_type}.")
    if deal_id is not None and deal_id != action.deal_id:
        raise Conflict(f"Action {action_id} belongs to deal {action.deal_id or 'none'}, not {deal_id}.")
    if inputs is not None and inputs != (action.inputs or {}):
        raise Conflict(f"inputs differ from the stored inputs of action {action_id}, which are what the engine runs.")

    latest = _latest_request(action)
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
        action=action, requester=requester, inputs=action.inputs or {}, context=_assessment_context(action, context),
        requested_by=requested_by,
    )
    return request, True


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
        action_type=action.action_type, inputs=action.inputs or {}, context=_assessment_context(action, context)
    )
    rose = SEVERITY[assessment.level] > SEVERITY[request.risk_level]
    if not named and not rose:
        return
    changes = _raised(request, assessment, now) if rose else {}
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
    _compare_and_set(request, when=Q(state=request.state), now=now, **changes)
    if rose:
        _action_update(action, risk_level=assessment.level)
    _record_event(
        action=action, request=request, actor=requester, event_type="hitl.request_amended", reason="",
        requesters_added=sorted(named), previous_risk_level=previous_level, risk_level_now=request.risk_level,
    )


# --- decisions -----------------------------------------------------------------------


def _settled_conflict(request: ApprovalRequest) -> Conflict:
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


def _compare_and_set(request: ApprovalRequest, *, when: Q, now, **changes) -> bool:
    """Move `request` with one `UPDATE … WHERE <when>`; the row count says whether this
    caller won. On a win the object holds what was written, without reading it back."""
    changes["updated_at"] = now
    if not ApprovalRequest.objects.filter(when, pk=request.pk).update(**changes):
        return False
    for name, value in changes.items():
        setattr(request, name, value)
    return True


def _request_locking_action(action_id: str) -> ApprovalRequest:
    """The action's open request (else its latest), with the action's row locked.

    Usually one query. Its request columns may be older than the lock if another
    decision committed while this one waited; the compare-and-set on its state catches
    that. When nothing open was read, the request is read again under the lock, and an
    action the engine set to PENDING_APPROVAL by itself is adopted (given a request)."""
    request = (
        ApprovalRequest.objects.select_related("action")
        .select_for_update(of=("action",))
        .filter(action_id=action_id)
        .order_by("-round")
        .first()
    )
    if request is not None and request.is_open:
        return request
    action = request.action if request is not None else _locked_action(action_id)
    if action is None:
        raise NotFound(f"No action {action_id}.")
    request = _latest_request(action)
    if request is not None and request.is_open:
        request.action = action
        return request
    if action.status == ActionStatus.PENDING_APPROVAL:
        return _adopt(action)
    if request is None:
        raise NotFound(f"Action {action_id} has no approval request.")
    request.action = action
    return request


def approvals_needed(level: str) -> int:
    """How many approvals by different people a request of `level` needs (a setting)."""
    return settings.HITL_APPROVALS_NEEDED.get(level, 1)


def inputs_diff(before: dict, after: dict) -> dict:
    """What an edit changed, key by key at the top level: added, removed, changed."""
    return {
        "added": {key: after[key] for key in after if key not in before},
        "removed": {key: before[key] for key in before if key not in after},
        "changed": {key: {"from": before[key], "to": after[key]} for key in after if key in before and before[key] != after[key]},
    }


def _check_inputs(inputs) -> dict:
    """Edited inputs: a JSON object the database can store, no deeper than the API allows."""
    if not isinstance(inputs, dict):
        raise InvalidInput("inputs: must be a JSON object.", field="inputs")
    problem = json_problem(inputs, settings.HITL_JSON_MAX_DEPTH - 1)
    if problem:
        path, why = problem
        field = f"inputs.{path}" if path and not path.startswith("[") else f"inputs{path}"
        raise InvalidInput(f"{field}: {why}.", field=field)
    return inputs


def _record_event(*, action: Action, request: ApprovalRequest, actor: Actor, event_type: str, **extra) -> None:
    """An audit row and its outbox row, in the caller's transaction: for a transition
    (through _record), or for something that is not a state change (a vote, an edit, a
    takeover)."""
    feed.announce(QUEUE_CHANNEL)
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


def _raised(request: ApprovalRequest, assessment, now) -> dict:
    """The request's fields once a stricter assessment applies: its level's rules (role,
    approvals needed) and a deadline no later than that level's."""
    hours = rulebook_current().config.timeout_hours[assessment.level]
    return dict(
        risk_level=assessment.level, score=assessment.score, reasons=list(assessment.reasons),
        recommendations=assessment.recommendations, matched_rules=assessment.matched_rules,
        score_breakdown=assessment.breakdown, requires_approval=True,
        expires_at=min(request.expires_at, now + timedelta(hours=hours)),
    )


def _edit_inputs(*, request: ApprovalRequest, action: Action, actor: Actor, inputs: dict, reason: str, now) -> str | None:
    """Write the edited inputs to the action (what the engine runs), keep the original on
    the request, assess the edited action again and record the diff. A level that rises
    applies from now on (role, approvals needed, a deadline no later than the new level's);
    a level that falls is not taken: an edit never makes a request easier to approve.
    Earlier votes approved other inputs, so they no longer count. Returns the level the
    assessment rose from, or None."""
    before = action.inputs or {}
    assessment = risk_assess(action_type=action.action_type, inputs=inputs, context=_assessment_context(action, None))
    old_level = request.risk_level
    rose = SEVERITY[assessment.level] > SEVERITY[old_level]
    changes = {"original_inputs": before if request.original_inputs is None else request.original_inputs, "votes": []}
    if rose:
        changes.update(_raised(request, assessment, now))
    cleared = [vote["name"] for vote in request.votes]
    ApprovalVote.objects.filter(request=request).delete()
    _compare_and_set(request, when=Q(state=request.state), now=now, **changes)
    _action_update(action, inputs=inputs, **({"risk_level": assessment.level} if rose else {}))
    _record_event(
        action=action, request=request, actor=actor, event_type="hitl.inputs_edited", reason=reason,
        diff=inputs_diff(before, inputs), original_inputs=before, inputs=inputs,
        previous_risk_level=old_level, assessed_risk_level=assessment.level, assessed_score=assessment.score,
        votes_cleared=cleared,
    )
    return old_level if rose else None


def approval_decide(
    *, action_id: str, actor: Actor, decision: str, reason: str = "", inputs: dict | None = None
) -> ApprovalRequest:
    """Approve, reject or quarantine the action's open request; exactly one caller wins.
    Another reviewer's live claim refuses it (ClaimHeld) until the caller takes it over.

    An approval of a level that needs more than one (HITL_APPROVALS_*) is a vote until
    the last one: the request stays pending, with the vote on it. With `inputs`, an
    approver edits the action's inputs and approves in one step; when the edit raises the
    level so that this approval no longer completes it under the new level's rules, the
    edit is kept and a Conflict says who must decide now."""
    if decision not in DECISIONS:
        raise InvalidInput(f"decision: one of {', '.join(DECISIONS)}.", field="decision")
    reason = _check_reason(reason, required=decision != "approve")
    if inputs is not None:
        if decision != "approve":
            raise InvalidInput("inputs: only an approval can edit the inputs.", field="inputs")
        inputs = _check_inputs(inputs)
    refusal = actor_refusal(actor)
    if refusal:
        raise NotAllowed(refusal)
    after_edit = None
    with transaction.atomic():
        request = _request_locking_action(action_id)
        action = request.action
        now = timezone.now()
        if not request.is_open or request.expires_at <= now:
            raise _settled_conflict(request)
        if decision == "quarantine" and request.state == RequestState.QUARANTINED:
            raise Conflict("The request is already quarantined.", request_id=str(request.id), state=request.state)
        refusal = decision_refusal(actor=actor, request=request, action=action)
        if refusal:
            raise NotAllowed(refusal)
        # Read after the action's lock, which every claim change takes too: the claim seen
        # here is the one in force until this decision commits.
        claim = Claim.objects.filter(request=request).first()
        if claim is not None and claim.is_live(now) and claim.reviewer_id != actor.actor_id:
            raise _claim_held(claim, request)
        if decision == "approve" and ApprovalVote.objects.filter(request=request, voter_id=actor.actor_id).exists():
            needed = approvals_needed(request.risk_level)
            raise Conflict(
                f"You already approved this request ({len(request.votes)} of {needed}); another eligible reviewer must approve it.",
                request_id=str(request.id), state=request.state, votes=request.votes,
            )

        if inputs is not None and inputs != (action.inputs or {}):
            rose_from = _edit_inputs(request=request, action=action, actor=actor, inputs=inputs, reason=reason, now=now)
            refusal = decision_refusal(actor=actor, request=request, action=action)
            if rose_from and refusal:
                if claim is not None:  # someone else decides it now: the editor's claim would hold them off
                    Claim.objects.filter(request=request, reviewer_id=actor.actor_id).delete()
                after_edit = Conflict(
                    f"Your edit was saved, but it raised the risk from {rose_from} to {request.risk_level}: "
                    f"{refusal.rstrip('.')}, so your approval was not recorded.",
                    request_id=str(request.id), state=request.state, risk_level=request.risk_level,
                    inputs_edited=True, approvals_needed=approvals_needed(request.risk_level),
                )
        if after_edit is None:
            request = _decide_locked(
                request=request, action=action, actor=actor, decision=decision, reason=reason, now=now, claimed=claim is not None,
            )
    if after_edit is not None:
        raise after_edit
    return request


def _decide_locked(
    *, request: ApprovalRequest, action: Action, actor: Actor, decision: str, reason: str, now, claimed: bool
) -> ApprovalRequest:
    """The decision, once every check passed (the action's row locked); `claimed` says
    whether the request had a claim row, which the decision then ends."""
    new_state = DECISIONS[decision]
    extra = {}
    needed = approvals_needed(request.risk_level) if decision == "approve" else 1
    if needed > 1:
        # Each approval is a vote; the last one also approves the request.
        counted = ApprovalVote.objects.filter(request=request).count()
        ApprovalVote.objects.create(request=request, voter_id=actor.actor_id, voter_name=actor.name, reason=reason, created_at=now)
        extra["votes"] = [*request.votes, {"name": actor.name, "at": now.isoformat()}]
        last = counted + 1 >= needed
        if not last and not _compare_and_set(request, when=Q(state=request.state, expires_at__gt=now), now=now, **extra):
            request.refresh_from_db()
            raise _settled_conflict(request)
        _record_event(
            action=action, request=request, actor=actor, event_type="hitl.approval_vote", reason=reason,
            votes=counted + 1, approvals_needed=needed,
        )
        if not last:
            if claimed:  # the voter's claim ends: the next approver claims it
                Claim.objects.filter(request=request, reviewer_id=actor.actor_id).delete()
            return request

    if decision == "quarantine":
        changes = {"escalated_by": actor.actor_id, "escalated_by_name": actor.name, "escalated_at": now, "escalation_reason": reason}
    else:
        changes = {"decided_by": actor.actor_id, "decided_by_name": actor.name, "decided_at": now, "reason": reason}
    if not _compare_and_set(request, when=Q(state=request.state, expires_at__gt=now), now=now, state=new_state, **changes, **extra):
        request.refresh_from_db()
        raise _settled_conflict(request)

    if new_state == RequestState.APPROVED:
        _action_update(action, status=ActionStatus.QUEUED, approved_by=actor.actor_id, approved_at=now)
    elif new_state == RequestState.REJECTED:
        _action_update(action, status=ActionStatus.REJECTED)
        checkpoints_cancel_for_action(action_id=action.action_id)
    elif new_state == RequestState.QUARANTINED:
        notices.notice(kind=notices.QUARANTINED, request=request, action=action, actor=actor, reason=reason)
    if claimed:
        # A decided request is nobody's to review; a quarantined one waits for an admin,
        # whom the quarantining reviewer's claim must not hold off.
        Claim.objects.filter(request=request).delete()
    _record(action=action, request=request, actor=actor, reason=reason)
    return request


@dataclass(frozen=True)
class DecisionOutcome:
    """What became of one decision of a batch: `decided`, `conflict` (already decided,
    expired, cancelled), `claimed` (someone else is reviewing it), `refused` (not allowed,
    or bad input) or `missing`."""

    action_id: str
    outcome: str
    detail: str
    request: ApprovalRequest | None = None
    # For a conflict: request_id, state, decided_by_name, decided_at, reason; for a claimed
    # request: claimed_by, claimed_at, claim_expires_at.
    conflict: dict | None = None


def approvals_decide_many(*, actor: Actor, decisions: list[tuple]) -> list[DecisionOutcome]:
    """Decide each (action_id, decision, reason[, inputs]) in its own transaction, so that
    one refusal or conflict undoes nothing else; an outcome for each, in the order given.

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
    except ClaimHeld as exc:
        return DecisionOutcome(action_id, "claimed", exc.detail, conflict=exc.extra)
    except Conflict as exc:
        return DecisionOutcome(action_id, "conflict", exc.detail, conflict=exc.extra)
    except NotFound as exc:
        return DecisionOutcome(action_id, "missing", exc.detail)
    except HitlError as exc:
        return DecisionOutcome(action_id, "refused", exc.detail)
    if request.state == RequestState.PENDING and request.votes:
        needed = approvals_needed(request.risk_level)
        detail = (
            f"Approval recorded: {len(request.votes)} of {needed} "
            f"({', '.join(vote['name'] for vote in request.votes)}); another eligible reviewer must approve."
        )
    else:
        detail = f"{request.state.title()}."
    return DecisionOutcome(action_id, "decided", detail, request=request)


# --- claims --------------------------------------------------------------------------
#
# A claim is a lock on an open request: while one reviewer's claim is live, nobody else
# decides the request (approval_decide refuses with ClaimHeld) until they take it over.
# Every change to a claim, a release included, locks the action's row first, as a
# decision does, so a decision and a claim change on one action take turns and the
# decision's check holds until it commits.


class ClaimHeld(Conflict):
    """409: another reviewer holds a live claim on the request."""


def _claim_minutes() -> timedelta:
    return timedelta(minutes=settings.HITL_CLAIM_MINUTES)


def _utc(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _claim_fields(claim: Claim) -> dict:
    return {"claimed_by": claim.reviewer_name, "claimed_at": claim.taken_at, "claim_expires_at": claim.expires_at}


def _claim_held(claim: Claim, request: ApprovalRequest) -> ClaimHeld:
    return ClaimHeld(
        f"Claimed by {claim.reviewer_name} since {_utc(claim.taken_at)}, until {_utc(claim.expires_at)}: "
        "take over the review to decide it.",
        request_id=str(request.id), state=request.state, **_claim_fields(claim),
    )


def _claim_conflict(claim: Claim, now) -> ClaimHeld:
    minutes = max(0, int((now - claim.taken_at).total_seconds() // 60))
    return ClaimHeld(
        f"{claim.reviewer_name} is reviewing this request (for {minutes} min); take it over to review it yourself.",
        **_claim_fields(claim),
    )


def _claimed_request(action_id: str) -> ApprovalRequest:
    """The action's open request, read after its row is locked (the order every writer
    of the workflow takes its locks in)."""
    action = _locked_action(action_id)
    if action is None:
        raise NotFound(f"No action {action_id}.")
    request = _latest_request(action)
    if request is None:
        raise NotFound(f"Action {action_id} has no approval request.")
    if not request.is_open or request.is_overdue:
        raise _settled_conflict(request)
    request.action = action
    return request


def _touch(request: ApprovalRequest, now) -> None:
    # The live queue's version follows the open requests' updated_at: a claim shows at
    # the next refresh of every reviewer's queue.
    ApprovalRequest.objects.filter(pk=request.pk).update(updated_at=now)
    feed.announce(QUEUE_CHANNEL)


def _take(*, request: ApprovalRequest, actor: Actor, takeover: bool, renewal: bool, now) -> Claim:
    """Claim `request` for `actor` (the action's row locked by the caller): their own
    claim is renewed, a lapsed one replaced, someone else's live one taken over only when
    asked; otherwise a ClaimHeld that says who holds it (and, to a `renewal`, that they
    took it over)."""
    refusal = decision_refusal(actor=actor, request=request, action=request.action)
    if refusal:
        raise NotAllowed(refusal)  # a claim says "I am deciding this": only who may decide claims
    voters = [vote["name"] for vote in request.votes]
    if actor.name in voters:
        # Their vote is in; holding the request would only keep the next approver off it.
        raise Conflict(
            f"You already approved this request ({len(voters)} of {approvals_needed(request.risk_level)}); "
            "another eligible reviewer must approve it, so you do not claim it.",
            request_id=str(request.id), state=request.state, votes=request.votes,
        )
    expires_at = now + _claim_minutes()
    claims = Claim.objects.filter(request=request)
    if claims.filter(reviewer_id=actor.actor_id).update(expires_at=expires_at):
        return claims.get()  # their own claim, renewed: nothing others see changes
    taken = {"reviewer_id": actor.actor_id, "reviewer_name": actor.name, "expires_at": expires_at, "taken_at": now}
    current = claims.first()
    if current is None:
        Claim.objects.create(request=request, **taken)
    elif not current.is_live(now):
        claims.update(**taken)
    elif takeover:
        claims.update(**taken)
        _record_event(
            action=request.action, request=request, actor=actor, event_type="hitl.claim_taken_over",
            reason=f"Took over the review from {current.reviewer_name}.",
            previous_reviewer=current.reviewer_name, previous_reviewer_id=str(current.reviewer_id),
        )
    elif renewal:
        raise ClaimHeld(f"{current.reviewer_name} took over this review at {_utc(current.taken_at)}.", **_claim_fields(current))
    else:
        raise _claim_conflict(current, now)
    _touch(request, now)
    return claims.get()


def claim_take(*, actor: Actor, action_id: str, takeover: bool = False) -> Claim:
    """Claim the action's open request for `actor` for HITL_CLAIM_MINUTES, or renew their
    claim. Someone else's live claim is a ClaimHeld unless `takeover`, which is written to
    the request's history. Two takers at once: the action's lock makes them take turns,
    and the second finds the first's claim."""
    refusal = actor_refusal(actor)
    if refusal:
        raise NotAllowed(refusal)
    with transaction.atomic():
        request = _claimed_request(action_id)
        return _take(request=request, actor=actor, takeover=takeover, renewal=False, now=timezone.now())


def claim_renew(*, actor: Actor, action_id: str) -> Claim:
    """What a reviewer's open page sends while they look at the request: their claim is
    extended (or taken, when nobody holds it); when someone took it over meanwhile, a
    ClaimHeld says who and when."""
    refusal = actor_refusal(actor)
    if refusal:
        raise NotAllowed(refusal)
    with transaction.atomic():
        request = _claimed_request(action_id)
        return _take(request=request, actor=actor, takeover=False, renewal=True, now=timezone.now())


def claim_release(*, actor: Actor, action_id: str) -> bool:
    """End the actor's claim on the action's request, if they hold one; whether they did."""
    refusal = actor_refusal(actor)
    if refusal:
        raise NotAllowed(refusal)  # nobody else ever holds a claim to release
    with transaction.atomic():
        # The action's lock first, as for every claim change: a page left as its reviewer's
        # decision commits waits for that decision (which ends the claim itself), where
        # the two would otherwise each hold the row the other writes next.
        _locked_action(action_id)
        request = ApprovalRequest.objects.filter(action_id=action_id).order_by("-round").first()
        if request is None:
            raise NotFound(f"Action {action_id} has no approval request.")
        released, _ = Claim.objects.filter(request=request, reviewer_id=actor.actor_id).delete()
        if released:
            _touch(request, timezone.now())
        return bool(released)


@transaction.atomic
def approval_cancel(*, action_id: str, actor: Actor, reason: str = "") -> ApprovalRequest:
    """The engine withdraws the action: its open request is cancelled, the action too.

    Only the engine (a service account) or code in process: a reviewer who does not want
    an action run rejects it, which the audit trail records as a decision."""
    reason = _check_reason(reason, required=False)
    if actor.kind == "user":
        raise NotAllowed("Only the engine (a service account) can cancel an action; a reviewer rejects it instead.")
    request = _request_locking_action(action_id)
    action = request.action
    now = timezone.now()
    cancelled = _compare_and_set(
        request, when=Q(state__in=OPEN_STATES, expires_at__gt=now), now=now, state=RequestState.CANCELLED,
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
        # Recorded as expired at its deadline, as the poll has reported it since then.
        expired = _compare_and_set(
            request, when=Q(state__in=OPEN_STATES, expires_at__lte=now), now=now, state=RequestState.EXPIRED,
            decided_by_name=SYSTEM.name, decided_at=request.expires_at, reason=EXPIRED_REASON,
        )
        if not expired:
            return False
        _action_update(action, status=ActionStatus.REJECTED)  # an expired action must never run
        checkpoints_cancel_for_action(action_id=action.action_id)
        _record(action=action, request=request, actor=SYSTEM, reason=EXPIRED_REASON)
        notices.notice(kind=notices.EXPIRED, request=request, action=action, actor=SYSTEM)
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


def _adopt_one(action_id: str) -> bool:
    with transaction.atomic():
        action = Action.objects.select_for_update(skip_locked=True).filter(pk=action_id).first()
        if action is None or action.status != ActionStatus.PENDING_APPROVAL:
            return False  # a reviewer is deciding it right now (and adopts it), or it moved on
        if ApprovalRequest.objects.filter(action=action, state__in=OPEN_STATES).exists():
            return False
        _adopt(action)
        return True


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


def approval_adopt(*, action_id: str) -> ApprovalRequest | None:
    """The open request of an action the engine set to PENDING_APPROVAL by itself, opened
    now (as the sweep opens it) when it has none; None when the action is unknown or not
    PENDING_APPROVAL. For the engine's poll, which must never read "no such request" for an
    action waiting for a person. Unlike the sweep it waits for the action's lock: whoever
    holds it (a sweep, a reviewer deciding, another poll) adopts it first, and this call
    then finds that request open and returns it, so racing callers open one request."""
    with transaction.atomic():
        action = Action.objects.select_for_update().filter(pk=action_id, status=ActionStatus.PENDING_APPROVAL).first()
        if action is None:
            return None
        found = ApprovalRequest.objects.filter(action=action, state__in=OPEN_STATES).order_by("-round").first()
        return found if found is not None else _adopt(action)
