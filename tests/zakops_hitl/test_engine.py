"""The engine's hot endpoints answer the usual call on a fast path (common.api); every
call, usual or not, gets the same status, headers that matter and body as DRF's path
gives, and whatever is unusual is answered by DRF."""

import json

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory
from django.urls import resolve, reverse
from rest_framework.views import APIView

from common.api import HitlAPIView
from zakops_hitl.handlers import HitlWSGIHandler, _Lane

URL = "/api/hitl/assess-risk"


@pytest.fixture
def drf_only(monkeypatch):
    """Turns the fast path off for the block: every call goes through DRF."""

    def off():
        monkeypatch.setattr(HitlAPIView, "_fast_call", lambda self, fast, request, kwargs: None)

    return off


@pytest.fixture
def drf_calls(monkeypatch):
    """How many calls DRF's dispatch answered."""
    calls = []
    real = APIView.dispatch

    def counted(self, request, *args, **kwargs):
        calls.append(1)
        return real(self, request, *args, **kwargs)

    monkeypatch.setattr(APIView, "dispatch", counted)
    return calls


def answer(client, body, **extra):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    response = client.generic("POST", extra.pop("path", URL), raw, content_type=extra.pop("content_type", "application/json"), **extra)
    return response.status_code, response["Content-Type"], response.get("Allow"), json.loads(response.content)


USUAL = [
    {"action_type": "DEAL.GET_DETAILS"},
    {"action_type": "COMMUNICATION.SEND_EMAIL", "action_data": {"to": "cfo@seller.example", "n": [1, 2.5, None]}},
    {"action_type": "DOCUMENT.GENERATE_LOI", "action_data": None, "context": {"deal_stage": "closed_won"}},
    {"action_type": "VENDOR.DO_THING", "context": None, "ignored": "field"},
    {"action_type": "DEAL.UPDATE_TARGET_PRICE", "action_data": {"price": 10**12, "unicode": "prix élevé ✓"}},
]


@pytest.mark.parametrize("body", USUAL)
def test_the_usual_call_takes_the_fast_path_and_answers_what_drf_answers(engine_api, drf_only, drf_calls, body):
    fast = answer(engine_api, body)
    assert drf_calls == [], "answered without DRF"
    assert fast[0] == 200 and fast[1] == "application/json" and fast[2] == "POST, OPTIONS"
    drf_only()
    assert answer(engine_api, body) == fast
    assert len(drf_calls) == 1


UNUSUAL = [
    ({"action_type": " DEAL.GET_DETAILS "}, {}),  # trimmed by DRF's CharField
    ({"action_type": ""}, {}),
    ({"action_type": 5}, {}),
    ({"action_type": "X" * 101}, {}),
    ({}, {}),
    ({"action_type": "DEAL.GET", "action_data": [1]}, {}),
    ({"action_type": "DEAL.GET", "context": "closed"}, {}),
    ('{"action_type": "DEAL.GET", "action_data": {"to": "a\\u0000b"}}', {}),
    ('{"action_type": "DEAL.GET", "action_data": {"x": "\\ud800"}}', {}),
    ('{"action_type": "DEAL.GET", "action_data": {"amount": 1e400}}', {}),
    ('{"action_type": "DEAL.GET", "action_data": ' + "[" * 70 + "]" * 70 + "}", {}),
    ('{"action_type": "DEAL.GET",', {}),
    ("[1, 2]", {}),
    ({"action_type": "DEAL.GET"}, {"content_type": "text/plain"}),
    ({"action_type": "DEAL.GET"}, {"HTTP_ACCEPT": "text/html"}),
    ({"action_type": "DEAL.GET"}, {"QUERY_STRING": "format=xml"}),
    ({"action_type": "DEAL.GET"}, {"HTTP_IDEMPOTENCY_KEY": "k\x00"}),
    ({"action_type": "DEAL.GET"}, {"HTTP_AUTHORIZATION": "Bearer not-a-token"}),
    ({"action_type": "DEAL.GET"}, {"HTTP_AUTHORIZATION": "Bearer"}),
]


@pytest.mark.parametrize("body,extra", UNUSUAL)
def test_an_unusual_call_is_answered_by_drf_as_before(engine_api, api, drf_only, drf_calls, body, extra):
    client = api if "HTTP_AUTHORIZATION" in extra else engine_api  # a token of its own
    fast = answer(client, body, **extra)
    assert drf_calls == [1], "DRF answered it"
    drf_only()
    assert answer(client, body, **extra) == fast


