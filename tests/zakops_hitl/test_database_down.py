"""With the database unreachable, every /api/hitl/ endpoint answers 503 JSON with a
`detail`, whether the failure comes while authenticating or in the view."""

import pytest
from django.db import InterfaceError, OperationalError, connections
from rest_framework.test import APIClient

from common.changes import feed
from risk.rulebook import CHANNEL as RULES_CHANNEL

pytestmark = pytest.mark.django_db
ACTION = "ACT-DB-DOWN"


@pytest.fixture
def database_down(monkeypatch):
    """From now on, every attempt to reach the database fails as a refused connection does."""

    def refuse(error=OperationalError):
        def connect():
            raise error('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

        monkeypatch.setattr(connections["default"], "ensure_connection", connect)

    return refuse


CALLS = [
    ("get", "/api/hitl/approval-queue", None),
    ("post", "/api/hitl/approval-requests", {"action_id": ACTION, "action_type": "COMMUNICATION.DRAFT_EMAIL"}),
    ("get", f"/api/hitl/actions/{ACTION}/approval", None),
    ("post", f"/api/hitl/actions/{ACTION}/approve", {"reason": "fine"}),
    ("post", f"/api/hitl/actions/{ACTION}/cancel", {}),
    ("post", f"/api/hitl/actions/{ACTION}/checkpoints", {"checkpoint_name": "n", "checkpoint_data": {}}),
    ("get", f"/api/hitl/actions/{ACTION}/checkpoints/latest", None),
    ("post", "/api/hitl/assess-risk", {"action_type": "COMMUNICATION.SEND_EMAIL"}),
    ("get", "/api/hitl/risk-rules", None),
]


def call(client, method, path, body):
    return client.post(path, body, format="json") if method == "post" else client.get(path)


def assert_unavailable(response):
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "The database is unavailable; try again shortly."}


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_a_token_caller_gets_503_when_the_database_fails_while_authenticating(engine_api, database_down, method, path, body):
    feed.mark_all()  # the token is not cached: authentication itself needs the database
    database_down()
    assert_unavailable(call(engine_api, method, path, body))


# The engine's own approve is refused before the database is asked (a service account
# never decides), so its view-side outage is shown with a reviewer's token below.
ENGINE_IN_VIEW = [c for c in CALLS if not c[1].endswith("/approve")]


@pytest.mark.parametrize(("method", "path", "body"), ENGINE_IN_VIEW)
def test_a_token_caller_gets_503_when_the_database_fails_in_the_view(engine_api, database_down, method, path, body):
    assert engine_api.get("/api/hitl/approval-queue").status_code == 200  # token and role now cached
    feed.mark(RULES_CHANNEL)  # the rules must be read again (assess-risk needs nothing else)
    database_down()
    assert_unavailable(call(engine_api, method, path, body))


def test_assessments_go_on_from_the_cached_rules_while_the_database_is_down(engine_api, database_down):
    body = {"action_type": "COMMUNICATION.SEND_EMAIL"}
    first = engine_api.post("/api/hitl/assess-risk", body, format="json")
    assert first.status_code == 200  # token, role and rules now cached
    database_down()
    again = engine_api.post("/api/hitl/assess-risk", body, format="json")
    assert (again.status_code, again.json()) == (200, first.json())


def test_a_reviewer_deciding_with_a_token_gets_503_when_the_database_fails_in_the_view(make_reviewer, database_down):
    from accounts.services import api_token_create

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=make_reviewer('operator'), name='t')[1]}")
    assert client.get("/api/hitl/approval-queue").status_code == 200  # token and role now cached
    database_down()
    assert_unavailable(call(client, "post", f"/api/hitl/actions/{ACTION}/approve", {"reason": "fine"}))


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_a_signed_in_person_gets_503_when_their_session_can_not_be_read(make_reviewer, database_down, method, path, body):
    client = APIClient()
    client.force_login(make_reviewer("operator"))
    database_down()
    assert_unavailable(call(client, method, path, body))


def test_a_dropped_connection_is_503_too(engine_api, database_down):
    feed.mark_all()
    database_down(InterfaceError)
    assert_unavailable(engine_api.get("/api/hitl/approval-queue"))


