"""The production command (`python -m zakops_hitl.serve`, DJANGO_ENV=production) serves
the pages with hashed, compressed static files, health, readiness and metrics summed over
its workers; and nothing it logs holds a token, a password or a session id."""

import json
import re
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from accounts.services import api_token_create, service_account_ensure
from tests.conftest import PASSWORD
from tests.servers import Client, app_server, production_env

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_it_serves_pages_static_files_health_and_metrics_summed_over_workers(tmp_path, static_root):
    token = api_token_create(user=service_account_ensure(name="prometheus"), name="scrape")[1]
    with app_server(production_env(static_root), tmp_path / "server.log", workers=2) as server:
        anonymous = Client(server.base_url)
        page = anonymous.get("/login/")
        assert page.status == 200
        stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page.text)
        assert stylesheet, "static files are served under hashed names"
        css = anonymous.get(stylesheet.group(1), headers={"Accept-Encoding": "gzip"})
        assert css.status == 200
        assert css.headers["Content-Encoding"] == "gzip"
        assert "immutable" in css.headers["Cache-Control"]

        assert anonymous.get("/healthz").json() == {"status": "ok"}
        ready = anonymous.get("/readyz")
        assert ready.status == 200, ready.text
        assert anonymous.get("/metrics").status == 401

        engine = Client(server.base_url, token=token)
        calls = 60

        def assess(_):
            response = engine.post("/api/hitl/assess-risk", json_body={"action_type": "DEAL.GET_DETAILS"})
            assert response.status == 200

        threads = [threading.Thread(target=assess, args=(i,)) for i in range(calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        scraped = engine.get("/metrics")
        assert scraped.status == 200
        served_by = {
            line["pid"] for line in map(json.loads, filter(lambda l: l.startswith("{"), server.log().splitlines()))
            if line.get("route") == "api-assess-risk"
        }
    assert len(served_by) == 2, "both workers answered, so the figure below is a sum"
    count = metric(scraped.text, "hitl_http_request_duration_seconds_count", route="api-assess-risk", status="200")
    assert count == calls


def test_no_log_line_holds_a_token_a_password_or_a_session_id(tmp_path, static_root, make_reviewer, real_password_hashing):
    """A run with a token, a password sign-in (and a wrong one) and a session, at debug level;
    all the output of the server, granian's included, is searched for the secrets."""
    make_reviewer("admin", "ada@example.com")
    token = api_token_create(user=service_account_ensure(name="action-engine"), name="engine")[1]
    wrong_password = "Wr0ng-but-secret-" + PASSWORD[::-1]
    env = production_env(static_root, LOG_LEVEL="debug", HITL_ACCESS_LOG="true")
    with app_server(env, tmp_path / "server.log", workers=1) as server:
        engine = Client(server.base_url, token=token)
        assert engine.post("/api/hitl/approval-requests", json_body={
            "action_id": "ACT-LOGS-1", "action_type": "COMMUNICATION.DRAFT_EMAIL",
        }).status == 201
        assert engine.get("/api/hitl/actions/ACT-LOGS-1/approval").status == 200
        assert Client(server.base_url, token=token + "x").get("/api/hitl/approval-queue").status == 401

        person = Client(server.base_url)
        assert person.sign_in("ada@example.com", wrong_password).status == 200
        assert person.sign_in("ada@example.com", PASSWORD).status == 302
        session_id, csrf = person.cookie("sessionid"), person.cookie("csrftoken")
        assert session_id and csrf
        assert person.get("/").status == 200
        assert person.post("/actions/ACT-LOGS-1/decide", form={
            "decision": "approve", "reason": "fine", "csrfmiddlewaretoken": csrf,
        }).status in (200, 302)
        assert person.get("/api/hitl/approval-queue").status == 200
        assert person.get("/metrics").status == 200
        assert person.get("/admin/").status == 200
        person.post("/logout/", form={"csrfmiddlewaretoken": person.cookie("csrftoken")})
        assert person.get("/", headers={"Cookie": f"sessionid={session_id}"}).status == 302
    output = server.log()
    assert "hitl.requests" in output and "hitl.decisions" in output
    for secret in (token, PASSWORD, wrong_password, session_id, csrf):
        assert secret not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    request_lines = [line for line in lines if line.get("logger") == "hitl.requests"]
    assert len(request_lines) >= 12
    assert all(line["request_id"] and "status" in line for line in request_lines)
