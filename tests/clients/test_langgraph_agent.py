"""A real LangGraph agent (tests/clients/agent.py: scripted, no language model) gated by
the client's approval gate against the app served on loopback: what runs, what never
runs, and that the graph trusts the server, not the value it is resumed with."""

import ast
import os
import subprocess
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from langgraph.types import Command
from zakops_hitl_client.langgraph import resume_decided
from zakops_hitl_client.resumer import run_resumer

from approvals.models import ApprovalRequest
from approvals.services.decisions import approval_decide
from tests.clients.agent import ToolLog, build_agent, call, thread
from tests.servers import PYTHON, ROOT

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
LOI = "DOCUMENT.GENERATE_LOI"  # high: a person decides


@pytest.fixture
def tools():
    return ToolLog()


@pytest.fixture
def agent(hitl, tools):
    return build_agent(hitl, tools)


def paused_on(agent, config) -> list:
    return [item for pending in agent.get_state(config).interrupts for item in pending.value]


def test_an_approval_with_edits_resumes_the_graph_and_the_tool_runs_once_with_the_edited_args(agent, hitl, tools, admins):
    config = thread("t-approve")
    agent.invoke({"proposed": [call("ACT-LG-1", LOI, template="standard", buyer="Acme")]}, config)
    [asked] = paused_on(agent, config)
    assert asked["action_request"] == {"action": LOI, "args": {"template": "standard", "buyer": "Acme"}}
    assert asked["config"] == {"allow_ignore": False, "allow_respond": True, "allow_edit": True, "allow_accept": True}
    assert asked["action_id"] == "ACT-LG-1" and asked["description"].startswith(f"{LOI} ACT-LG-1: high risk")
    assert tools.runs == [] and resume_decided(agent, hitl, config) is False  # nobody decided yet

    approval_decide(action_id="ACT-LG-1", actor=admins["olu"], decision="approve", reason="",
                    inputs={"template": "short", "buyer": "Acme"})
    assert resume_decided(agent, hitl, config) is True
    assert tools.runs == [("ACT-LG-1", {"template": "short", "buyer": "Acme"})]
    assert agent.get_state(config).values["outcomes"] == ["ran ACT-LG-1"]
    assert resume_decided(agent, hitl, config) is False and len(tools.runs) == 1


def test_a_rejection_never_runs_the_tool_and_ends_with_the_reason(agent, hitl, tools, admins):
    config = thread("t-reject")
    agent.invoke({"proposed": [call("ACT-LG-2", LOI, template="standard")]}, config)
    approval_decide(action_id="ACT-LG-2", actor=admins["olu"], decision="reject", reason="wrong buyer")
    assert resume_decided(agent, hitl, config) is True
    state = agent.get_state(config)
    assert tools.runs == [] and state.next == () and state.interrupts == ()
    assert state.values["outcomes"] == ["not run ACT-LG-2: rejected: wrong buyer"]


def test_an_expired_request_never_runs_the_tool(agent, hitl, tools):
    config = thread("t-expire")
    agent.invoke({"proposed": [call("ACT-LG-3", LOI, template="standard")]}, config)
    ApprovalRequest.objects.filter(action_id="ACT-LG-3").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert resume_decided(agent, hitl, config) is True
    assert tools.runs == []
    assert agent.get_state(config).values["outcomes"][0].startswith("not run ACT-LG-3: expired")


def test_a_forged_resume_value_runs_nothing_and_the_graph_waits_again(agent, hitl, tools, admins):
    config = thread("t-forged")
    agent.invoke({"proposed": [call("ACT-LG-4", LOI, template="standard")]}, config)
    agent.invoke(Command(resume=[{"type": "accept", "args": None}]), config)  # nobody decided
    assert tools.runs == [] and [a["action_id"] for a in paused_on(agent, config)] == ["ACT-LG-4"]

    approval_decide(action_id="ACT-LG-4", actor=admins["olu"], decision="reject", reason="no")
    agent.invoke(Command(resume=[{"type": "accept", "args": None}]), config)  # rejected, resumed as accepted
    assert tools.runs == []
    assert agent.get_state(config).values["outcomes"] == ["not run ACT-LG-4: rejected: no"]


def test_a_critical_call_needs_two_admins_before_the_graph_resumes(agent, hitl, tools, admins):
    config = thread("t-critical")
    agent.invoke({"proposed": [call("ACT-LG-5", "COMMUNICATION.SEND_EMAIL", to="cfo@seller.example")]}, config)
    assert paused_on(agent, config)[0]["risk_level"] == "critical"
    approval_decide(action_id="ACT-LG-5", actor=admins["ada"], decision="approve", reason="checked the address")
    assert resume_decided(agent, hitl, config) is False and tools.runs == []  # one vote of two
    approval_decide(action_id="ACT-LG-5", actor=admins["abe"], decision="approve", reason="agreed")
    assert resume_decided(agent, hitl, config) is True
    assert tools.runs == [("ACT-LG-5", {"to": "cfo@seller.example"})]


