"""The resumer as its own process (`python -m zakops_hitl_client.resumer`), over an agent
whose graph state lives in PostgreSQL (LangGraph's PostgresSaver): killed and started
again, with the same proposal run twice, it still makes one request and one tool run."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from django.db import connection
from zakops_hitl_client import HitlClient

from approvals.models import ApprovalRequest
from approvals.services.decisions import approval_decide
from tests.clients.agent import FileToolLog, build_agent, call, postgres_checkpointer, thread
from tests.servers import PYTHON, ROOT, served_database_url

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
SCHEMA = "agent_graph_state"


@pytest.fixture
def agent_db_url():
    """The test database, with LangGraph's tables in a schema of their own."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    yield f"{served_database_url()}?options=-csearch_path%3D{SCHEMA}"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {SCHEMA} CASCADE")


def start_resumer(env: dict, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(PYTHON), "-m", "zakops_hitl_client.resumer", "--graph", "tests.clients.agent:postgres_agent",
             "--interval", "0.1"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def test_a_killed_and_restarted_resumer_and_a_node_run_twice_give_one_request_and_one_run(
        live_server, engine_token, admins, agent_db_url, tmp_path):
    tool_log = FileToolLog(str(tmp_path / "tool.log"))
    env = {**os.environ, "HITL_URL": live_server.url, "HITL_TOKEN": engine_token, "AGENT_DB_URL": agent_db_url,
           "AGENT_TOOL_LOG": tool_log.path}
    with HitlClient(live_server.url, engine_token) as client:
        checkpointer = postgres_checkpointer(agent_db_url)
        agent = build_agent(client, tool_log, checkpointer)
        threads = [thread("pg-once-a"), thread("pg-once-b")]
        for config in threads:  # the same proposal twice, as an agent restarted without its state
            agent.invoke({"proposed": [call("ACT-PG-1", "DOCUMENT.GENERATE_LOI", template="standard")]}, config)
        assert ApprovalRequest.objects.filter(action_id="ACT-PG-1").count() == 1

        first = start_resumer(env, tmp_path / "resumer.log")
        time.sleep(1.5)  # it runs its passes: nothing is decided
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert tool_log.read() == []

        approval_decide(action_id="ACT-PG-1", actor=admins["olu"], decision="approve", reason="",
                        inputs={"template": "short"})
        second = start_resumer(env, tmp_path / "resumer.log")
        try:
            deadline = time.monotonic() + 30
            while any(agent.get_state(t).interrupts for t in threads) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)  # more passes: nothing runs again
        finally:
            second.terminate()
            second.wait(timeout=10)
        log = (tmp_path / "resumer.log").read_text()
        assert tool_log.read() == [("ACT-PG-1", {"template": "short"})], log
        outcomes = sorted(agent.get_state(t).values["outcomes"][0] for t in threads)
        assert outcomes == ["not run ACT-PG-1: already_run: ", "ran ACT-PG-1"]
        assert "resumed thread pg-once-a" in log and "resumed thread pg-once-b" in log
        checkpointer.conn.close()
