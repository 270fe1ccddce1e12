"""A real LangGraph agent for the tests, without a language model: a scripted node
proposes the tool calls it is given, a second node passes them through the approval gate
and runs the approved ones. The tool records each run, so a test can count them."""

import json
import operator
import os
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from zakops_hitl_client.langgraph import approval_gates


class AgentState(TypedDict, total=False):
    proposed: list[dict[str, Any]]  # the tool calls the script proposes
    pending_tool_calls: list[dict[str, Any]]
    outcomes: Annotated[list[str], operator.add]


class ToolLog:
    """The tool: each run is one entry (action id and the args it ran with)."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, dict]] = []

    def run(self, action_id: str, args: dict) -> str:
        self.runs.append((action_id, args))
        return f"ran {action_id}"


def build_agent(client, tools: ToolLog, checkpointer=None):
    def propose(state: AgentState) -> AgentState:
        return {"pending_tool_calls": state["proposed"]}

    def gate_and_run(state: AgentState) -> AgentState:
        outcomes = []
        for result in approval_gates(client, state["pending_tool_calls"]):
            if result.approved:
                outcomes.append(tools.run(result.action_id, result.args))
            else:
                outcomes.append(f"not run {result.action_id}: {result.state}: {result.reason}")
        return {"outcomes": outcomes}

    graph = StateGraph(AgentState)
    graph.add_node("propose", propose)
    graph.add_node("gate_and_run", gate_and_run)
    graph.add_edge(START, "propose")
    graph.add_edge("propose", "gate_and_run")
    graph.add_edge("gate_and_run", END)
    return graph.compile(checkpointer=checkpointer or InMemorySaver())


def call(action_id: str, action_type: str, **args) -> dict[str, Any]:
    return {"action_id": action_id, "action_type": action_type, "args": args, "title": f"{action_type} {action_id}"}


def thread(name: str) -> dict:
    return {"configurable": {"thread_id": name}}


class FileToolLog(ToolLog):
    """The tool of an agent run by other processes (the resumer): each run is a line of
    a file, which the test reads."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def run(self, action_id: str, args: dict) -> str:
        with open(self.path, "a") as log:
            log.write(json.dumps([action_id, args]) + "\n")
        return f"ran {action_id}"

    def read(self) -> list:
        try:
            with open(self.path) as log:
                return [tuple(json.loads(line)) for line in log]
        except FileNotFoundError:
            return []


def postgres_checkpointer(url: str):
    """LangGraph's PostgresSaver on `url` (its tables made if missing)."""
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    saver = PostgresSaver(psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row))
    saver.setup()
    return saver


def postgres_agent():
    """The agent with a durable checkpointer, for `python -m zakops_hitl_client.resumer
    --graph tests.clients.agent:postgres_agent`: AGENT_DB_URL, HITL_URL, HITL_TOKEN and
    AGENT_TOOL_LOG say where everything is."""
    from zakops_hitl_client import HitlClient

    client = HitlClient(os.environ["HITL_URL"], os.environ["HITL_TOKEN"])
    return build_agent(client, FileToolLog(os.environ["AGENT_TOOL_LOG"]), postgres_checkpointer(os.environ["AGENT_DB_URL"]))
