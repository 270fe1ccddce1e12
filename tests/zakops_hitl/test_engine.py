"""The engine path (zakops_hitl.engine): through the WSGI application, the usual call to
assess-risk or the poll is answered without DRF, and every call, usual or not, gets the
same status, headers that matter and body as the view gives it; whatever is unusual is
answered by the view, which neither authenticates the call nor parses its body again."""

import json

import pytest
from django.urls import resolve, reverse
from rest_framework.views import APIView

from common import parsers
from tests.zakops_hitl.wsgi_calls import call, server_environ
from zakops_hitl.engine import HitlWSGIHandler

URL = "/api/hitl/assess-risk"
THE_VIEW = "from=test"  # a query string: the engine path leaves the call to the view


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


def answer(token, body, *, query="", **headers):
    """(status, Content-Type, Allow, JSON body) of a POST to assess-risk through the WSGI application."""
    raw = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "CONTENT_TYPE": "application/json", **headers}
    found = call(server_environ("POST", URL, query=query, body=raw, **headers))
    return found.status, found.headers["Content-Type"], found.headers.get("Allow"), found.json()


def view_query(query: str) -> str:
    return f"{query}&{THE_VIEW}" if query else THE_VIEW


USUAL = [
    {"action_type": "DEAL.GET_DETAILS"},
    {"action_type": "COMMUNICATION.SEND_EMAIL", "action_data": {"to": "cfo@seller.example", "n": [1, 2.5, None]}},
    {"action_type": "DOCUMENT.GENERATE_LOI", "action_data": None, "context": {"deal_stage": "closed_won"}},
    {"action_type": "VENDOR.DO_THING", "context": None, "ignored": "field"},
    {"action_type": "DEAL.UPDATE_TARGET_PRICE", "action_data": {"price": 10**12, "unicode": "prix élevé ✓"}},
]


@pytest.mark.parametrize("body", USUAL)
def test_the_usual_call_takes_the_engine_path_and_answers_what_drf_answers(service_token, drf_calls, body):
    fast = answer(service_token, body)
    assert drf_calls == [], "answered without DRF"
    assert fast[0] == 200 and fast[1] == "application/json" and fast[2] == "POST, OPTIONS"
    assert answer(service_token, body, query=THE_VIEW) == fast
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
    ({"action_type": "DEAL.GET"}, {"CONTENT_TYPE": "text/plain"}),
    ({"action_type": "DEAL.GET"}, {"HTTP_ACCEPT": "text/html"}),
    ({"action_type": "DEAL.GET"}, {"query": "format=xml"}),
    ({"action_type": "DEAL.GET"}, {"HTTP_IDEMPOTENCY_KEY": "k\x00"}),
    ({"action_type": "DEAL.GET"}, {"HTTP_AUTHORIZATION": "Bearer not-a-token"}),
    ({"action_type": "DEAL.GET"}, {"HTTP_AUTHORIZATION": "Bearer"}),
]


@pytest.mark.parametrize("body,extra", UNUSUAL)
def test_an_unusual_call_is_answered_by_drf_as_before(service_token, drf_calls, body, extra):
    extra = dict(extra)
    query = extra.pop("query", "")
    fast = answer(service_token, body, query=query, **extra)
    assert drf_calls == [1], "DRF answered it"
    assert answer(service_token, body, query=view_query(query), **extra) == fast


