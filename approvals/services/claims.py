"""A reviewer's claim on an open request: while one reviewer's claim is live, nobody else
decides the request (approval_decide refuses with ClaimHeld) until they take it over.
Every change to a claim, a release included, holds the action's lock first, as a decision
does (`locks`), so a decision and a claim change on one action take turns and the
decision's check holds until it commits.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.selectors import Actor
from approvals.deciders import actor_refusal, approvals_needed, decision_refusal
from approvals.models import QUEUE_CHANNEL, ApprovalRequest, Claim
from approvals.services import events, locks
from approvals.services.requests import request_latest, settled_conflict
from common.changes import feed
from common.errors import Conflict, NotAllowed, NotFound


class ClaimHeld(Conflict):
    """409: another reviewer holds a live claim on the request."""


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
        # decision commits waits for that decision, which ends the claim itself.
        locks.action_lock(action_id)
        request = request_latest(action_id)
        if request is None:
            raise NotFound(f"Action {action_id} has no approval request.")
        claim = locks.claim_of(request)
        if claim is None or claim.reviewer_id != actor.actor_id:
            return False
        _touch(request, timezone.now())
        return locks.claim_end(request, reviewer_id=actor.actor_id)


def claim_for_decision(*, request: ApprovalRequest, actor: Actor, now) -> Claim | None:
    """The request's claim as a decision by `actor` reads it, the action's row locked: the
    claim in force until the decision commits. Someone else's live claim is a ClaimHeld."""
    claim = locks.claim_of(request)
    if claim is not None and claim.is_live(now) and claim.reviewer_id != actor.actor_id:
        raise ClaimHeld(
            f"Claimed by {claim.reviewer_name} since {_utc(claim.taken_at)}, until {_utc(claim.expires_at)}: "
            "take over the review to decide it.",
            request_id=str(request.id), state=request.state, **_claim_fields(claim),
        )
    return claim


def _claimed_request(action_id: str) -> ApprovalRequest:
    """The action's open request, read after its row is locked."""
    action = locks.action_lock(action_id)
    if action is None:
        raise NotFound(f"No action {action_id}.")
    request = request_latest(action)
    if request is None:
        raise NotFound(f"Action {action_id} has no approval request.")
    if not request.is_open or request.is_overdue:
        raise settled_conflict(request)
    request.action = action
    return request


def _take(*, request: ApprovalRequest, actor: Actor, takeover: bool, renewal: bool, now) -> Claim:
    """Claim `request` for `actor` (the action's row locked by the caller): their own
    claim is renewed, a lapsed one replaced, someone else's live one taken over only when
    asked; otherwise a ClaimHeld that says who holds it (and, to a `renewal`, that they
    took it over)."""
    _check_may_claim(request, actor)
    expires_at = now + timedelta(minutes=settings.HITL_CLAIM_MINUTES)
    current = locks.claim_of(request)
    if current is not None and current.reviewer_id == actor.actor_id:
        return locks.claim_put(request, current, expires_at=expires_at)  # renewed: nothing others see changes
    live = current is not None and current.is_live(now)
    if live and renewal:
        raise ClaimHeld(f"{current.reviewer_name} took over this review at {_utc(current.taken_at)}.", **_claim_fields(current))
    if live and not takeover:
        minutes = max(0, int((now - current.taken_at).total_seconds() // 60))
        raise ClaimHeld(
            f"{current.reviewer_name} is reviewing this request (for {minutes} min); take it over to review it yourself.",
            **_claim_fields(current),
        )
    _touch(request, now)
    if live:
        events.event_record(
            action=request.action, request=request, actor=actor, event_type="hitl.claim_taken_over",
            reason=f"Took over the review from {current.reviewer_name}.",
            previous_reviewer=current.reviewer_name, previous_reviewer_id=str(current.reviewer_id),
        )
    taken = {"reviewer_id": actor.actor_id, "reviewer_name": actor.name, "expires_at": expires_at, "taken_at": now}
    return locks.claim_put(request, current, **taken)


def _check_may_claim(request: ApprovalRequest, actor: Actor) -> None:
    """A claim says "I am deciding this": only who may decide claims, and not a voter
    whose vote is in (holding the request would only keep the next approver off it)."""
    refusal = decision_refusal(actor=actor, request=request, action=request.action)
    if refusal:
        raise NotAllowed(refusal)
    voters = [vote["name"] for vote in request.votes]
    if actor.name in voters:
        raise Conflict(
            f"You already approved this request ({len(voters)} of {approvals_needed(request.risk_level)}); "
            "another eligible reviewer must approve it, so you do not claim it.",
            request_id=str(request.id), state=request.state, votes=request.votes,
        )


def _touch(request: ApprovalRequest, now) -> None:
    # The live queue's version follows the open requests' updated_at: a claim shows at
    # the next refresh of every reviewer's queue.
    locks.request_compare_and_set(request, when=Q(), now=now)
    feed.announce(QUEUE_CHANNEL, key=request.action_id)


def _utc(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _claim_fields(claim: Claim) -> dict:
    return {"claimed_by": claim.reviewer_name, "claimed_at": claim.taken_at, "claim_expires_at": claim.expires_at}
