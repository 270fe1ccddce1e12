import json

import pytest
from django.urls import reverse

from accounts.services import api_token_create, service_account_ensure
from approvals.models import ApprovalRequest
from approvals.services.decisions import approval_decide
from zakops.models import Action, DealEvent, OutboxEvent

pytestmark = pytest.mark.django_db
QUEUE = "/api/hitl/approval-queue"
REQUESTS = "/api/hitl/approval-requests"


def post(client, path, body=None, **headers):
    return client.post(path, json.dumps(body or {}), content_type="application/json", **headers)


def as_person(api, user):
    api.force_login(user)
    return api


def test_the_engine_requests_a_person_decides_once_and_the_engine_sees_it(engine_api, api, make_reviewer):
    created = post(engine_api, REQUESTS, {
        "action_id": "ACT-20260119T101500-1a2b3c4d", "action_type": "DOCUMENT.GENERATE_LOI",
        "title": "LOI for Acme", "inputs": {"template": "standard"}, "requested_by": "ana@example.com",
    })
    assert created.status_code == 201
    body = created.json()
    assert {"request_id", "action_id", "state", "risk_level", "score", "reasons", "requires_approval", "expires_at"} <= set(body)
    assert (body["state"], body["risk_level"], body["requires_approval"]) == ("pending", "high", True)

    queue = engine_api.get(QUEUE).json()
    assert [item["action_id"] for item in queue] == ["ACT-20260119T101500-1a2b3c4d"]
    assert {"action_id", "action_type", "title", "risk_level", "status", "created_at", "deal_id"} <= set(queue[0])
    assert queue[0]["request_id"] == body["request_id"]

    polled = engine_api.get("/api/hitl/actions/ACT-20260119T101500-1a2b3c4d/approval").json()
    assert (polled["state"], polled["decided_by"], polled["decided_at"]) == ("pending", None, None)

    olu = make_reviewer("operator", "olu@example.com")
    approved = post(as_person(api, olu), "/api/hitl/actions/ACT-20260119T101500-1a2b3c4d/approve", {"reason": "Terms match"})
    assert approved.status_code == 200
    operator_id = str(olu.account.actor_id)
    expected = {"status": "approved", "action_id": "ACT-20260119T101500-1a2b3c4d", "approved_by": operator_id, "reason": "Terms match"}
    assert approved.json().items() >= expected.items()

    polled = engine_api.get("/api/hitl/actions/ACT-20260119T101500-1a2b3c4d/approval").json()
    assert (polled["state"], polled["decided_by"], polled["reason"]) == ("approved", operator_id, "Terms match")
    action = Action.objects.get(pk="ACT-20260119T101500-1a2b3c4d")
    assert (action.status, str(action.approved_by)) == ("QUEUED", operator_id)
    event = DealEvent.objects.get(event_type="hitl.approved")
    assert event.details["decider"] == "olu@example.com"
    assert OutboxEvent.objects.filter(event_type="hitl.approved", aggregate_id=action.action_id).count() == 1
    assert engine_api.get(QUEUE).json() == []


