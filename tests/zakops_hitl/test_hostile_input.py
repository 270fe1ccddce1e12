"""What the database could not store (NUL, lone surrogates, numbers beyond a double) or
what is nested too deep is a 400 JSON naming the field, on every endpoint, and nothing
is written: in a body, a path, a query string or the Idempotency-Key header."""

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.selectors import actor_of
from accounts.services import service_account_ensure
from approvals.models import ApprovalRequest
from approvals.services.requests import approval_request
from checkpoints.services import checkpoint_save
from common.models import IdempotencyRecord
from zakops.models import Action, DealEvent, ExecutionCheckpoint, OutboxEvent

pytestmark = pytest.mark.django_db
ACTION = "ACT-HOSTILE-1"  # a pending approval request and one active checkpoint


@pytest.fixture
def world(db):
    engine = actor_of(service_account_ensure(name="action-engine"))
    approval_request(action_id=ACTION, action_type="COMMUNICATION.DRAFT_EMAIL", inputs={}, requester=engine)
    checkpoint_save(action_id=ACTION, checkpoint_name="first", checkpoint_data={"step": 1})


@pytest.fixture
def operator_api(make_reviewer):
    client = APIClient()
    client.force_login(make_reviewer("operator"))
    return client


def rows() -> dict:
    models = (Action, ApprovalRequest, ExecutionCheckpoint, IdempotencyRecord, DealEvent, OutboxEvent)
    return {model.__name__: model.objects.count() for model in models}


# (endpoint, who calls it, path, body without the field under test, that field, whether it is an object)
ENDPOINTS = {
    "approval-requests": (
        "engine", "/api/hitl/approval-requests",
        {"action_id": "ACT-HOSTILE-NEW", "action_type": "COMMUNICATION.DRAFT_EMAIL"}, "inputs", True,
    ),
    "approval-requests context": (
        "engine", "/api/hitl/approval-requests",
        {"action_id": "ACT-HOSTILE-NEW", "action_type": "COMMUNICATION.DRAFT_EMAIL"}, "context", True,
    ),
    "assess-risk": ("engine", "/api/hitl/assess-risk", {"action_type": "COMMUNICATION.SEND_EMAIL"}, "action_data", True),
    "checkpoint save": ("engine", f"/api/hitl/actions/{ACTION}/checkpoints", {"checkpoint_name": "step"}, "checkpoint_data", True),
    "approve": ("operator", f"/api/hitl/actions/{ACTION}/approve", {}, "reason", False),
    "reject": ("operator", f"/api/hitl/actions/{ACTION}/reject", {}, "reason", False),
}
HUGE, DEEP = "__1e400__", "__5000 levels__"  # placeholders for what json.dumps can not write


def nested(levels: int):
    """`levels` objects, one inside the other."""
    value = 1
    for _ in range(levels):
        value = {"a": value}
    return value


# Each class of hostile input: the value put into an object field (inputs, checkpoint_data, …)
# and the path under that field the 400 must name; then, for a text field (a reason), the
# fields sent with it and the path named.
IN_AN_OBJECT = {
    "NUL in value": ({"to": ["a@x.com", "b@y.com", "c\x00@z.com"]}, ".to[2]"),
    "NUL in key": ({"ok": 1, "a\x00b": 2}, ".a\\u0000b"),
    "surrogate in value": ({"note": ["ok", {"text": "x\ud800"}]}, ".note[1].text"),
    "surrogate in key": ({"\udbff": 1}, ".\\udbff"),
    "1e400": ({"amount": HUGE}, ".amount"),
    "depth 65": (nested(64), ""),  # the body is level 1
    "depth 5000": (DEEP, ""),
}
WITH_A_REASON = {
    "NUL in value": ({"reason": "fine\x00"}, "reason"),
    "NUL in key": ({"reason": "fine", "a\x00b": 2}, "a\\u0000b"),
    "surrogate in value": ({"reason": "\udc00"}, "reason"),
    "surrogate in key": ({"reason": "fine", "k\ud800": 1}, "k\\ud800"),
    "1e400": ({"reason": "fine", "amount": HUGE}, "amount"),
    "depth 65": ({"reason": "fine", "details": nested(64)}, "details"),
    "depth 5000": ({"reason": "fine", "details": DEEP}, "details"),
}


