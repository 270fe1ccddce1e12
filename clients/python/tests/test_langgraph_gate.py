"""The LangGraph gate over a fake of the API (httpx.MockTransport): a real graph, no
server. The served app is exercised in the repository's tests/clients."""

import json
import threading
import time

import httpx
import pytest

pytest.importorskip("langgraph", reason="needs the client's langgraph extra (pip install './clients/python[langgraph]'), which scripts/test installs")

from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import Command  # noqa: E402
from zakops_hitl_client import HitlClient, Retry  # noqa: E402
from zakops_hitl_client.langgraph import approval_gate, resume_all, resume_decided  # noqa: E402
from zakops_hitl_client.resumer import run_resumer  # noqa: E402


class FakeHitl:
    """The API's answers the gate needs, held in memory; `decide` plays the reviewer."""

    def __init__(self):
        self.requests, self.inputs, self.checkpoints, self.opened = {}, {}, {}, 0

    def decide(self, action_id, state, reason="", inputs=None):
        self.requests[action_id].update(state=state, reason=reason, decided_by_name="Ana")
        if inputs is not None:
            self.inputs[action_id] = inputs

    def __call__(self, request):
        path, body = request.url.path.removeprefix("/api/hitl"), json.loads(request.content or b"{}")
        if path == "/assess-risk":
            low = ".GET_" in body["action_type"]
            return httpx.Response(200, json={"level": "low" if low else "high", "score": 0.8, "reasons": ["LOI"],
                                             "requires_approval": not low, "requires_quarantine": False})
        if path == "/approval-requests":
            self.opened += 1
            self.inputs[body["action_id"]] = body["inputs"]
            self.requests[body["action_id"]] = {"request_id": "r-" + body["action_id"], "action_id": body["action_id"],
                                                "state": "pending", "reason": "", "expires_at": None}
            return httpx.Response(201, json=self.requests[body["action_id"]])
        action_id = path.split("/")[2]
        if path.endswith("/approval"):
            found = self.requests.get(action_id)
            return httpx.Response(200, json=found) if found else httpx.Response(404, json={"detail": "none"})
        if path.endswith("/checkpoints"):
            key = request.headers["Idempotency-Key"]
            self.checkpoints.setdefault(key, {"checkpoint_id": key, "status": "active"})
            return httpx.Response(201, json=self.checkpoints[key])
        if path.endswith("/resume"):
            checkpoint = self.checkpoints[path.split("/")[4]]
            if checkpoint["status"] != "active":
                return httpx.Response(409, json={"detail": "The checkpoint is resumed."})
            checkpoint["status"] = "resumed"
            return httpx.Response(200, json={"status": "resumed", "checkpoint_id": checkpoint["checkpoint_id"]})
        return httpx.Response(200, json={"action_id": action_id, "inputs": self.inputs[action_id]})


@pytest.fixture
def fake():
    return FakeHitl()


@pytest.fixture
def client(fake):
    with HitlClient("http://hitl.test", "tok", retry=Retry(retries=0), transport=httpx.MockTransport(fake)) as client:
        yield client


def agent(client, runs):
    def node(state):
        result = approval_gate(client, action_id=state["action_id"], action_type=state["action_type"],
                               args={"template": "standard"})
        if result.approved:
            runs.append(result.args)
        return {"outcome": f"{result.state}: {result.reason}"}

    graph = StateGraph(dict)
    graph.add_node("node", node)
    graph.add_edge(START, "node")
    graph.add_edge("node", END)
    return graph.compile(checkpointer=InMemorySaver())


CONFIG = {"configurable": {"thread_id": "t"}}


def test_the_gate_pauses_and_runs_once_with_the_edited_args(client, fake):
    runs = []
    graph = agent(client, runs)
    graph.invoke({"action_id": "A-1", "action_type": "DOCUMENT.GENERATE_LOI"}, CONFIG)
    [paused] = graph.get_state(CONFIG).interrupts
    assert paused.value[0]["action_request"] == {"action": "DOCUMENT.GENERATE_LOI", "args": {"template": "standard"}}
    assert paused.value[0]["description"] == "high risk (score 0.80). LOI"
    fake.decide("A-1", "approved", inputs={"template": "short"})
    assert resume_decided(graph, client, CONFIG) is True
    assert runs == [{"template": "short"}] and fake.opened == 1

    graph.invoke({"action_id": "A-1", "action_type": "DOCUMENT.GENERATE_LOI"}, {"configurable": {"thread_id": "u"}})
    assert runs == [{"template": "short"}] and fake.opened == 1  # the node again: no request, no run