def test_a_second_request_answers_200_with_the_open_one(engine_api):
    body = {"action_id": "ACT-1", "action_type": "COMMUNICATION.DRAFT_EMAIL"}
    first = post(engine_api, REQUESTS, body)
    second = post(engine_api, REQUESTS, body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["request_id"] == second.json()["request_id"]


def test_a_request_that_needs_no_approval_is_approved_at_once_and_says_so(engine_api):
    body = post(engine_api, REQUESTS, {"action_id": "ACT-1", "action_type": "DEAL.GET_DETAILS"}).json()
    assert (body["state"], body["requires_approval"], body["decided_by_name"]) == ("approved", False, "zakops-hitl")
    assert body["reason"].startswith("Approved automatically")
    assert Action.objects.get(pk="ACT-1").status == "QUEUED"


def test_reject_and_quarantine_answer_with_their_fields(engine_api, api, make_reviewer, request_approval):
    admin = make_reviewer("admin", "ada@example.com")
    first, second = request_approval("medium"), request_approval("medium")
    rejected = post(as_person(api, admin), f"/api/hitl/actions/{first.action_id}/reject", {"reason": "Wrong deal"})
    assert rejected.status_code == 200
    assert rejected.json().items() >= {"status": "rejected", "rejected_by": str(admin.account.actor_id), "reason": "Wrong deal"}.items()
    quarantined = post(api, f"/api/hitl/actions/{second.action_id}/quarantine", {"reason": "Check with legal"})
    assert quarantined.json().items() >= {"status": "quarantined", "quarantined_by": str(admin.account.actor_id)}.items()


def test_the_loser_gets_409_with_who_decided_what_and_when(api, make_reviewer, request_approval, people):
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve")
    response = post(as_person(api, make_reviewer("operator", "late@example.com")), f"/api/hitl/actions/{request.action_id}/reject", {"reason": "No"})
    assert response.status_code == 409
    body = response.json()
    assert (body["state"], body["decided_by_name"]) == ("approved", "olu@example.com")
    assert body["decided_at"] and "Already approved by olu@example.com" in body["detail"]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("reject", {}, 400, "reason"),
        ("reject", {"reason": ""}, 400, "reason"),
        ("quarantine", {"reason": "   "}, 400, "reason"),
        ("reject", {"reason": "x" * 2001}, 400, "reason"),
        ("approve", {"reason": "x" * 2001}, 400, "reason"),
        ("approve", {"reason": 5}, 400, "reason"),
    ],
)
def test_bad_reasons_are_400_naming_the_field(api, make_reviewer, request_approval, path, body, status, field):
    request = request_approval("medium")
    response = post(as_person(api, make_reviewer("operator")), f"/api/hitl/actions/{request.action_id}/{path}", body)
    assert response.status_code == status
    assert response.json()["detail"].startswith(f"{field}:")
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"


def test_unknown_action_is_404(api, make_reviewer, engine_api):
    as_person(api, make_reviewer("operator"))
    for path in ("approve", "reject", "quarantine"):
        assert post(api, f"/api/hitl/actions/ACT-NOPE/{path}", {"reason": "r"}).status_code == 404
    assert engine_api.get("/api/hitl/actions/ACT-NOPE/approval").status_code == 404
    assert post(engine_api, "/api/hitl/actions/ACT-NOPE/cancel").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action_type": "X"}, "action_id"),
        ({"action_id": "ACT-1"}, "action_type"),
        ({"action_id": "A" * 51, "action_type": "X"}, "action_id"),
        ({"action_id": "ACT-1", "action_type": "X", "inputs": [1]}, "inputs"),
        ({"action_id": "ACT-1", "action_type": "X", "context": "closed"}, "context"),
        ({"action_id": "ACT-1", "action_type": "X", "correlation_id": "nope"}, "correlation_id"),
        ({"action_id": "ACT-1", "action_type": "X", "deal_id": "DL-404"}, "deal_id"),
    ],
)
def test_bad_approval_requests_are_400_naming_the_field(engine_api, body, field):
    response = post(engine_api, REQUESTS, body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}:")
    assert not Action.objects.exists()


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 201}, {"limit": "ten"}, {"status": "WAITING"}, {"risk_level": "extreme"}])
def test_bad_queue_filters_are_400(engine_api, query):
    response = engine_api.get(QUEUE, query)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{next(iter(query))}:")


def test_queue_orders_critical_first_then_oldest_and_filters(engine_api, request_approval):
    from zakops.models import Deal

    Deal.objects.create(deal_id="DL-1", canonical_name="Acme")
    old_medium = request_approval("medium")
    critical = request_approval("critical")
    high = request_approval("high", deal_id="DL-1")
    new_medium = request_approval("medium")
    Action.objects.filter(pk=old_medium.action_id).update(created_at="2026-01-01T00:00:00Z")
    order = [item["action_id"] for item in engine_api.get(QUEUE).json()]
    assert order == [critical.action_id, high.action_id, old_medium.action_id, new_medium.action_id]
    assert [i["action_id"] for i in engine_api.get(QUEUE, {"risk_level": "medium"}).json()] == [old_medium.action_id, new_medium.action_id]
    assert [i["action_id"] for i in engine_api.get(QUEUE, {"deal_id": "DL-1"}).json()] == [high.action_id]
    assert len(engine_api.get(QUEUE, {"limit": 2}).json()) == 2
    assert engine_api.get(QUEUE, {"status": "QUEUED"}).json() == []


