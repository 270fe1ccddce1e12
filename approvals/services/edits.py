"""An approver's edit of the action's inputs, made with their approval (approval_decide's
`inputs`): the edited inputs are what the engine runs, the original stays on the request,
and the edited action is assessed again.
"""

from django.conf import settings
from django.db.models import Q

from accounts.selectors import Actor
from approvals.deciders import approvals_needed, decision_refusal
from approvals.models import ApprovalRequest, ApprovalVote, Claim
from approvals.services import events, locks
from approvals.services.requests import SEVERITY, assessment_context, raised_fields
from common.errors import Conflict, InvalidInput
from common.parsers import json_problem
from risk.services import risk_assess
from zakops.models import Action


def inputs_diff(before: dict, after: dict) -> dict:
    """What an edit changed, key by key at the top level: added, removed, changed."""
    return {
        "added": {key: after[key] for key in after if key not in before},
        "removed": {key: before[key] for key in before if key not in after},
        "changed": {key: {"from": before[key], "to": after[key]} for key in after if key in before and before[key] != after[key]},
    }


def inputs_checked(inputs) -> dict:
    """Edited inputs: a JSON object the database can store, no deeper than the API allows."""
    if not isinstance(inputs, dict):
        raise InvalidInput("inputs: must be a JSON object.", field="inputs")
    problem = json_problem(inputs, settings.HITL_JSON_MAX_DEPTH - 1)
    if problem:
        path, why = problem
        field = f"inputs.{path}" if path and not path.startswith("[") else f"inputs{path}"
        raise InvalidInput(f"{field}: {why}.", field=field)
    return inputs


def inputs_edit(
    *, request: ApprovalRequest, action: Action, actor: Actor, inputs: dict, reason: str, claim: Claim | None, now
) -> Conflict | None:
    """Edit the inputs, in approval_decide's transaction (the action's row locked). When
    the edit raised the level so that `actor` may no longer approve, the Conflict to raise
    once the edit is committed (and the editor's claim ends: someone else decides now);
    None when the approval goes on."""
    rose_from = _edit(request=request, action=action, actor=actor, inputs=inputs, reason=reason, now=now)
    refusal = decision_refusal(actor=actor, request=request, action=action)
    if not (rose_from and refusal):
        return None
    if claim is not None:
        locks.claim_end(request, reviewer_id=actor.actor_id)
    return Conflict(
        f"Your edit was saved, but it raised the risk from {rose_from} to {request.risk_level}: "
        f"{refusal.rstrip('.')}, so your approval was not recorded.",
        request_id=str(request.id), state=request.state, risk_level=request.risk_level,
        inputs_edited=True, approvals_needed=approvals_needed(request.risk_level),
    )


def _edit(*, request: ApprovalRequest, action: Action, actor: Actor, inputs: dict, reason: str, now) -> str | None:
    """Write the edited inputs to the action (what the engine runs), keep the original on
    the request, assess the edited action again and record the diff. A level that rises
    applies from now on (role, approvals needed, a deadline no later than the new level's);
    a level that falls is not taken: an edit never makes a request easier to approve.
    Earlier votes approved other inputs, so they no longer count. Returns the level the
    assessment rose from, or None."""
    before = action.inputs or {}
    assessment = risk_assess(action_type=action.action_type, inputs=inputs, context=assessment_context(action, None))
    old_level = request.risk_level
    rose = SEVERITY[assessment.level] > SEVERITY[old_level]
    changes = {"original_inputs": before if request.original_inputs is None else request.original_inputs, "votes": []}
    if rose:
        changes.update(raised_fields(request, assessment, now))
    cleared = [vote["name"] for vote in request.votes]
    ApprovalVote.objects.filter(request=request).delete()
    locks.request_compare_and_set(request, when=Q(state=request.state), now=now, **changes)
    events.action_update(action, inputs=inputs, **({"risk_level": assessment.level} if rose else {}))
    events.event_record(
        action=action, request=request, actor=actor, event_type="hitl.inputs_edited", reason=reason,
        diff=inputs_diff(before, inputs), original_inputs=before, inputs=inputs,
        previous_risk_level=old_level, assessed_risk_level=assessment.level, assessed_score=assessment.score,
        votes_cleared=cleared,
    )
    return old_level if rose else None