def test_the_outage_is_logged_with_its_cause(engine_api, database_down, caplog):
    feed.mark_all()
    database_down()
    engine_api.get("/api/hitl/approval-queue")
    assert "Database unavailable for GET /api/hitl/approval-queue: connection to server" in caplog.text


# --- the engine path tries the database once ---------------------------------------------


@pytest.fixture
def statements_run(monkeypatch):
    """How many times the poll's fixed SQL was sent (or tried to be)."""
    from common import statements

    sent = []
    real = statements.fetch_one

    def counted(sql, params, *db):
        sent.append(sql)
        return real(sql, params, *db)

    monkeypatch.setattr(statements, "fetch_one", counted)
    return sent


def fast_path_failures(route: str) -> float:
    from common.metrics import FAST_PATH_FAILURES

    return FAST_PATH_FAILURES.labels(route=route)._value.get()


def test_a_poll_with_the_database_down_tries_it_once_and_answers_503(
    engine_api, service_token, database_down, statements_run, caplog
):
    from tests.zakops_hitl.wsgi_calls import call, server_environ

    assert engine_api.get(f"/api/hitl/actions/{ACTION}/approval").status_code == 404  # token cached
    statements_run.clear()
    before = fast_path_failures("api-action-approval")
    database_down()
    answer = call(server_environ("GET", f"/api/hitl/actions/{ACTION}/approval",
                                 HTTP_AUTHORIZATION=f"Bearer {service_token}"))
    status, body, request_id = answer.status, answer.json(), answer.headers["X-Request-ID"]
    assert (status, body) == (503, {"detail": "The database is unavailable; try again shortly."})
    assert len(statements_run) == 1, "one attempt at the database per call"
    assert fast_path_failures("api-action-approval") == before + 1
    warnings = [r for r in caplog.records if r.name == "zakops_hitl.engine" and r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].request_id == request_id and warnings[0].route == "api-action-approval"
    assert service_token not in caplog.text


def test_an_engine_path_that_fails_otherwise_is_logged_counted_and_answered_by_the_view_once(
    engine_api, service_token, monkeypatch, caplog
):
    """A fault of the engine path's own (not the database's): the view answers the call,
    and the engine path is not tried again on the way there."""
    import dataclasses

    from tests.zakops_hitl.wsgi_calls import call, server_environ
    from zakops_hitl import engine

    body = {"action_id": ACTION, "action_type": "COMMUNICATION.DRAFT_EMAIL"}
    assert engine_api.post("/api/hitl/approval-requests", body, format="json").status_code == 201
    tried = []

    def broken(request, data, action_id):
        tried.append(1)
        raise KeyError("engine path bug")

    monkeypatch.setattr(engine, "HOT_CALLS", [
        dataclasses.replace(hot, answer=broken) if hot.url_name == "api-action-approval" else hot
        for hot in engine.HOT_CALLS
    ])
    response = engine_api.get(f"/api/hitl/actions/{ACTION}/approval")
    before = fast_path_failures("api-action-approval")
    environ = server_environ("GET", f"/api/hitl/actions/{ACTION}/approval", HTTP_AUTHORIZATION=f"Bearer {service_token}")
    answers = [call(dict(environ)) for _ in range(2)]
    assert (response.status_code, response.json()["state"]) == (200, "pending")
    assert [(answer.status, answer.json()) for answer in answers] == [(200, response.json())] * 2
    assert len(tried) == 2, "once per call"
    assert fast_path_failures("api-action-approval") == before + 2
    warnings = [r for r in caplog.records if r.name == "zakops_hitl.engine" and r.levelname == "WARNING"]
    assert [w.request_id for w in warnings] == [answer.headers["X-Request-ID"] for answer in answers]
    assert "KeyError" in warnings[0].getMessage() and service_token not in caplog.text


def test_an_unknown_action_is_read_once_per_poll(engine_api, service_token, statements_run):
    """The engine path answers the 404 itself: the view does not read the action again."""
    from tests.zakops_hitl.wsgi_calls import call, server_environ

    assert engine_api.get("/api/hitl/actions/ACT-NONE/approval").status_code == 404  # token cached
    statements_run.clear()
    answer = call(server_environ("GET", "/api/hitl/actions/ACT-NONE/approval", HTTP_AUTHORIZATION=f"Bearer {service_token}"))
    assert answer.status == 404
    assert len(statements_run) == 1, "the engine path's read only"