def test_queue_query_count_does_not_grow_with_rows(engine_api, request_approval, django_assert_max_num_queries):
    for _ in range(3):
        request_approval("medium")
    engine_api.get(QUEUE)  # warm the token cache
    with django_assert_max_num_queries(2) as few:
        assert len(engine_api.get(QUEUE).json()) == 3
    for _ in range(30):
        request_approval("high")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(engine_api.get(QUEUE).json()) == 33


def test_cancel_by_the_engine(engine_api, request_approval):
    request = request_approval("high")
    response = post(engine_api, f"/api/hitl/actions/{request.action_id}/cancel", {"reason": "Deal paused"})
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert post(engine_api, f"/api/hitl/actions/{request.action_id}/cancel").status_code == 409


# --- Idempotency-Key ------------------------------------------------------------------


def test_the_same_key_and_body_replays_the_first_response(api, make_reviewer, request_approval):
    request = request_approval("medium")
    as_person(api, make_reviewer("operator"))
    path = f"/api/hitl/actions/{request.action_id}/approve"
    first = post(api, path, {"reason": "ok"}, HTTP_IDEMPOTENCY_KEY="k-1")
    again = post(api, path, {"reason": "ok"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert DealEvent.objects.filter(event_type="hitl.approved").count() == 1
    assert post(api, path, {"reason": "ok"}).status_code == 409  # without the key it is a new attempt


def test_the_same_key_with_another_body_is_422(api, make_reviewer, request_approval):
    request = request_approval("medium")
    as_person(api, make_reviewer("operator"))
    path = f"/api/hitl/actions/{request.action_id}/reject"
    assert post(api, path, {"reason": "one"}, HTTP_IDEMPOTENCY_KEY="k-2").status_code == 200
    response = post(api, path, {"reason": "two"}, HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 422 and "different request" in response.json()["detail"]


def test_keys_are_per_caller_and_errors_are_not_stored(engine_api, request_approval, make_reviewer, api):
    body = {"action_id": "ACT-K", "action_type": "COMMUNICATION.DRAFT_EMAIL"}
    assert post(engine_api, REQUESTS, body, HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    other = api_token_create(user=service_account_ensure(name="second-engine"), name="t")[1]
    response = post(api, REQUESTS, {"action_id": "ACT-K2", "action_type": "X"}, HTTP_IDEMPOTENCY_KEY="same", HTTP_AUTHORIZATION=f"Bearer {other}")
    assert response.status_code == 201  # another caller's key space
    bad = post(engine_api, REQUESTS, {"action_type": "X"}, HTTP_IDEMPOTENCY_KEY="bad-1")
    assert bad.status_code == 400
    # A refused request stores nothing: the corrected one may use the same key.
    fixed = post(engine_api, REQUESTS, {"action_id": "ACT-K3", "action_type": "X"}, HTTP_IDEMPOTENCY_KEY="bad-1")
    assert fixed.status_code == 201


def test_an_overlong_key_is_400(engine_api):
    response = post(engine_api, REQUESTS, {"action_id": "A", "action_type": "X"}, HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400


def test_endpoints_are_in_the_schema(engine_api):
    paths = engine_api.get("/api/hitl/schema/").json()["paths"]
    for path in ("/api/hitl/approval-queue", "/api/hitl/approval-requests", "/api/hitl/actions/{action_id}/approval",
                 "/api/hitl/actions/{action_id}/approve", "/api/hitl/actions/{action_id}/reject",
                 "/api/hitl/actions/{action_id}/quarantine", "/api/hitl/actions/{action_id}/cancel"):
        assert path in paths, path
    assert reverse("api-approval-queue") == QUEUE


def test_a_role_change_reaches_a_token_caller_at_once(api, make_reviewer, request_approval):
    from accounts.services import operator_upsert

    person = make_reviewer("operator", "promoted@example.com")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=person, name='laptop')[1]}")
    request = request_approval("critical")
    assert post(api, f"/api/hitl/actions/{request.action_id}/approve").status_code == 403  # role now cached
    operator_upsert(email="promoted@example.com", role="admin")
    assert post(api, f"/api/hitl/actions/{request.action_id}/approve", {"reason": "Checked."}).status_code == 200
    operator_upsert(email="promoted@example.com", role="viewer")
    assert post(api, f"/api/hitl/actions/{request_approval('medium').action_id}/approve").status_code == 403
