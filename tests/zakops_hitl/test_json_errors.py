"""Every error under /api/ (and of /healthz, /readyz, /metrics) is JSON with a `detail`, for
token and session callers alike, through the test client's stack and through the WSGI
application a server runs: a path no pattern matches (a newline in it included), a Host
not in ALLOWED_HOSTS, and an unexpected error (a 500 saying only that it failed, with the
request id, never the exception's text)."""

import json
from urllib.parse import unquote

import pytest
from django.db import DataError, IntegrityError, ProgrammingError
from rest_framework.test import APIClient

from approvals import selectors
from tests.zakops_hitl.wsgi_calls import call, server_environ

pytestmark = pytest.mark.django_db

SECRET_TEXT = "value 'hunter2-in-the-exception' is out of range"  # what an exception may hold


@pytest.fixture
def callers(service_token, make_reviewer):
    """(name, test client, environ headers for a raw WSGI call) for a token and a session."""
    token = APIClient(raise_request_exception=False)
    token.credentials(HTTP_AUTHORIZATION=f"Bearer {service_token}")
    session = APIClient(raise_request_exception=False, enforce_csrf_checks=True)
    session.force_login(make_reviewer("admin"))
    session_cookie = f"sessionid={session.cookies['sessionid'].value}"
    return [
        ("token", token, {"HTTP_AUTHORIZATION": f"Bearer {service_token}"}),
        ("session", session, {"HTTP_COOKIE": session_cookie}),
    ]


def assert_json_error(status, content_type, body, expected_status):
    assert status == expected_status, body[:300]
    assert content_type == "application/json", body[:300]
    detail = json.loads(body)["detail"]
    assert isinstance(detail, str) and detail
    return json.loads(body)


def both_ways(callers, method, path, *, query="", **headers):
    """The answer of each caller through the test client and through the WSGI application;
    `path` as in a URL (percent-encoded)."""
    for name, client, auth in callers:
        response = client.generic(method, path + (f"?{query}" if query else ""), **headers)
        yield f"{name}, test client", response.status_code, response["Content-Type"], response.content, response
        answer = call(server_environ(method, unquote(path), query=query, **auth, **headers))
        yield f"{name}, WSGI", answer.status, answer.headers["Content-Type"], answer.body, answer


UNMATCHED = [
    "/api/hitl/%0A", "/api/hitl/approval-queue%0A", "/api/hitl/actions/ACT-1/approval%0A",
    "/api/hitl/actions/ACT%0A1/checkpoints/%0A/x", "/api/hitl/assess-risk%0D%0A", "/api/other",
]


@pytest.mark.parametrize("path", UNMATCHED)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_path_no_endpoint_matches_is_a_404_json(callers, method, path):
    for way, status, content_type, body, _ in both_ways(callers, method, path):
        # A session's POST without its CSRF token is refused first, as on every endpoint.
        expected = 403 if way.startswith("session") and method == "POST" and path.startswith("/api/hitl/") else 404
        assert_json_error(status, content_type, body, expected), way


@pytest.mark.parametrize("path", ["//api/hitl/assess-risk", "//api/hitl/actions/x/approval", "///api/hitl/"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_base_url_ending_in_a_slash_gets_a_404_json(callers, method, path):
    """What a server hands the app for `https://host//api/hitl/…` (the test client would
    read `//api` as a host name, so only the WSGI way)."""
    for _, _, auth in callers:
        answer = call(server_environ(method, path, **auth))
        assert_json_error(answer.status, answer.headers["Content-Type"], answer.body, 404)


def test_the_api_root_without_its_slash_is_json_not_a_redirect(callers):
    anonymous = APIClient().get("/api/hitl")
    assert anonymous.status_code == 401 and anonymous["Content-Type"] == "application/json"
    for way, status, content_type, body, _ in both_ways(callers, "GET", "/api/hitl"):
        assert_json_error(status, content_type, body, 404), way


def test_a_newline_in_an_action_id_is_that_action(engine_api):
    response = engine_api.get("/api/hitl/actions/ACT%0A1/approval")
    assert response.status_code == 404 and response.json()["detail"] == "Action ACT\n1 has no approval request."


HOST_PATHS = [
    ("GET", "/api/hitl/actions/ACT-1/approval"), ("POST", "/api/hitl/assess-risk"), ("GET", "/api/hitl/approval-queue"),
    ("GET", "/api/hitl/no-such-endpoint"), ("GET", "/api/hitl/schema/"), ("GET", "/healthz"), ("GET", "/readyz"),
    ("GET", "/metrics"),
]


@pytest.mark.parametrize(("method", "path"), HOST_PATHS)
def test_a_host_not_allowed_is_a_400_json(callers, method, path):
    for way, status, content_type, body, _ in both_ways(callers, method, path, HTTP_HOST="evil.example"):
        found = assert_json_error(status, content_type, body, 400)
        assert "Host" in found["detail"], way


def test_a_host_not_allowed_on_a_page_is_still_the_html_400(client):
    response = client.get("/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("error", [DataError, IntegrityError, ProgrammingError, KeyError])
@pytest.mark.parametrize(("method", "path", "target"), [
    ("GET", "/api/hitl/approval-queue", "approval_queue"),
    ("GET", "/api/hitl/actions/ACT-1/approval", "approval_polled"),  # the engine path first
])
def test_an_unexpected_error_is_a_500_json_with_the_request_id_and_nothing_of_the_error(
    callers, monkeypatch, caplog, error, method, path, target
):
    def fail(**kwargs):
        raise error(SECRET_TEXT)

    monkeypatch.setattr(selectors, target, fail)
    for way, status, content_type, body, response in both_ways(callers, method, path):
        found = assert_json_error(status, content_type, body, 500)
        request_id = (response.headers if hasattr(response, "headers") else response)["X-Request-ID"]
        assert found["request_id"] == request_id and request_id in found["detail"], way
        assert "hunter2" not in body.decode() and error.__name__ not in body.decode(), way
    assert "hunter2" in caplog.text  # the server's log has it, for whoever runs the server


def test_an_unexpected_error_in_metrics_is_a_500_json(callers, monkeypatch):
    from common import metrics

    def fail():
        raise ProgrammingError(SECRET_TEXT)

    monkeypatch.setattr(metrics, "scrape", fail)
    for way, status, content_type, body, _ in both_ways(callers, "GET", "/metrics"):
        assert_json_error(status, content_type, body, 500)
        assert b"hunter2" not in body, way


def test_a_wrong_method_on_health_and_readiness_is_a_405_json(client):
    for path in ("/healthz", "/readyz"):
        response = client.post(path)
        assert (response.status_code, response["Content-Type"], response["Allow"]) == (405, "application/json", "GET")
        assert response.json()["detail"]


def test_every_operation_documents_the_500(engine_api):
    schema = engine_api.get("/api/hitl/schema/").json()
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            assert operation["responses"]["500"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, f"{method} {path}"
