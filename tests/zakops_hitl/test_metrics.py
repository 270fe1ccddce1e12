"""/metrics in Prometheus' text format, for admins and service accounts only: requests
waiting by risk level, decisions by outcome, time to decision, expiries, checkpoint saves
and resumes, and request latency by route name."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from accounts.selectors import actor_of
from accounts.services import api_token_create, service_account_ensure
from approvals.models import ApprovalRequest
from approvals.services.decisions import approval_decide
from approvals.services.expiry import approvals_expire
from approvals.services.requests import approval_request
from checkpoints.services import checkpoint_resume, checkpoint_save

pytestmark = pytest.mark.django_db


def samples(text: str) -> dict:
    """{(sample name, sorted label pairs): value} of a scrape."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(response.content.decode())


@pytest.fixture
def metrics_api(service_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {service_token}")
    return client


@pytest.fixture
def engine():
    return actor_of(service_account_ensure(name="action-engine"))


def test_anonymous_callers_get_401_json(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_people_who_are_not_admins_get_403_by_session_or_token(client, make_reviewer, role):
    person = make_reviewer(role)
    client.force_login(person)
    assert client.get("/metrics").status_code == 403
    token = APIClient()
    token.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=person, name='t')[1]}")
    response = token.get("/metrics")
    assert response.status_code == 403
    assert "admins and service accounts" in response.json()["detail"]


def test_an_admin_session_and_a_service_token_read_them(client, make_reviewer, metrics_api):
    client.force_login(make_reviewer("admin"))
    assert scrape(client)
    assert scrape(metrics_api)


def test_waiting_requests_by_risk_level_are_read_from_the_database(metrics_api, engine):
    for i, action_type in enumerate(["DOCUMENT.GENERATE_LOI", "DOCUMENT.GENERATE_LOI", "COMMUNICATION.DRAFT_EMAIL"]):
        approval_request(action_id=f"ACT-M{i}", action_type=action_type, requester=engine)
    found = scrape(metrics_api)
    assert found[("hitl_open_requests", (("risk_level", "high"), ("state", "pending")))] == 2
    assert found[("hitl_open_requests", (("risk_level", "medium"), ("state", "pending")))] == 1
    assert found[("hitl_open_requests", (("risk_level", "critical"), ("state", "quarantined")))] == 0


def test_decisions_count_after_commit_with_the_time_they_took(
    metrics_api, engine, make_reviewer, django_capture_on_commit_callbacks
):
    operator = actor_of(make_reviewer("operator"))
    request, _ = approval_request(action_id="ACT-M-DEC", action_type="COMMUNICATION.DRAFT_EMAIL", requester=engine)
    ApprovalRequest.objects.filter(pk=request.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    before = scrape(metrics_api)
    approved = ("hitl_decisions_total", (("decider", "user"), ("outcome", "approved")))
    waited = ("hitl_time_to_decision_seconds_bucket", (("le", "900.0"), ("risk_level", "medium")))
    under_five = ("hitl_time_to_decision_seconds_bucket", (("le", "300.0"), ("risk_level", "medium")))

    with django_capture_on_commit_callbacks(execute=False) as pending:
        approval_decide(action_id="ACT-M-DEC", actor=operator, decision="approve")
    assert scrape(metrics_api).get(approved, 0) == before.get(approved, 0)  # not counted before the commit
    for callback in pending:
        callback()
    after = scrape(metrics_api)
    assert after[approved] == before.get(approved, 0) + 1
    assert after[waited] == before.get(waited, 0) + 1
    assert after.get(under_five, 0) == before.get(under_five, 0)  # it took ten minutes


def test_expired_requests_are_counted_from_the_database(metrics_api, engine):
    before = scrape(metrics_api)[("hitl_expired_requests_total", ())]
    for i in range(3):
        approval_request(action_id=f"ACT-M-EXP{i}", action_type="COMMUNICATION.DRAFT_EMAIL", requester=engine)
    ApprovalRequest.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    assert approvals_expire() == 3
    assert scrape(metrics_api)[("hitl_expired_requests_total", ())] == before + 3


def test_checkpoint_saves_and_resumes_are_counted(metrics_api, engine, django_capture_on_commit_callbacks):
    approval_request(action_id="ACT-M-CK", action_type="COMMUNICATION.DRAFT_EMAIL", requester=engine)
    before = scrape(metrics_api)
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint = checkpoint_save(action_id="ACT-M-CK", checkpoint_name="step", checkpoint_data={"n": 1})
        checkpoint_save(action_id="ACT-M-CK", checkpoint_name="step", checkpoint_data={"n": 2})
        checkpoint_resume(action_id="ACT-M-CK", checkpoint_id=checkpoint.id, resumed_by=engine.actor_id)
    after = scrape(metrics_api)
    assert after[("hitl_checkpoint_saves_total", ())] == before[("hitl_checkpoint_saves_total", ())] + 2
    assert after[("hitl_checkpoint_resumes_total", ())] == before[("hitl_checkpoint_resumes_total", ())] + 1


def test_request_latency_is_by_route_name_not_by_path(metrics_api):
    for action_id in ("ACT-LAT-1", "ACT-LAT-2", "ACT-LAT-3"):
        assert metrics_api.get(f"/api/hitl/actions/{action_id}/approval").status_code == 404
    response = metrics_api.get("/metrics")
    text = response.content.decode()
    assert "ACT-LAT-" not in text
    found = samples(text)
    key = ("hitl_http_request_duration_seconds_count", (("method", "GET"), ("route", "api-action-approval"), ("status", "404")))
    assert found[key] >= 3


def test_labels_come_from_a_closed_set_whatever_the_requests_say(metrics_api):
    """Methods, routes and statuses a caller makes up add no series: an unknown method is
    `other`, a path no pattern names is `unmatched`."""
    from django.test import Client

    anonymous = Client()

    def made_up(i):
        anonymous.generic(f"MADEUP{i}", f"/api/hitl/x{i}")
        anonymous.generic(f"x{i}", "/healthz")
        anonymous.get(f"/no-such-page-{i}/")

    for i in range(20):
        made_up(i)
    size = len(metrics_api.get("/metrics").content)
    for i in range(20, 300):
        made_up(i)
    text = metrics_api.get("/metrics").content.decode()
    assert "MADEUP" not in text and "no-such-page" not in text
    assert len(text) < size + 2_000, "no new series, only larger counts"
    found = samples(text)
    methods = {dict(labels).get("method") for (name, labels) in found if name.startswith("hitl_http_request")}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}, methods
    assert "other" in methods
    other = ("hitl_http_request_duration_seconds_count", (("method", "other"), ("route", "api-not-found"), ("status", "401")))
    assert found[other] >= 280