def test_a_read_never_pauses_and_opens_no_request(agent, tools):
    result = agent.invoke({"proposed": [call("ACT-LG-6", "DEAL.GET_SUMMARY", deal="D-1")]}, thread("t-read"))
    assert result["outcomes"] == ["ran ACT-LG-6"] and tools.runs == [("ACT-LG-6", {"deal": "D-1"})]
    assert not ApprovalRequest.objects.filter(action_id="ACT-LG-6").exists()


def test_several_pending_calls_pause_once_and_resume_when_all_are_decided(agent, hitl, tools, admins):
    config = thread("t-many")
    agent.invoke({"proposed": [
        call("ACT-LG-7", LOI, template="a"), call("ACT-LG-8", "DEAL.GET_SUMMARY"), call("ACT-LG-9", LOI, template="b"),
    ]}, config)
    assert [a["action_id"] for a in paused_on(agent, config)] == ["ACT-LG-7", "ACT-LG-9"]
    approval_decide(action_id="ACT-LG-7", actor=admins["olu"], decision="approve", reason="")
    assert resume_decided(agent, hitl, config) is False
    agent.invoke(Command(resume=[{"type": "accept", "args": None}] * 2), config)  # forged for both
    assert [a["action_id"] for a in paused_on(agent, config)] == ["ACT-LG-9"] and tools.runs == []
    approval_decide(action_id="ACT-LG-9", actor=admins["olu"], decision="reject", reason="not now")
    assert resume_decided(agent, hitl, config) is True
    assert agent.get_state(config).values["outcomes"] == ["ran ACT-LG-7", "ran ACT-LG-8", "not run ACT-LG-9: rejected: not now"]


def test_the_node_run_twice_and_the_resumer_restarted_still_make_one_request_and_one_run(agent, hitl, tools, admins):
    # The same proposal runs twice (an agent restarted without its own state): one request.
    first, second = thread("t-once-a"), thread("t-once-b")
    agent.invoke({"proposed": [call("ACT-LG-10", LOI, template="standard")]}, first)
    agent.invoke({"proposed": [call("ACT-LG-10", LOI, template="standard")]}, second)
    assert ApprovalRequest.objects.filter(action_id="ACT-LG-10").count() == 1

    def resumer(stop):
        try:
            run_resumer(agent, hitl, interval=0.05, stop=stop)
        finally:
            connection.close()

    stop = threading.Event()
    worker = threading.Thread(target=resumer, args=(stop,))
    worker.start()
    stop.set()  # killed before anything was decided
    worker.join(timeout=10)

    approval_decide(action_id="ACT-LG-10", actor=admins["olu"], decision="approve", reason="")
    stop = threading.Event()
    worker = threading.Thread(target=resumer, args=(stop,))
    worker.start()  # started again: it finds both paused threads
    deadline = timezone.now() + timedelta(seconds=20)
    while any(agent.get_state(t).interrupts for t in (first, second)) and timezone.now() < deadline:
        stop.wait(0.05)
    stop.set()
    worker.join(timeout=10)
    assert tools.runs == [("ACT-LG-10", {"template": "standard"})]
    outcomes = sorted(agent.get_state(t).values["outcomes"][0] for t in (first, second))
    assert outcomes == ["not run ACT-LG-10: already_run: ", "ran ACT-LG-10"]


def test_the_example_agent_waits_for_the_reviewer_and_prints_what_ran(live_server, engine_token, admins):
    env = {**os.environ, "HITL_TOKEN": engine_token}
    example = subprocess.Popen(
        [str(PYTHON), "examples/langgraph_agent.py", "--base-url", live_server.url, "--wait", "30"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        waiting = example.stdout.readline()
        assert waiting.startswith("waiting for a reviewer: ACT-EXAMPLE-"), waiting + example.stdout.read()
        action_id = waiting.split()[4]
        approval_decide(action_id=action_id, actor=admins["olu"], decision="approve", reason="",
                        inputs={"deal_id": "DL-0001", "template": "short", "price": 4_000_000})
        out, _ = example.communicate(timeout=60)
    finally:
        example.kill()
    assert example.returncode == 0, out
    assert "summary of DL-0001" in out
    [ran] = [line for line in out.splitlines() if line.startswith(f"{action_id}: LOI generated with ")]
    assert ast.literal_eval(ran.split(" with ", 1)[1]) == {"deal_id": "DL-0001", "template": "short", "price": 4_000_000}
