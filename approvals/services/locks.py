"""Every row lock of the approval workflow, in one module so that their one order can be
read in one place: action, then request, then claim.

1. The action's row (zakops.actions): `action_lock`, or `request_lock`, which reads the
   latest request and locks its action in one query. Every writer of a request, its
   votes or its claim holds it first, so the writers of one action take turns: two
   decisions, a decision and a claim change, a reviewer and a sweep (the sweeps skip an
   action someone holds rather than wait for it).
2. The request's row: `request_compare_and_set`, one `UPDATE … WHERE <the state read>`
   whose row count says whether this caller won; it holds the row until commit.
3. The claim's row: read with `claim_of` under 1, written with `claim_put` or
   `claim_end` after any write of 2.

Rows only the holder of 1 writes (a new request, votes, audit and outbox rows, the
action's checkpoints, whose service locks the action first too) have no place in the
order: nobody waits for them. On SQLite a transaction begins IMMEDIATE and holds the
whole database, so writers take turns there as well.
"""

from django.db.models import Q

from approvals.models import ApprovalRequest, Claim
from zakops.models import Action, ActionStatus


def action_lock(action_id: str, *, skip_locked: bool = False, pending_only: bool = False) -> Action | None:
    """The action's row, locked until commit; None when there is none, when it is not
    PENDING_APPROVAL (`pending_only`), or when another transaction holds it
    (`skip_locked`: the sweeps leave that action to whoever holds it)."""
    actions = Action.objects.select_for_update(skip_locked=skip_locked).filter(pk=action_id)
    if pending_only:
        actions = actions.filter(status=ActionStatus.PENDING_APPROVAL)
    return actions.first()


def request_lock(action_id: str) -> ApprovalRequest | None:
    """The action's latest request, with its action, the action's row locked: usually the
    one query a transition needs. Only the action's row is locked (1): the request's
    columns may be older than the lock if another transition committed while this one
    waited, which the compare-and-set (2) catches."""
    return (
        ApprovalRequest.objects.select_related("action")
        .select_for_update(of=("action",))
        .filter(action_id=action_id)
        .order_by("-round")
        .first()
    )


def request_compare_and_set(request: ApprovalRequest, *, when: Q, now, **changes) -> bool:
    """Move `request` with one `UPDATE … WHERE <when>`; the row count says whether this
    caller won. On a win the object holds what was written, without reading it back."""
    changes["updated_at"] = now
    if not ApprovalRequest.objects.filter(when, pk=request.pk).update(**changes):
        return False
    for name, value in changes.items():
        setattr(request, name, value)
    return True


def claim_of(request: ApprovalRequest) -> Claim | None:
    """The request's claim, live or lapsed. Read under the action's lock, which every
    claim writer holds, it is the claim in force until the reader commits."""
    return Claim.objects.filter(request=request).first()


def claim_put(request: ApprovalRequest, current: Claim | None, **fields) -> Claim:
    """Write the request's claim: `fields` over the `current` one, or a new claim."""
    if current is None:
        return Claim.objects.create(request=request, **fields)
    Claim.objects.filter(pk=current.pk).update(**fields)
    for name, value in fields.items():
        setattr(current, name, value)
    return current


def claim_end(request: ApprovalRequest, *, reviewer_id=None) -> bool:
    """End the request's claim, or only `reviewer_id`'s; whether there was one to end."""
    claims = Claim.objects.filter(request=request)
    if reviewer_id is not None:
        claims = claims.filter(reviewer_id=reviewer_id)
    ended, _ = claims.delete()
    return bool(ended)