def test_an_anonymous_call_is_a_401_with_the_bearer_challenge(api):
    response = api.post(URL, {"action_type": "DEAL.GET_DETAILS"}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def _environ(method, path, body=None, *, token, query="", **headers):
    raw = json.dumps(body).encode() if body is not None else None
    if raw is not None:
        headers.setdefault("CONTENT_TYPE", "application/json")
    return server_environ(method, path, query=query, body=raw, HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def test_the_engine_path_answers_as_the_stack_does(service_token, engine_api, caplog):
    """Through the WSGI application, assess-risk and the poll take the engine path (no URL
    resolution, no DRF); the answer, the request id and the security headers are what the
    stack gives, and the request is logged under its route."""
    body = {"action_type": "COMMUNICATION.SEND_EMAIL", "action_data": {"to": "cfo@seller.example"}}
    assert engine_api.post("/api/hitl/approval-requests", {"action_id": "ACT-LANE-1", **body}, format="json").status_code == 201
    calls = [
        (_environ("POST", URL, body, token=service_token), engine_api.post(URL, body, format="json")),
        (_environ("GET", "/api/hitl/actions/ACT-LANE-1/approval", token=service_token),
         engine_api.get("/api/hitl/actions/ACT-LANE-1/approval")),
        (_environ("GET", "/api/hitl/actions/ACT-NONE/approval", token=service_token),
         engine_api.get("/api/hitl/actions/ACT-NONE/approval")),
        (_environ("POST", URL, body, token=service_token, HTTP_ACCEPT="text/html"),
         engine_api.post(URL, body, format="json", HTTP_ACCEPT="text/html")),
    ]
    caplog.clear()
    with caplog.at_level("INFO", logger="hitl.requests"):
        for environ, through_stack in calls:
            found = call(environ)
            assert found.status == through_stack.status_code
            assert found.json() == json.loads(through_stack.content)
            assert found.headers["X-Request-ID"] and found.headers["X-Content-Type-Options"] == "nosniff"
            assert found.headers["Content-Type"] == through_stack["Content-Type"]
    routes = [record.route for record in caplog.records if record.name == "hitl.requests"]
    assert routes == ["api-assess-risk", "api-action-approval", "api-action-approval", "api-assess-risk"]
    assert [c[1].status_code for c in calls] == [200, 200, 404, 406]


@pytest.mark.parametrize("body", [body for body, extra in UNUSUAL if not extra])
def test_a_body_the_engine_path_declines_is_answered_by_the_stack_as_sent(service_token, engine_api, body):
    raw = body if isinstance(body, str) else json.dumps(body)
    found = call(server_environ("POST", URL, body=raw.encode(), CONTENT_TYPE="application/json",
                                HTTP_AUTHORIZATION=f"Bearer {service_token}"))
    through_stack = engine_api.generic("POST", URL, raw, content_type="application/json")
    assert (found.status, found.json()) == (through_stack.status_code, json.loads(through_stack.content))


def test_a_call_handed_to_the_view_is_authenticated_once_and_its_body_parsed_once(service_token, monkeypatch):
    """The engine path authenticated the call and parsed its body before it found the call
    unusual (an action_type DRF trims); the view takes both as they are."""
    from accounts import authentication

    looked_up, walked = [], []
    token_for, json_problem = authentication._token_for, parsers.json_problem

    def counted_lookup(key_hash):
        looked_up.append(1)
        return token_for(key_hash)

    def counted_walk(data, max_depth):
        walked.append(1)
        return json_problem(data, max_depth)

    monkeypatch.setattr(authentication, "_token_for", counted_lookup)
    monkeypatch.setattr(parsers, "json_problem", counted_walk)  # one walk per parse of a body
    status, _, _, body = answer(service_token, {"action_type": " DEAL.GET_DETAILS "})
    assert (status, body["level"]) == (200, "low")
    assert (len(looked_up), len(walked)) == (1, 1)

    looked_up.clear()
    status, _, _, body = answer("not-a-token", {"action_type": "DEAL.GET_DETAILS"})
    assert (status, body["detail"]) == (401, "Invalid or revoked token.")
    assert len(looked_up) == 1


def test_over_plain_http_with_tls_required_the_engine_path_redirects_as_the_stack_does(service_token, settings):
    settings.SECURE_SSL_REDIRECT = True
    for environ in (_environ("GET", "/api/hitl/actions/ACT-1/approval", token=service_token),
                    _environ("POST", URL, {"action_type": "DEAL.GET"}, token=service_token)):
        found = call(environ)
        assert found.status == 301 and found.headers["Location"].startswith("https://")
    secure = _environ("GET", "/api/hitl/actions/ACT-1/approval", token=service_token, **{"wsgi.url_scheme": "https"})
    assert call(secure).status == 404


def test_the_hot_routes_are_the_urlconfs():
    engine = HitlWSGIHandler().engine
    for route in engine.routes:
        kwargs = {name: "ACT-x.y_1" for name in route.call.path_arguments}
        path = reverse(route.call.url_name, kwargs=kwargs or None)
        assert route.pattern.match(path[1:]) == ("", (), kwargs)
        assert resolve(path).func is route.resolved[0]
        assert route.pattern.match(path[1:] + "/") is None
    poll = next(route for route in engine.routes if route.call.path_arguments)
    assert poll.pattern.match("api/hitl/actions/a/b/approval") is None
    assert {(route.method, route.call.url_name) for route in engine.routes} == {
        ("POST", "api-assess-risk"), ("GET", "api-action-approval")}


def test_a_bearer_call_skips_the_page_middleware_a_page_does_not(service_token):
    found = call(_environ("POST", URL, {"action_type": "DEAL.GET_DETAILS"}, token=service_token))
    assert found.status == 200 and found.json()["level"] == "low"
    assert found.headers["X-Request-ID"] and found.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in found.headers and "Set-Cookie" not in found.headers
    assert "Cookie" not in found.headers.get("Vary", ""), "no session was looked at"

    page = call(server_environ("GET", "/login/"))
    assert page.status == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"] and page.headers["X-Frame-Options"] == "DENY"


def test_the_engine_paths_allow_header_is_the_stacks(service_token, engine_api):
    """The poll's view has get(), so DRF's Allow names HEAD too (as_view() adds it)."""
    body = {"action_type": "COMMUNICATION.SEND_EMAIL", "action_data": {"to": "cfo@seller.example"}}
    assert engine_api.post("/api/hitl/approval-requests", {"action_id": "ACT-ALLOW-1", **body}, format="json").status_code == 201
    calls = [lambda query: _environ("GET", "/api/hitl/actions/ACT-ALLOW-1/approval", token=service_token, query=query),
             lambda query: _environ("POST", URL, body, token=service_token, query=query)]
    through_engine = [call(environ("")).headers["Allow"] for environ in calls]
    through_stack = [call(environ(THE_VIEW)).headers["Allow"] for environ in calls]
    assert through_engine == through_stack == ["GET, HEAD, OPTIONS", "POST, OPTIONS"]


def test_the_engine_path_reads_a_unicode_path_as_django_does(service_token, engine_api):
    """The action asked for is the decoded one (ACT-é), never the action whose id is the
    WSGI text of its bytes (ACT-Ã©)."""
    body = {"action_type": "COMMUNICATION.SEND_EMAIL", "action_data": {"to": "cfo@seller.example"}}
    assert engine_api.post("/api/hitl/approval-requests", {"action_id": "ACT-Ã©", **body}, format="json").status_code == 201
    found = call(_environ("GET", "/api/hitl/actions/ACT-é/approval", token=service_token))
    assert found.status == 404, found.json()
    assert engine_api.post("/api/hitl/approval-requests", {"action_id": "ACT-é", **body}, format="json").status_code == 201
    for asked in ("ACT-é", "ACT-Ã©"):
        found = call(_environ("GET", f"/api/hitl/actions/{asked}/approval", token=service_token))
        assert found.status == 200 and found.json()["action_id"] == asked


def test_the_engine_path_works_under_a_script_prefix(service_token):
    """Behind a proxy that serves the app under a path (SCRIPT_NAME, FORCE_SCRIPT_NAME),
    the thread's script prefix is the last request's when the application is built."""
    from django.urls import clear_script_prefix, set_script_prefix

    set_script_prefix("/hitl/")
    try:
        application = HitlWSGIHandler()
        environ = _environ("POST", URL, {"action_type": "DEAL.GET_DETAILS"}, token=service_token, SCRIPT_NAME="/hitl")
        found = call(environ, application)
    finally:
        clear_script_prefix()
    assert found.status == 200 and found.json()["level"] == "low"


@pytest.mark.parametrize("path,method", [(URL, "POST"), ("/api/hitl/actions/ACT-1/approval", "GET"),
                                         ("/api/hitl/approval-queue", "GET")])
def test_a_bearer_call_with_a_host_not_allowed_is_refused_as_a_page_is(service_token, path, method):
    body = {"action_type": "DEAL.GET"} if method == "POST" else None
    assert call(_environ(method, path, body, token=service_token, HTTP_HOST="evil.example")).status == 400
    assert call(server_environ("GET", "/login/", HTTP_HOST="evil.example")).status == 400


def test_a_host_not_allowed_is_refused_before_the_redirect_to_https(service_token, settings):
    settings.SECURE_SSL_REDIRECT = True
    environ = _environ("POST", URL, {"action_type": "DEAL.GET"}, token=service_token, HTTP_HOST="evil.example")
    assert call(environ).status == 400


def test_a_host_is_remembered_only_once_allowed_and_forgotten_when_the_setting_changes(service_token, settings):
    """The engine path's Host check keeps the hosts it accepted; a host refused is checked
    again on every call, and a change of ALLOWED_HOSTS is seen at once."""
    def status():
        return call(_environ("POST", URL, {"action_type": "DEAL.GET_DETAILS"}, token=service_token,
                             HTTP_HOST="engine.example")).status

    assert status() == 400
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "engine.example"]
    assert status() == 200
    assert status() == 200
    settings.ALLOWED_HOSTS = [host for host in settings.ALLOWED_HOSTS if host != "engine.example"]
    assert status() == 400


@pytest.fixture
def finished():
    """The senders of request_finished, one per signal sent while the test runs."""
    from django.core.signals import request_finished

    senders = []

    def count(sender, **kwargs):
        senders.append(sender)

    request_finished.connect(count)
    yield senders
    request_finished.disconnect(count)


def test_a_hot_call_ends_with_request_finished_at_least_every_interval(service_token, caplog, monkeypatch, finished):
    """request_finished (whose receivers close the connections past their age or broken)
    ends the first call a thread answers on the engine path and then one at least every
    END_EVERY seconds; a call the view answers or that ends in a server error (the database
    out of reach) sends it every time. An error answered on the engine path is logged by
    Django as any other (django.request)."""
    from django.conf import settings as django_settings
    from django.db import OperationalError

    from zakops_hitl import engine

    clock = [100.0]
    monkeypatch.setattr(engine, "monotonic", lambda: clock[0])
    monkeypatch.setitem(django_settings.DATABASES["default"], "CONN_MAX_AGE", 60)  # production's (tests run with 0)
    application = HitlWSGIHandler()

    def sent_after(environ, status, at):
        clock[0] = at
        before = len(finished)
        assert call(environ, application).status == status
        return len(finished) - before

    def assess(**extra):
        return _environ("POST", URL, {"action_type": "DEAL.GET_DETAILS"}, token=service_token, **extra)

    later = 100.0 + engine.END_EVERY
    assert sent_after(assess(), 200, 100.0) == 1  # the thread's first
    assert sent_after(_environ("GET", "/api/hitl/actions/ACT-NONE/approval", token=service_token), 404, 100.1) == 0
    assert sent_after(_environ("POST", URL, {"action_type": ""}, token=service_token), 400, 100.1) == 1  # the view's
    assert sent_after(assess(query=THE_VIEW), 200, 100.1) == 1
    assert sent_after(assess(), 200, later - 0.01) == 0
    assert sent_after(assess(), 200, later) == 1
    assert sent_after(assess(), 200, later + 0.01) == 0

    def unreachable(data):
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    monkeypatch.setattr(engine, "assessment_of", unreachable)
    assert sent_after(assess(), 503, later + 0.02) == 1
    assert set(finished) == {engine.EngineHandler}
    assert [r.getMessage() for r in caplog.records if r.name == "django.request"] == [
        "Not Found: /api/hitl/actions/ACT-NONE/approval", "Bad Request: /api/hitl/assess-risk",
        "Service Unavailable: /api/hitl/assess-risk"]


@pytest.mark.parametrize("setting, value", [("CONN_MAX_AGE", 0), ("CONN_HEALTH_CHECKS", True)])
def test_every_hot_call_ends_with_request_finished_where_a_database_wants_it_each_time(
    service_token, monkeypatch, finished, setting, value
):
    """A connection per request (CONN_MAX_AGE 0), or a health check re-armed by the signal
    before each request's first query: then the signal ends every call."""
    from django.conf import settings as django_settings

    monkeypatch.setitem(django_settings.DATABASES["default"], setting, value)
    application = HitlWSGIHandler()
    for _ in range(3):
        assert call(_environ("POST", URL, {"action_type": "DEAL.GET_DETAILS"}, token=service_token), application).status == 200
    assert len(finished) == 3
