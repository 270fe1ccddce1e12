"""Two app servers and two sweeps at once against one PostgreSQL behave as one server does:
a rule edited through one is used by the other's next assessment, a token revoked through
one fails on the other within milliseconds, an Idempotency-Key replays across them, and overdue
requests expire exactly once."""

import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import api_token_create, operator_upsert, service_account_ensure
from approvals.models import ApprovalRequest, RequestState
from risk.models import RiskRule
from tests.conftest import PASSWORD
from tests.servers import PYTHON, ROOT, Client, app_server, eventually, production_env
from zakops.models import DealEvent, OutboxEvent

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_two_servers_and_two_sweeps_behave_as_one(tmp_path, static_root, real_password_hashing):
    operator_upsert(email="ada@example.com", role="admin", password=PASSWORD, name="Ada")
    engine_token = api_token_create(user=service_account_ensure(name="action-engine"), name="engine")[1]
    doomed = api_token_create(user=service_account_ensure(name="old-engine"), name="to revoke")
    RiskRule.objects.create(
        name="ping_is_critical", description="Pings are critical today", risk_level="critical",
        requires_approval=True, action_types=["TEST.PING"], enabled=False,
    )
    env = production_env(static_root)

    with app_server(env, tmp_path / "a.log") as a, app_server(env, tmp_path / "b.log") as b:
        engine_a, engine_b = Client(a.base_url, token=engine_token), Client(b.base_url, token=engine_token)
        old_b = Client(b.base_url, token=doomed[1])
        for server in (a, b):
            assert Client(server.base_url).get("/readyz").json()["checks"]["change_feed"] == "listening"

        # B has the rules and the token cached (the second call of each asks no database).
        def ping_level(client):
            return client.post("/api/hitl/assess-risk", json_body={"action_type": "TEST.PING"}).json()["level"]

        assert ping_level(engine_b) == ping_level(engine_b) == "medium"
        assert old_b.get("/api/hitl/approval-queue").status == old_b.get("/api/hitl/approval-queue").status == 200

        # An admin works through A's admin.
        admin_a = Client(a.base_url)
        assert admin_a.sign_in("ada@example.com", PASSWORD).status == 302
        rule = RiskRule.objects.get(name="ping_is_critical")
        assert admin_a.admin_action("risk/riskrule", "enable", [rule.pk]).status == 302
        eventually(lambda: ping_level(engine_b) == "critical", within=0.5)  # B uses the rule enabled through A

        assert admin_a.admin_action("accounts/apitoken", "revoke", [doomed[0].pk]).status == 302
        assert ApiToken.objects.get(pk=doomed[0].pk).revoked_at is not None
        eventually(lambda: old_b.get("/api/hitl/approval-queue").status == 401, within=0.5)  # revoked through A, fails on B

        # One Idempotency-Key, two servers: the second answer is the first one, replayed.
        body = {"action_id": "ACT-TWO-1", "action_type": "COMMUNICATION.DRAFT_EMAIL"}
        key = {"Idempotency-Key": "two-servers-1"}
        first = engine_a.post("/api/hitl/approval-requests", json_body=body, headers=key)
        again = engine_b.post("/api/hitl/approval-requests", json_body=body, headers=key)
        assert first.status == again.status == 201
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json() == first.json()
        other = engine_b.post("/api/hitl/approval-requests", json_body={**body, "title": "changed"}, headers=key)
        assert other.status == 422
        assert ApprovalRequest.objects.filter(action_id="ACT-TWO-1").count() == 1

        # Thirty overdue requests, two sweeps at once: each expires exactly once.
        for i in range(30):
            response = engine_a.post("/api/hitl/approval-requests", json_body={
                "action_id": f"ACT-TWO-EXP-{i:02d}", "action_type": "COMMUNICATION.DRAFT_EMAIL",
            })
            assert response.status == 201
        overdue = ApprovalRequest.objects.filter(action__action_id__startswith="ACT-TWO-EXP-")
        overdue.update(expires_at=timezone.now() - timedelta(minutes=1))
        sweeps = [
            subprocess.Popen([PYTHON, "manage.py", "hitl_sweep"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [sweep.communicate(timeout=120)[0] for sweep in sweeps]
        assert [sweep.returncode for sweep in sweeps] == [0, 0]
        expired = [int(line.split()[2]) for out in outputs for line in out.splitlines() if line.endswith(" expired") and line.startswith("approval requests")]
        assert sum(expired) == 30, outputs
        assert set(overdue.values_list("state", flat=True)) == {RequestState.EXPIRED}
        for request in overdue:
            assert DealEvent.objects.filter(event_type="hitl.expired", details__request_id=str(request.id)).count() == 1
            assert OutboxEvent.objects.filter(event_type="hitl.expired", aggregate_id=request.action_id).count() == 1
        # Both servers tell the engine the same.
        assert engine_a.get("/api/hitl/actions/ACT-TWO-EXP-07/approval").json()["state"] == "expired"
        assert engine_b.get("/api/hitl/actions/ACT-TWO-EXP-07/approval").json()["state"] == "expired"
    for server in (a, b):
        assert "Traceback" not in server.log(), server.log()[-3000:]
