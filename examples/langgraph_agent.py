"""A LangGraph agent whose risky tool calls wait for a person in ZakOps HITL.

A scripted node (standing in for the language model) proposes two tool calls: a read,
which the gate lets through at once, and an LOI, which waits for a reviewer. Run it
against `scripts/run`'s demo with the demo engine's token it prints (TOKEN=zkh_…), or
any service token (`manage.py create_service_token demo-agent`):

    pip install ./clients/python langgraph                         # or: pip install -e './clients/python[langgraph]'
    HITL_TOKEN=<token> python examples/langgraph_agent.py --base-url http://127.0.0.1:8000

Then approve (or edit and approve, or reject) the LOI in the queue: the agent resumes and
prints what ran. The graph's state is in memory here; use a durable checkpointer
(PostgresSaver) and `python -m zakops_hitl_client.resumer` in production.
"""

import argparse
import operator
import os
import sys
import time
import uuid
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from zakops_hitl_client import HitlClient
from zakops_hitl_client.langgraph import approval_gates, resume_decided


class State(TypedDict, total=False):
    pending_tool_calls: list[dict[str, Any]]
    outcomes: Annotated[list[str], operator.add]


def generate_loi(args: dict[str, Any]) -> str:
    return f"LOI generated with {args}"


def deal_summary(args: dict[str, Any]) -> str:
    return f"summary of {args.get('deal_id')}"


TOOLS = {"DOCUMENT.GENERATE_LOI": generate_loi, "DEAL.GET_SUMMARY": deal_summary}


def build(client: HitlClient):
    def plan(state: State) -> State:
        run = uuid.uuid4().hex[:8]
        return {"pending_tool_calls": [
            {"action_id": f"ACT-EXAMPLE-{run}-1", "action_type": "DEAL.GET_SUMMARY", "args": {"deal_id": "DL-0001"},
             "title": "Read the deal summary"},
            {"action_id": f"ACT-EXAMPLE-{run}-2", "action_type": "DOCUMENT.GENERATE_LOI",
             "args": {"deal_id": "DL-0001", "template": "standard", "price": 4_200_000}, "title": "Generate the LOI"},
        ]}

    def act(state: State) -> State:
        calls = state["pending_tool_calls"]
        outcomes = []
        for tool_call, result in zip(calls, approval_gates(client, calls)):
            if result.approved:
                outcomes.append(f"{result.action_id}: {TOOLS[tool_call['action_type']](result.args)}")
            else:
                outcomes.append(f"{result.action_id}: not run ({result.state}: {result.reason})")
        return {"outcomes": outcomes}

    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("act", act)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "act")
    graph.add_edge("act", END)
    return graph.compile(checkpointer=InMemorySaver())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", default=os.environ.get("HITL_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("HITL_TOKEN"), help="default: $HITL_TOKEN")
    parser.add_argument("--wait", type=float, default=600, help="seconds to wait for the reviewer")
    args = parser.parse_args()
    if not args.token:
        parser.error("a service token is needed: --token or HITL_TOKEN (the TOKEN=zkh_… scripts/run prints, or manage.py create_service_token demo-agent)")
    config = {"configurable": {"thread_id": "example"}}
    with HitlClient(args.base_url, args.token) as client:
        agent = build(client)
        agent.invoke({}, config)
        for pending in agent.get_state(config).interrupts:
            for asked in pending.value:
                print(f"waiting for a reviewer: {asked['action_id']} ({asked['description']})", flush=True)
        ends = time.monotonic() + args.wait
        while agent.get_state(config).interrupts and time.monotonic() < ends:
            if not resume_decided(agent, client, config):
                time.sleep(1)
        state = agent.get_state(config)
        if state.interrupts:
            print("nobody decided in time; the request stays open", flush=True)
            return 1
        for line in state.values["outcomes"]:
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