def test_an_anonymous_call_is_a_401_with_the_bearer_challenge(api):
    response = api.post(URL, {"action_type": "DEAL.GET_DETAILS"}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def _through_the_wsgi_app(environ_request):
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = status, dict(headers)

    # As Django's test client does: the test's connection must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = b"".join(HitlWSGIHandler()(environ_request.environ, start_response))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return started["status"], started["headers"], body


def test_the_engines_lane_answers_as_the_stack_does(service_token, engine_api, caplog):
    """Through the WSGI application, assess-risk and the poll take the lane (no URL
    resolution, no middleware chain); the answer, the request id and the security headers
    are what the stack gives, and the request is logged under its route."""
    factory = RequestFactory()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {service_token}"}
    body = {"action_type": "COMMUNICATION.SEND_EMAIL", "action_data": {"to": "cfo@seller.example"}}
    assert engine_api.post("/api/hitl/approval-requests", {"action_id": "ACT-LANE-1", **body}, format="json").status_code == 201
    caplog.set_level("INFO", logger="hitl.requests")
    calls = [
        (factory.post(URL, body, content_type="application/json", **auth), engine_api.post(URL, body, format="json")),
        (factory.get("/api/hitl/actions/ACT-LANE-1/approval", **auth), engine_api.get("/api/hitl/actions/ACT-LANE-1/approval")),
        (factory.get("/api/hitl/actions/ACT-NONE/approval", **auth), engine_api.get("/api/hitl/actions/ACT-NONE/approval")),
        (factory.post(URL, body, content_type="application/json", HTTP_ACCEPT="text/html", **auth),
         engine_api.post(URL, body, format="json", HTTP_ACCEPT="text/html")),
    ]
    caplog.clear()
    with caplog.at_level("INFO", logger="hitl.requests"):
        for through_lane, through_stack in calls:
            status, headers, content = _through_the_wsgi_app(through_lane)
            assert int(status.split()[0]) == through_stack.status_code
            assert json.loads(content) == json.loads(through_stack.content)
            assert headers["X-Request-ID"] and headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Content-Type"] == through_stack["Content-Type"]
    routes = [record.route for record in caplog.records if record.name == "hitl.requests"]
    assert routes == ["api-assess-risk", "api-action-approval", "api-action-approval", "api-assess-risk"]
    assert [c[1].status_code for c in calls] == [200, 200, 404, 406]


@pytest.mark.parametrize("body", [body for body, extra in UNUSUAL if not extra])
def test_a_body_the_lane_declines_is_answered_by_the_stack_as_sent(service_token, engine_api, body):
    raw = body if isinstance(body, str) else json.dumps(body)
    through_lane = RequestFactory().generic(
        "POST", URL, raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {service_token}"
    )
    status, _, content = _through_the_wsgi_app(through_lane)
    through_stack = engine_api.generic("POST", URL, raw, content_type="application/json")
    assert (int(status.split()[0]), json.loads(content)) == (through_stack.status_code, json.loads(through_stack.content))


def test_over_plain_http_with_tls_required_the_lane_redirects_as_the_stack_does(service_token, settings):
    settings.SECURE_SSL_REDIRECT = True
    auth = {"HTTP_AUTHORIZATION": f"Bearer {service_token}"}
    for call in (RequestFactory().get("/api/hitl/actions/ACT-1/approval", **auth),
                 RequestFactory().post(URL, {"action_type": "DEAL.GET"}, content_type="application/json", **auth)):
        status, headers, _ = _through_the_wsgi_app(call)
        assert status.startswith("301") and headers["Location"].startswith("https://")
    secure = RequestFactory().get("/api/hitl/actions/ACT-1/approval", secure=True, **auth)
    assert _through_the_wsgi_app(secure)[0].startswith("404")


def test_the_lanes_routes_are_the_urlconfs():
    lane = _Lane()
    for method, pattern, view_class, name in lane.routes:
        kwargs = {"action_id": "ACT-x.y_1"} if "action_id" in pattern.pattern else None
        path = reverse(name, kwargs=kwargs)
        assert lane._route(method, path) == (view_class, name, kwargs or {})
        assert resolve(path).func.cls is view_class
        assert lane._route(method, path + "/") is None and lane._route("PUT", path) is None
    assert lane._route("GET", "/api/hitl/actions/a/b/approval") is None


def test_a_bearer_call_skips_the_page_middleware_a_page_does_not(service_token):
    factory = RequestFactory()
    api = factory.post(URL, {"action_type": "DEAL.GET_DETAILS"}, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {service_token}")
    status, headers, body = _through_the_wsgi_app(api)
    assert status.startswith("200") and json.loads(body)["level"] == "low"
    assert headers["X-Request-ID"] and headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in headers and "Set-Cookie" not in headers
    assert "Cookie" not in headers.get("Vary", ""), "no session was looked at"

    status, headers, _ = _through_the_wsgi_app(factory.get("/login/"))
    assert status.startswith("200")
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"


def _stack_only(monkeypatch):
    monkeypatch.setattr(HitlAPIView, "_fast_call", lambda self, fast, request, kwargs: None)


def test_the_lanes_allow_header_is_the_stacks(service_token, engine_api, monkeypatch):
    """The poll's view has get(), so DRF's Allow names HEAD too (as_view() adds it)."""
    body = {"action_type": "COMMUNICATION.SEND_EMAIL", "action_data": {"to": "cfo@seller.example"}}
    assert engine_api.post("/api/hitl/approval-requests", {"action_id": "ACT-ALLOW-1", **body}, format="json").status_code == 201
    auth = {"HTTP_AUTHORIZATION": f"Bearer {service_token}"}
    calls = [lambda: RequestFactory().get("/api/hitl/actions/ACT-ALLOW-1/approval", **auth),
             lambda: RequestFactory().post(URL, body, content_type="application/json", **auth)]
    through_lane = [_through_the_wsgi_app(call())[1]["Allow"] for call in calls]
    _stack_only(monkeypatch)
    through_stack = [_through_the_wsgi_app(call())[1]["Allow"] for call in calls]
    assert through_lane == through_stack == ["GET, HEAD, OPTIONS", "POST, OPTIONS"]


def _poll_of(path: str, **extra):
    """A GET of `path` whose PATH_INFO is what a WSGI server gives: the path's UTF-8 bytes
    as latin-1 text."""
    call = RequestFactory().get("/api/hitl/actions/x/approval", **extra)
    call.environ["PATH_INFO"] = path.encode().decode("latin-1")
    return call


def test_the_lane_reads_a_unicode_path_as_django_does(service_token, engine_api):
    """The action asked for is the decoded one (ACT-é), never the action whose id is the
    WSGI text of its bytes (ACT-Ã©)."""
    body = {"action_type": "COMMUNICATION.SEND_EMAIL", "action_data": {"to": "cfo@seller.example"}}
    assert engine_api.post("/api/hitl/approval-requests", {"action_id": "ACT-Ã©", **body}, format="json").status_code == 201
    auth = {"HTTP_AUTHORIZATION": f"Bearer {service_token}"}
    status, _, content = _through_the_wsgi_app(_poll_of("/api/hitl/actions/ACT-é/approval", **auth))
    assert status.startswith("404"), json.loads(content)
    assert engine_api.post("/api/hitl/approval-requests", {"action_id": "ACT-é", **body}, format="json").status_code == 201
    for asked in ("ACT-é", "ACT-Ã©"):
        status, _, content = _through_the_wsgi_app(_poll_of(f"/api/hitl/actions/{asked}/approval", **auth))
        assert status.startswith("200") and json.loads(content)["action_id"] == asked


def test_the_lane_works_under_a_script_prefix(service_token):
    """Behind a proxy that serves the app under a path (SCRIPT_NAME, FORCE_SCRIPT_NAME),
    the thread's script prefix is the last request's when the lane is first built."""
    from django.urls import clear_script_prefix, set_script_prefix

    auth = {"HTTP_AUTHORIZATION": f"Bearer {service_token}"}
    set_script_prefix("/hitl/")
    try:
        lane = _Lane()
        assert lane._route("POST", URL) is not None
        call = RequestFactory().post(URL, {"action_type": "DEAL.GET_DETAILS"}, content_type="application/json", **auth)
        call.environ["SCRIPT_NAME"] = "/hitl"
        status, _, content = _through_the_wsgi_app(call)
    finally:
        clear_script_prefix()
    assert status.startswith("200") and json.loads(content)["level"] == "low"


@pytest.mark.parametrize("path,method", [(URL, "post"), ("/api/hitl/actions/ACT-1/approval", "get"),
                                         ("/api/hitl/approval-queue", "get")])
def test_a_bearer_call_with_a_host_not_allowed_is_refused_as_a_page_is(service_token, path, method):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {service_token}", "HTTP_HOST": "evil.example"}
    factory = RequestFactory()
    call = factory.post(path, {"action_type": "DEAL.GET"}, content_type="application/json", **auth) if method == "post" \
        else factory.get(path, **auth)
    assert _through_the_wsgi_app(call)[0].startswith("400")
    assert _through_the_wsgi_app(factory.get("/login/", HTTP_HOST="evil.example"))[0].startswith("400")


def test_a_host_not_allowed_is_refused_before_the_redirect_to_https(service_token, settings):
    settings.SECURE_SSL_REDIRECT = True
    call = RequestFactory().post(URL, {"action_type": "DEAL.GET"}, content_type="application/json",
                                 HTTP_AUTHORIZATION=f"Bearer {service_token}", HTTP_HOST="evil.example")
    assert _through_the_wsgi_app(call)[0].startswith("400")