def hostile(case: str, base: dict, field: str, is_object: bool) -> tuple[str, str]:
    """(JSON body, the path the 400 must name) for one class of hostile input."""
    if is_object:
        value, under = IN_AN_OBJECT[case]
        fields, named = {field: value}, field + under
    else:
        fields, named = WITH_A_REASON[case]
    text = json.dumps({**base, **fields}).replace(json.dumps(HUGE), "1e400")
    return text.replace(json.dumps(DEEP), '{"a":' * 4999 + "1" + "}" * 4999), named


def assert_refused(response, named: str):
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["detail"].startswith(f"{named}: "), body
    assert body["field"] == named
    return body["detail"]


@pytest.mark.parametrize(
    "case", IN_AN_OBJECT)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_body_the_database_could_not_store_is_400_naming_the_field(world, engine_api, operator_api, endpoint, case):
    who, path, base, field, is_object = ENDPOINTS[endpoint]
    client = engine_api if who == "engine" else operator_api
    body, named = hostile(case, base, field, is_object)
    before = rows()
    response = client.post(path, body, content_type="application/json")
    detail = assert_refused(response, named)
    if case.startswith("depth"):
        assert "nested deeper than 64 levels of arrays and objects" in detail
    elif "key" in case:
        assert "a key with" in detail
    assert rows() == before
    assert ApprovalRequest.objects.get(action_id=ACTION).state == "pending"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_body_64_levels_deep_is_accepted(world, engine_api, operator_api, endpoint):
    who, path, base, field, is_object = ENDPOINTS[endpoint]
    client = engine_api if who == "engine" else operator_api
    body = {**base, field: nested(63)} if is_object else {**base, field: "fine", "details": nested(63)}
    response = client.post(path, json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 201), response.content[:300]


def test_the_depth_limit_is_a_setting(world, engine_api, settings):
    settings.HITL_JSON_MAX_DEPTH = 3
    path = "/api/hitl/assess-risk"
    ok = engine_api.post(path, {"action_type": "X", "action_data": {"a": {"b": 1}}}, format="json")
    assert ok.status_code == 200
    deep = engine_api.post(path, {"action_type": "X", "action_data": {"a": {"b": [1]}}}, format="json")
    assert deep.status_code == 400
    assert deep.json()["detail"] == "action_data: nested deeper than 3 levels of arrays and objects."


def test_malformed_json_stays_400(world, engine_api):
    for text in ('{"action_type": ', '{"action_type": "X", "action_data": NaN}', '{"action_type": "a\x00"}', "\xff"):
        response = engine_api.post("/api/hitl/assess-risk", text.encode("latin-1"), content_type="application/json")
        assert response.status_code == 400, text
        assert response.json()["detail"].startswith("JSON parse error")
    # A charset Python knows that is no text encoding
    response = engine_api.post("/api/hitl/assess-risk", b'{"action_type": "X"}', content_type="application/json; charset=base64")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


def test_the_refusal_names_the_field_in_the_json_too(world, engine_api):
    body = '{"action_type": "X", "action_data": {"to": ["a", "\\u0000"]}}'
    response = engine_api.post("/api/hitl/assess-risk", body, content_type="application/json")
    assert response.json() == {
        "detail": "action_data.to[1]: NUL characters (\\u0000) can not be stored.", "field": "action_data.to[1]",
    }


