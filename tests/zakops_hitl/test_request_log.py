"""One JSON line per request with its id (an incoming X-Request-ID when sane), who made
it, route, status and duration; one per decision with action, request and outcome."""

import json
import logging

import pytest
from rest_framework.test import APIClient

from accounts.selectors import actor_of
from accounts.services import service_account_ensure
from approvals.services.requests import approval_request
from common.logs import JsonFormatter, RequestIdFilter

pytestmark = pytest.mark.django_db


class Lines(logging.Handler):
    """The lines a production server would write: JSON, through the app's filter."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())
        self.lines = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))

    def of(self, logger):
        return [line for line in self.lines if line["logger"] == logger]


@pytest.fixture
def log_lines():
    handler = Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_one_line_per_request_with_its_fields(client, log_lines):
    response = client.get("/healthz")
    [line] = log_lines.of("hitl.requests")
    assert line["request_id"] == response["X-Request-ID"]
    assert len(line["request_id"]) == 32
    assert line["method"] == "GET" and line["route"] == "health" and line["path"] == "/healthz"
    assert line["status"] == 200 and line["level"] == "INFO"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["user"] is None and line["auth"] == "none"
    assert line["ts"].endswith("Z")


@pytest.mark.parametrize("incoming", ["3f2a9c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b", "trace:abc.123_x-y", "lb-7"])
def test_a_sane_incoming_request_id_is_kept_and_returned(client, log_lines, incoming):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] == incoming
    assert log_lines.of("hitl.requests")[0]["request_id"] == incoming


@pytest.mark.parametrize("incoming", ["", "has space", "new\nline", "x" * 129, "<script>", "-leading-dash", "ü-nicode"])
def test_an_insane_request_id_is_replaced(client, log_lines, incoming):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] != incoming
    assert len(response["X-Request-ID"]) == 32
    assert incoming not in json.dumps(log_lines.lines) or incoming == ""


def test_token_callers_and_signed_in_people_are_named(client, log_lines, service_token, make_reviewer):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {service_token}")
    api.get("/api/hitl/approval-queue")
    person = make_reviewer("operator", "olu@example.com")
    client.force_login(person)
    client.get("/")
    by_token, by_session = log_lines.of("hitl.requests")
    assert (by_token["user"], by_token["auth"], by_token["route"]) == ("action-engine", "token", "api-approval-queue")
    assert (by_session["user"], by_session["auth"], by_session["route"]) == ("olu@example.com", "session", "home")


def test_a_refused_call_is_logged_with_its_status_and_the_same_id(client, log_lines):
    response = client.get("/api/hitl/approval-queue", HTTP_X_REQUEST_ID="req-401")
    assert response.status_code == 401
    [line] = log_lines.of("hitl.requests")
    assert line["status"] == 401
    # Django's own warning about the 401 carries the request's id too.
    assert [w["request_id"] for w in log_lines.of("django.request")] == ["req-401"]


def test_a_decision_is_logged_with_action_request_and_outcome_under_the_request_id(
    log_lines, make_reviewer, django_capture_on_commit_callbacks
):
    engine = actor_of(service_account_ensure(name="action-engine"))
    request, _ = approval_request(action_id="ACT-LOG-1", action_type="COMMUNICATION.DRAFT_EMAIL", requester=engine)
    reviewer = APIClient()
    reviewer.force_authenticate(make_reviewer("operator", "olu@example.com"))
    with django_capture_on_commit_callbacks(execute=True):
        response = reviewer.post("/api/hitl/actions/ACT-LOG-1/reject", {"reason": "wrong deal"}, format="json", HTTP_X_REQUEST_ID="req-decide")
    assert response.status_code == 200
    [line] = log_lines.of("hitl.decisions")
    assert line["request_id"] == "req-decide"
    assert line["event"] == "hitl.rejected" and line["outcome"] == "rejected"
    assert line["action_id"] == "ACT-LOG-1" and line["approval_request_id"] == str(request.id)
    assert line["decider"] == "olu@example.com" and line["decider_type"] == "user"
    assert line["risk_level"] == "medium"
    assert "wrong deal" not in json.dumps(line)  # a reason is free text: not logged


def test_objects_given_to_a_log_call_are_not_written(log_lines, rf):
    request = rf.get("/", HTTP_COOKIE="sessionid=s3cr3t", HTTP_AUTHORIZATION="Bearer t0ken")
    logging.getLogger("django.request").warning("Something: %s", "/x", extra={"request": request, "status_code": 500})
    [line] = log_lines.of("django.request")
    assert line["status_code"] == 500 and "request" not in line
    assert "s3cr3t" not in json.dumps(line) and "t0ken" not in json.dumps(line)
