"""The app through a real PgBouncer in transaction pooling mode, where LISTEN/NOTIFY can
not work: it serves, and rule edits, revoked tokens and the reviewer queue's version still
reach it, within milliseconds with a direct connection for the listener (DATABASE_LISTEN_URL), within
a second or so without one (the version rows)."""

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from accounts.models import ApiToken
from accounts.selectors import actor_of
from accounts.services import api_token_create, api_tokens_revoke, operator_upsert, service_account_ensure
from approvals.services.requests import approval_request
from risk.models import RiskRule
from tests.conftest import PASSWORD
from tests.servers import Client, app_server, data_version, eventually, free_port, production_env, served_database_url

PGBOUNCER = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        PGBOUNCER is None, reason="needs Debian's pgbouncer (apt-get install pgbouncer; scripts/test installs it as root)"
    ),
]


@contextlib.contextmanager
def pgbouncer(folder: Path):
    """PgBouncer on a free port of 127.0.0.1, in transaction mode, in front of the test
    database; the search_path is set on each server connection it opens, as the README
    says to do (or on the role)."""
    s = connection.settings_dict
    port = free_port()
    server = f"host={s['HOST'] or '127.0.0.1'} port={s['PORT'] or 5432} user={s['USER'] or 'postgres'}"
    if s["PASSWORD"]:
        server += f" password={s['PASSWORD']}"
    config = folder / "pgbouncer.ini"
    config.write_text(
        f"""[databases]
{s['NAME']} = {server} dbname={s['NAME']} connect_query='SET search_path = public, zakops'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 10
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
"""
    )
    # PgBouncer will not run as root; it reads its config first, then becomes postgres.
    command = [PGBOUNCER, *(["-u", "postgres"] if os.geteuid() == 0 else []), str(config)]
    log = open(folder / "pgbouncer.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert process.poll() is None and time.monotonic() < deadline, (folder / "pgbouncer.log").read_text()
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.mark.parametrize("listener", ["direct", "none"])
def test_through_pgbouncer_in_transaction_mode_caches_stay_right(tmp_path, static_root, real_password_hashing, listener):
    with pgbouncer(tmp_path) as port:
        # What the pooler refuses, and why the app sends no search_path when pooled.
        pooled_url = served_database_url(port=port)
        with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
            psycopg.connect(pooled_url.replace("postgres://", "postgresql://"), options="-c search_path=public").close()

        engine_user = service_account_ensure(name="action-engine")
        engine_token = api_token_create(user=engine_user, name="engine")[1]
        operator = operator_upsert(email="olu@example.com", role="operator", password=PASSWORD, name="Olu")
        operator_token = api_token_create(user=operator, name="laptop")[1]
        operator_upsert(email="ada@example.com", role="admin", password=PASSWORD, name="Ada")

        env = production_env(static_root, DATABASE_URL=pooled_url, DATABASE_TRANSACTION_POOLING="true")
        if listener == "direct":
            env["DATABASE_LISTEN_URL"] = served_database_url()
        at_once = listener == "direct"
        within = 0.5 if at_once else 3.0

        with app_server(env, tmp_path / "server.log", workers=1) as server:
            ready = Client(server.base_url).get("/readyz")
            assert ready.status == 200, ready.text
            assert ready.json()["checks"]["change_feed"] == ("listening" if at_once else "polling")

            # The app works through the pooler: requests, checkpoints (more than psycopg's
            # prepare threshold of the same statement), decisions, the queue.
            engine = Client(server.base_url, token=engine_token)
            reviewer = Client(server.base_url, token=operator_token)
            for i in range(3):
                response = engine.post("/api/hitl/approval-requests", json_body={
                    "action_id": f"ACT-PGB-{i}", "action_type": "COMMUNICATION.DRAFT_EMAIL",
                })
                assert response.status == 201, response.text
            for n in range(8):
                response = engine.post("/api/hitl/actions/ACT-PGB-0/checkpoints", json_body={
                    "checkpoint_name": "step", "checkpoint_data": {"n": n},
                })
                assert response.status == 201, response.text
                assert response.json()["sequence_number"] == n
            assert engine.get("/api/hitl/actions/ACT-PGB-0/checkpoints/latest").json()["checkpoint_data"] == {"n": 7}
            assert reviewer.post("/api/hitl/actions/ACT-PGB-0/approve", json_body={"reason": "ok"}).status == 200
            assert reviewer.post("/api/hitl/actions/ACT-PGB-1/reject", json_body={"reason": "no"}).status == 200
            assert len(engine.get("/api/hitl/approval-queue").json()) == 1

            # Rules: an edit made elsewhere reaches the server's next assessments.
            def level():
                return engine.post("/api/hitl/assess-risk", json_body={"action_type": "DEAL.GET_DETAILS"}).json()["level"]

            assert level() == "low"
            assert level() == "low"  # cached
            RiskRule.objects.filter(name="read_only").update(risk_level="high")
            eventually(lambda: level() == "high", within=within)

            # Queue version: a change made elsewhere changes what the live refresh answers.
            person = Client(server.base_url)
            assert person.sign_in("ada@example.com", PASSWORD).status == 302
            version = data_version(person.get("/").text)
            hx = {"HX-Request": "true"}
            assert person.get(f"/?v={version}", headers=hx).status == 204
            approval_request(
                action_id="ACT-PGB-NEW", action_type="COMMUNICATION.DRAFT_EMAIL", requester=actor_of(engine_user)
            )
            eventually(lambda: person.get(f"/?v={version}", headers=hx).status == 200, within=within)

            # Tokens: one revoked elsewhere stops working here.
            assert reviewer.get("/api/hitl/approval-queue").status == 200
            api_tokens_revoke(tokens=ApiToken.objects.filter(user=operator))
            eventually(lambda: reviewer.get("/api/hitl/approval-queue").status == 401, within=within)
            assert engine.get("/api/hitl/approval-queue").status == 200
        assert "Traceback" not in server.log(), server.log()[-3000:]