def test_a_forged_accept_runs_nothing(client, fake):
    runs = []
    graph = agent(client, runs)
    graph.invoke({"action_id": "A-2", "action_type": "DOCUMENT.GENERATE_LOI"}, CONFIG)
    graph.invoke(Command(resume=[{"type": "accept", "args": None}]), CONFIG)
    assert runs == [] and graph.get_state(CONFIG).interrupts  # paused again
    fake.decide("A-2", "rejected", reason="no")
    graph.invoke(Command(resume=[{"type": "accept", "args": None}]), CONFIG)
    assert runs == [] and graph.get_state(CONFIG).values["outcome"] == "rejected: no"


def test_a_read_passes_without_a_request(client, fake):
    runs = []
    assert agent(client, runs).invoke({"action_id": "A-3", "action_type": "DEAL.GET_SUMMARY"}, CONFIG)["outcome"] \
        == "not_required: "
    assert runs == [{"template": "standard"}] and fake.opened == 0


def test_the_resumer_wakes_at_once_when_told_of_a_decision(client, fake):
    runs = []
    graph = agent(client, runs)
    graph.invoke({"action_id": "A-4", "action_type": "DOCUMENT.GENERATE_LOI"}, CONFIG)
    stop, wake = threading.Event(), threading.Event()
    worker = threading.Thread(target=run_resumer, args=(graph, client), kwargs={"interval": 60, "stop": stop,
                                                                                 "wake": wake})
    worker.start()
    try:
        time.sleep(0.2)  # its first pass found nothing decided; the next is a minute away
        fake.decide("A-4", "approved")
        wake.set()
        deadline = time.monotonic() + 5
        while not runs and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join(timeout=5)
    assert runs == [{"template": "standard"}]


def test_a_thread_whose_tool_fails_does_not_stop_the_others(client, fake):
    runs = []

    def node(state):
        result = approval_gate(client, action_id=state["action_id"], action_type="DOCUMENT.GENERATE_LOI", args={})
        if state["action_id"] == "A-BAD":
            raise RuntimeError("the tool failed")
        runs.append(result.action_id)
        return {"outcome": result.state}

    graph = StateGraph(dict)
    graph.add_node("node", node)
    graph.add_edge(START, "node")
    graph.add_edge("node", END)
    graph = graph.compile(checkpointer=InMemorySaver())
    for action_id in ("A-BAD", "A-GOOD"):
        graph.invoke({"action_id": action_id}, {"configurable": {"thread_id": action_id}})
        fake.decide(action_id, "approved")
    assert resume_all(graph, client) == ["A-GOOD"]
    assert runs == ["A-GOOD"]


def test_the_async_gate_in_an_async_node(fake):
    import asyncio

    from zakops_hitl_client import AsyncHitlClient
    from zakops_hitl_client.langgraph import aapproval_gate, aresume_decided

    runs = []

    async def scenario():
        async with AsyncHitlClient("http://hitl.test", "tok", retry=Retry(retries=0),
                                   transport=httpx.MockTransport(fake)) as client:
            async def node(state):
                result = await aapproval_gate(client, action_id="A-5", action_type="DOCUMENT.GENERATE_LOI",
                                              args={"template": "standard"})
                if result.approved:
                    runs.append(result.args)
                return {"outcome": result.state}

            graph = StateGraph(dict)
            graph.add_node("node", node)
            graph.add_edge(START, "node")
            graph.add_edge("node", END)
            graph = graph.compile(checkpointer=InMemorySaver())
            await graph.ainvoke({}, CONFIG)
            paused = (await graph.aget_state(CONFIG)).interrupts[0].value[0]["action_id"]
            forged = await graph.ainvoke(Command(resume=[{"type": "accept", "args": None}]), CONFIG)
            assert runs == [] and "outcome" not in forged
            assert await aresume_decided(graph, client, CONFIG) is False
            fake.decide("A-5", "approved", inputs={"template": "short"})
            assert await aresume_decided(graph, client, CONFIG) is True
            return paused, (await graph.aget_state(CONFIG)).values["outcome"]

    assert asyncio.run(scenario()) == ("A-5", "approved")
    assert runs == [{"template": "short"}]