# --- path, query and headers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "method", "path", "named"),
    [
        ("engine", "get", "/api/hitl/actions/A%00B/approval", "action_id"),
        ("operator", "post", "/api/hitl/actions/A%00B/approve", "action_id"),
        ("operator", "post", "/api/hitl/actions/A%00B/reject", "action_id"),
        ("engine", "post", "/api/hitl/actions/A%00B/cancel", "action_id"),
        ("engine", "get", "/api/hitl/actions/A%00B/checkpoints", "action_id"),
        ("engine", "post", "/api/hitl/actions/A%00B/checkpoints", "action_id"),
        ("engine", "get", f"/api/hitl/actions/{ACTION}/checkpoints/fir%00st", "checkpoint_name"),
        ("engine", "get", "/api/hitl/approval-queue?deal_id=D%00", "deal_id"),
        ("engine", "get", "/api/hitl/approval-queue?status=PENDING_APPROVAL&x%00y=1", "x\\u0000y"),
        ("engine", "get", f"/api/hitl/actions/{ACTION}/checkpoints/latest?checkpoint_name=first%00", "checkpoint_name"),
        ("engine", "get", f"/api/hitl/actions/{ACTION}/checkpoints?include_resumed=%00", "include_resumed"),
        ("engine", "post", "/api/hitl/assess-risk?note=%00", "note"),
    ],
)
def test_a_nul_in_a_path_or_query_parameter_is_400_naming_it(world, engine_api, operator_api, who, method, path, named):
    client = engine_api if who == "engine" else operator_api
    body = {"reason": "fine", "checkpoint_name": "n", "checkpoint_data": {}, "action_type": "X"}
    before = rows()
    response = client.post(path, body, format="json") if method == "post" else client.get(path)
    assert_refused(response, named)
    assert rows() == before
    assert ApprovalRequest.objects.get(action_id=ACTION).state == "pending"


def test_anonymous_calls_stay_401_whatever_the_path(api):
    response = api.get("/api/hitl/actions/A%00B/approval")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("who", "path", "body"),
    [
        ("engine", "/api/hitl/approval-requests", {"action_id": "ACT-HOSTILE-NEW", "action_type": "COMMUNICATION.DRAFT_EMAIL"}),
        ("engine", f"/api/hitl/actions/{ACTION}/checkpoints", {"checkpoint_name": "n", "checkpoint_data": {}}),
        ("operator", f"/api/hitl/actions/{ACTION}/approve", {"reason": "fine"}),
    ],
)
def test_an_idempotency_key_with_a_nul_is_400_and_stores_nothing(world, engine_api, operator_api, who, path, body):
    client = engine_api if who == "engine" else operator_api
    before = rows()
    response = client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="key\x00one")
    assert_refused(response, "Idempotency-Key")
    assert rows() == before
    assert ApprovalRequest.objects.get(action_id=ACTION).state == "pending"


@pytest.mark.parametrize("cookie", ["abcdefgh\x00ijkl", "ABCDEFGH-not-a-session-key"])
def test_a_session_cookie_django_could_not_have_issued_is_no_session(cookie):
    client = Client()
    client.cookies["sessionid"] = cookie
    api = client.get("/api/hitl/approval-queue")
    assert (api.status_code, api["Content-Type"]) == (401, "application/json")
    page = client.get("/")
    assert page.status_code == 302 and page["Location"].startswith("/login/")


def test_a_real_session_still_signs_in(make_reviewer):
    client = Client()
    client.force_login(make_reviewer("viewer"))
    assert client.get("/api/hitl/approval-queue").status_code == 200


# --- an unknown ?format= (DRF's own answer would be 404) ---------------------------------


@pytest.mark.parametrize("path", ["/api/hitl/approval-queue?format=xml", "/api/hitl/schema/?format=html"])
def test_an_unknown_format_is_406_not_404(engine_api, path):
    response = engine_api.get(path)
    assert response.status_code == 406
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"].startswith("format: 'xml'" if "xml" in path else "format: 'html'")
