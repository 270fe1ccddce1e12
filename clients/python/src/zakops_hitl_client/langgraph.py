"""The approval gate for LangGraph agents: call `approval_gate` in a node before a tool
runs. It assesses the call; when no person is needed it returns at once. Otherwise it
opens the approval request (idempotently: the node running again opens nothing new) and
pauses the graph with `interrupt()`, the payload in the Agent Inbox `HumanInterrupt`
shape. When the graph resumes, the gate reads the decision from the API: the resume value
is never trusted, so a forged "accept" runs nothing and the graph pauses again.

`resume_decided` resumes a paused thread whose requests are decided; `resume_all` does it
for every paused thread of a graph (the `resumer` worker calls it in a loop).

Needs the `langgraph` extra: `pip install zakops-hitl-client[langgraph]`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, TypedDict

from langgraph.types import Command, interrupt

from zakops_hitl_client.client import AsyncHitlClient, HitlClient
from zakops_hitl_client.errors import Conflict, NotFound
from zakops_hitl_client.models import Approval, Assessment, Decision

RUN_CHECKPOINT = "hitl.gate.run"
log = logging.getLogger("zakops_hitl_client.langgraph")


class ToolCall(TypedDict, total=False):
    """One pending tool call, as the list form takes them (ZakOps' `pending_tool_calls`)."""

    action_id: str  # required
    action_type: str  # required
    args: dict[str, Any]  # required
    title: str | None
    deal_id: str | None


@dataclass(frozen=True)
class GateResult:
    """What the gate decided for one tool call. Run the tool only when `approved`, with
    `args` (the inputs as approved, a reviewer's edits included). `needed_person` is False
    for a call that needed no approval; `state` is the request's (approved, rejected,
    expired, cancelled), or `not_required`, or `already_run` when another execution of
    this node already took the approved call's one run."""

    action_id: str
    approved: bool
    args: dict[str, Any]
    reason: str
    decided_by: str | None
    state: str
    needed_person: bool
    level: str


def _description(assessment: Assessment, title: str | None) -> str:
    reasons = "; ".join(assessment.reasons) or "no rule gave a reason"
    head = f"{title}: " if title else ""
    return f"{head}{assessment.level} risk (score {assessment.score:.2f}). {reasons}"


def _interrupt_item(call: ToolCall, assessment: Assessment, approval: Approval) -> dict[str, Any]:
    """An Agent Inbox HumanInterrupt, plus the action and request ids."""
    return {
        "action_request": {"action": call["action_type"], "args": call["args"]},
        "config": {"allow_ignore": False, "allow_respond": True, "allow_edit": True, "allow_accept": True},
        "description": _description(assessment, call.get("title")),
        "action_id": call["action_id"],
        "request_id": approval.request_id,
        "risk_level": assessment.level,
    }


def _run_key(decision: Decision) -> str:
    return hashlib.sha256(f"zakops-hitl-gate:{decision.action_id}:{decision.request_id}".encode()).hexdigest()[:48]


def _claim_run(client: HitlClient, decision: Decision) -> bool:
    """True for the one execution that may run the approved call: a checkpoint saved under
    a key fixed by the request (every execution gets the same one back) and resumed, which
    the server allows once. Another execution (the node run again, a second resumer) gets
    a conflict and runs nothing: at most once."""
    saved = client.save_checkpoint(
        decision.action_id, RUN_CHECKPOINT, {"request_id": decision.request_id}, checkpoint_type="approval_gate",
        idempotency_key=_run_key(decision),
    )
    try:
        client.resume_checkpoint(decision.action_id, saved.checkpoint_id)
    except Conflict:
        return False
    return True


def _result(call: ToolCall, assessment: Assessment, decision: Decision, *, claimed: bool) -> GateResult:
    """The gate's answer for a decided call; `claimed` says whether this execution took
    the approved call's one run."""
    approved, state = decision.approved, decision.state
    if approved and not claimed:
        approved, state = False, "already_run"
    args = decision.inputs if decision.inputs is not None else call["args"]
    return GateResult(
        action_id=call["action_id"], approved=approved, args=args if approved else call["args"],
        reason=decision.reason, decided_by=decision.decided_by, state=state, needed_person=True,
        level=assessment.level,
    )


def _not_required(call: ToolCall, assessment: Assessment) -> GateResult:
    return GateResult(call["action_id"], True, call["args"], "", None, "not_required", False, assessment.level)


def _opened(client: HitlClient, call: ToolCall) -> Approval:
    """The call's request: the one the server holds (this node ran before: the request may
    be decided, its inputs edited), else a new one. Never a second."""
    try:
        return client.get_approval(call["action_id"])
    except NotFound:
        return client.request_approval(
            call["action_id"], call["action_type"], call["args"], title=call.get("title"), deal_id=call.get("deal_id"),
        )


def approval_gates(client: HitlClient, calls: list[ToolCall]) -> list[GateResult]:
    """The gate for several pending tool calls at once: one request each, one pause for
    all of them, and the graph goes on only when every one is decided. Results in the
    order of `calls`."""
    assessments = [client.assess_risk(c["action_type"], c["args"]) for c in calls]
    results: dict[int, GateResult] = {}
    approvals: dict[int, Approval] = {}
    for i, (call, assessment) in enumerate(zip(calls, assessments)):
        if not assessment.needs_person:
            results[i] = _not_required(call, assessment)
            continue
        approvals[i] = _opened(client, call)
    while any(a.is_open for a in approvals.values()):
        interrupt(_waiting(calls, assessments, approvals))  # its resume value is not trusted: the API is read
        approvals = {i: client.get_approval(calls[i]["action_id"]) for i in approvals}
    for i, approval in approvals.items():
        decision = client.decision_of(approval)
        results[i] = _result(calls[i], assessments[i], decision, claimed=decision.approved and _claim_run(client, decision))
    return [results[i] for i in range(len(calls))]


def _waiting(calls: list[ToolCall], assessments: list[Assessment], approvals: dict[int, Approval]) -> list[dict[str, Any]]:
    """The interrupt's payload: the calls whose requests are still open."""
    return [_interrupt_item(calls[i], assessments[i], a) for i, a in approvals.items() if a.is_open]


def approval_gate(client: HitlClient, *, action_id: str, action_type: str, args: dict[str, Any],
                  title: str | None = None, deal_id: str | None = None) -> GateResult:
    """The gate for one tool call; see the module's docstring."""
    call: ToolCall = {"action_id": action_id, "action_type": action_type, "args": args, "title": title,
                      "deal_id": deal_id}
    return approval_gates(client, [call])[0]


def _human_response(decision: Decision, asked: dict[str, Any]) -> dict[str, Any]:
    """The Agent Inbox HumanResponse for a decided request: accept, edit with the edited
    args, or response with the reason. Informative only: the gate reads the API."""
    if not decision.approved:
        return {"type": "response", "args": f"{decision.state}: {decision.reason}".strip()}
    request = asked.get("action_request") or {}
    if decision.inputs is not None and decision.inputs != request.get("args"):
        return {"type": "edit", "args": {"action": request.get("action"), "args": decision.inputs}}
    return {"type": "accept", "args": None}


def _gate_items(value: Any) -> list[dict[str, Any]] | None:
    """The gate's interrupt payload, or None for an interrupt of something else."""
    if isinstance(value, list) and value and all(isinstance(v, dict) and "action_id" in v and "action_request" in v
                                                 for v in value):
        return value
    return None


def _responses(client: HitlClient, items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The responses to one interrupt when every request in it is decided, else None."""
    decisions = []
    for item in items:
        approval = client.get_approval(str(item["action_id"]))
        if approval.is_open:
            return None
        decisions.append(client.decision_of(approval))
    return [_human_response(d, item) for d, item in zip(decisions, items)]


def resume_decided(graph: Any, client: HitlClient, config: dict[str, Any]) -> bool:
    """Resume the thread of `config` (`{"configurable": {"thread_id": …}}`) when every
    request its gate paused on is decided, with `Command(resume=…)`; says whether it did.
    A thread paused on something other than the gate is left alone."""
    state = graph.get_state(config)
    answers: dict[str, Any] = {}
    for pending in state.interrupts:
        items = _gate_items(pending.value)
        if items is None:
            continue
        responses = _responses(client, items)
        if responses is not None:
            answers[pending.id] = responses
    if not answers:
        return False
    graph.invoke(Command(resume=answers), config)
    return True


def paused_threads(graph: Any) -> list[str]:
    """The thread ids the graph's checkpointer holds (each checked by resume_decided)."""
    seen: dict[str, None] = {}
    for saved in graph.checkpointer.list(None):
        thread = saved.config.get("configurable", {}).get("thread_id")
        if thread is not None:
            seen.setdefault(str(thread), None)
    return list(seen)


def resume_all(graph: Any, client: HitlClient, thread_ids: list[str] | None = None) -> list[str]:
    """resume_decided for every thread (the checkpointer's, unless given); the ids resumed.
    A thread that fails (its tool raised, the server refused) is logged and the others are
    still resumed; the failed one is tried again on the next pass only if it is still
    paused."""
    resumed = []
    for thread in thread_ids if thread_ids is not None else paused_threads(graph):
        try:
            if resume_decided(graph, client, {"configurable": {"thread_id": thread}}):
                resumed.append(thread)
        except Exception:
            log.exception("resuming thread %s failed", thread)
    return resumed


# The same gate for async nodes, over AsyncHitlClient (interrupt() works in both).


async def _aclaim_run(client: AsyncHitlClient, decision: Decision) -> bool:
    saved = await client.save_checkpoint(
        decision.action_id, RUN_CHECKPOINT, {"request_id": decision.request_id}, checkpoint_type="approval_gate",
        idempotency_key=_run_key(decision),
    )
    try:
        await client.resume_checkpoint(decision.action_id, saved.checkpoint_id)
    except Conflict:
        return False
    return True


async def _aopened(client: AsyncHitlClient, call: ToolCall) -> Approval:
    try:
        return await client.get_approval(call["action_id"])
    except NotFound:
        return await client.request_approval(
            call["action_id"], call["action_type"], call["args"], title=call.get("title"), deal_id=call.get("deal_id"),
        )


async def aapproval_gates(client: AsyncHitlClient, calls: list[ToolCall]) -> list[GateResult]:
    """approval_gates for an async node."""
    assessments = [await client.assess_risk(c["action_type"], c["args"]) for c in calls]
    results: dict[int, GateResult] = {}
    approvals: dict[int, Approval] = {}
    for i, (call, assessment) in enumerate(zip(calls, assessments)):
        if not assessment.needs_person:
            results[i] = _not_required(call, assessment)
            continue
        approvals[i] = await _aopened(client, call)
    while any(a.is_open for a in approvals.values()):
        interrupt(_waiting(calls, assessments, approvals))  # its resume value is not trusted: the API is read
        approvals = {i: await client.get_approval(calls[i]["action_id"]) for i in approvals}
    for i, approval in approvals.items():
        decision = await client.decision_of(approval)
        claimed = decision.approved and await _aclaim_run(client, decision)
        results[i] = _result(calls[i], assessments[i], decision, claimed=claimed)
    return [results[i] for i in range(len(calls))]


async def aapproval_gate(client: AsyncHitlClient, *, action_id: str, action_type: str, args: dict[str, Any],
                         title: str | None = None, deal_id: str | None = None) -> GateResult:
    """approval_gate for an async node."""
    call: ToolCall = {"action_id": action_id, "action_type": action_type, "args": args, "title": title,
                      "deal_id": deal_id}
    return (await aapproval_gates(client, [call]))[0]


async def aresume_decided(graph: Any, client: AsyncHitlClient, config: dict[str, Any]) -> bool:
    """resume_decided for a graph run with ainvoke."""
    state = await graph.aget_state(config)
    answers: dict[str, Any] = {}
    for pending in state.interrupts:
        items = _gate_items(pending.value)
        if items is None:
            continue
        decisions = []
        for item in items:
            approval = await client.get_approval(str(item["action_id"]))
            if approval.is_open:
                break
            decisions.append(await client.decision_of(approval))
        else:
            answers[pending.id] = [_human_response(d, item) for d, item in zip(decisions, items)]
    if not answers:
        return False
    await graph.ainvoke(Command(resume=answers), config)
    return True
