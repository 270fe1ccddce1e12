"""The client against httpx.MockTransport: no server, every answer scripted."""

import asyncio
import json

import httpx
import pytest
from zakops_hitl_client import (
    AsyncHitlClient,
    BadRequest,
    Conflict,
    DecisionTimeout,
    Forbidden,
    HitlClient,
    NotFound,
    PayloadTooLarge,
    Retry,
    Unauthorized,
    Unavailable,
    ValidationError,
)

FAST = Retry(retries=3, base=0.001, cap=0.002)
PENDING = {"request_id": "r1", "action_id": "A-1", "state": "pending", "risk_level": "high", "score": 0.7,
           "reasons": ["LOI"], "requires_approval": True, "expires_at": "2999-01-01T00:00:00Z", "decided_by": None,
           "decided_by_name": "", "decided_at": None, "reason": ""}
APPROVED = {**PENDING, "state": "approved", "decided_by": "u-1", "decided_by_name": "Ana", "reason": "fine",
            "decided_at": "2026-12-03T08:00:00Z"}


def client_with(handler, **kwargs):
    return HitlClient("http://hitl.test/", "tok", retry=FAST, transport=httpx.MockTransport(handler), **kwargs)


def test_a_write_is_retried_after_connection_errors_and_503_under_one_key():
    seen = []

    def handler(request):
        seen.append((request.headers.get("Idempotency-Key"), request.content))
        if len(seen) == 1:
            raise httpx.ConnectError("refused", request=request)
        if len(seen) == 2:
            return httpx.Response(503, json={"detail": "The database is unavailable."})
        return httpx.Response(201, json=PENDING)

    with client_with(handler) as client:
        approval = client.request_approval("A-1", "DOCUMENT.GENERATE_LOI", {"template": "x"}, title="LOI")
    assert (approval.state, approval.created, approval.reasons) == ("pending", True, ["LOI"])
    keys = {key for key, _ in seen}
    assert len(seen) == 3 and len(keys) == 1 and None not in keys
    assert len({body for _, body in seen}) == 1
    assert json.loads(seen[0][1]) == {"action_id": "A-1", "action_type": "DOCUMENT.GENERATE_LOI",
                                      "inputs": {"template": "x"}, "title": "LOI"}


def test_two_logical_calls_carry_two_keys_and_the_token():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json=PENDING)

    with client_with(handler) as client:
        client.request_approval("A-1", "T", {})
        client.request_approval("A-1", "T", {})
    assert seen[0].headers["Idempotency-Key"] != seen[1].headers["Idempotency-Key"]
    assert seen[0].headers["Authorization"] == "Bearer tok"
    assert str(seen[0].url) == "http://hitl.test/api/hitl/approval-requests"


def test_503_after_every_retry_is_unavailable_with_the_servers_detail():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(503, json={"detail": "The database is unavailable."})

    with client_with(handler) as client, pytest.raises(Unavailable) as raised:
        client.assess_risk("EMAIL.SEND")
    assert raised.value.detail == "The database is unavailable."
    assert raised.value.status == 503 and len(calls) == 4
    assert "Idempotency-Key" not in calls[0].headers  # assess-risk writes nothing


@pytest.mark.parametrize(("status", "body", "kind"), [
    (400, {"detail": "action_type: This field is required.", "field": "action_type"}, BadRequest),
    (400, {"detail": "Invalid input.", "errors": {"action_type": ["required"]}}, ValidationError),
    (401, {"detail": "Authentication credentials were not provided."}, Unauthorized),
    (403, {"detail": "Only the engine opens approval requests."}, Forbidden),
    (404, {"detail": "Action A-1 has no approval request."}, NotFound),
    (409, {"detail": "Already approved.", "state": "approved"}, Conflict),
    (413, {"detail": "Request body too large."}, PayloadTooLarge),
])
def test_errors_are_exceptions_with_the_servers_detail_and_are_not_retried(status, body, kind):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(status, json=body)

    with client_with(handler) as client, pytest.raises(kind) as raised:
        client.cancel("A-1", "withdrawn")
    assert raised.value.detail == body["detail"] and raised.value.body == body and len(calls) == 1
    if kind is BadRequest:
        assert raised.value.field == "action_type"


def test_wait_for_decision_sends_the_etag_backs_off_and_returns_the_approved_inputs():
    polls, pauses = [], []

    def handler(request):
        if request.url.path == "/api/hitl/actions/A-1":
            return httpx.Response(200, json={"action_id": "A-1", "inputs": {"to": "edited@example.com"}})
        polls.append(request.headers.get("If-None-Match"))
        if len(polls) < 4:
            return httpx.Response(200, json=PENDING, headers={"ETag": '"v1"'}) if len(polls) == 1 else \
                httpx.Response(304, headers={"ETag": '"v1"'})
        return httpx.Response(200, json=APPROVED, headers={"ETag": '"v2"'})

    with client_with(handler) as client:
        import zakops_hitl_client.client as module
        original = module.time.sleep
        module.time.sleep = pauses.append
        try:
            decision = client.wait_for_decision("A-1", timeout=60, poll_interval=0.5)
        finally:
            module.time.sleep = original
    assert polls == [None, '"v1"', '"v1"', '"v1"']
    assert pauses == [0.5, 0.75, 1.125]  # backs off while the answer stays the same
    assert (decision.state, decision.approved, decision.decided_by, decision.reason) == ("approved", True, "Ana", "fine")
    assert decision.inputs == {"to": "edited@example.com"}


def test_wait_for_decision_works_without_etags_and_returns_a_rejection_without_inputs():
    answers = iter([PENDING, PENDING, {**APPROVED, "state": "rejected", "reason": "wrong buyer"}])
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json=next(answers))

    with client_with(handler) as client:
        decision = client.wait_for_decision("A-1", timeout=5, poll_interval=0.01)
    assert all("If-None-Match" not in r.headers for r in seen) and len(seen) == 3
    assert (decision.state, decision.inputs, decision.reason) == ("rejected", None, "wrong buyer")


def test_wait_for_decision_times_out_on_an_open_request():
    with client_with(lambda request: httpx.Response(200, json=PENDING)) as client, pytest.raises(DecisionTimeout):
        client.wait_for_decision("A-1", timeout=0.05, poll_interval=0.01)


def test_wait_for_decision_asks_afresh_at_the_deadline_and_returns_expired():
    seen = []
    soon = {**PENDING, "expires_at": "2000-01-01T00:00:00Z"}

    def handler(request):
        seen.append(request.headers.get("If-None-Match"))
        if len(seen) == 1:
            return httpx.Response(200, json=soon, headers={"ETag": '"v1"'})
        return httpx.Response(200, json={**soon, "state": "expired", "decided_by_name": "zakops-hitl"})

    with client_with(handler) as client:
        decision = client.wait_for_decision("A-1", timeout=5, poll_interval=1)
    assert seen == [None, None]
    assert (decision.state, decision.inputs, decision.decided_by) == ("expired", None, "zakops-hitl")


def test_checkpoints_save_latest_and_resume():
    def handler(request):
        path = request.url.path
        if path.endswith("/checkpoints") and request.method == "POST":
            body = json.loads(request.content)
            return httpx.Response(201, json={"checkpoint_id": "c1", "action_id": "A 1", "sequence_number": 0,
                                             "status": "active", **body})
        if path.endswith("/latest"):
            return httpx.Response(404, json={"detail": "Action A 1 has no active checkpoint."})
        return httpx.Response(200, json={"status": "resumed", "checkpoint_id": "c1", "resumed_by": "u"})

    with client_with(handler) as client:
        saved = client.save_checkpoint("A 1", "before_send", {"step": 2}, run_id=None)
        assert (saved.checkpoint_name, saved.checkpoint_data, saved.checkpoint_type) == ("before_send", {"step": 2}, "state")
        assert client.latest_checkpoint("A 1") is None
        assert client.resume_checkpoint("A 1", "c1").checkpoint_id == "c1"


def test_the_async_client_retries_under_one_key_and_reads_the_decision():
    keys = []

    async def run():
        def handler(request):
            if request.url.path.endswith("/approval-requests"):
                keys.append(request.headers["Idempotency-Key"])
                if len(keys) == 1:
                    raise httpx.ReadError("reset", request=request)
                return httpx.Response(200, json=PENDING)
            if request.url.path.endswith("/approval"):
                return httpx.Response(200, json={**APPROVED, "state": "cancelled"})
            raise AssertionError(request.url)

        async with AsyncHitlClient("http://hitl.test", "tok", retry=FAST, transport=httpx.MockTransport(handler)) as client:
            approval = await client.request_approval("A-1", "T", {})
            decision = await client.wait_for_decision("A-1", timeout=5)
            return approval, decision

    approval, decision = asyncio.run(run())
    assert approval.created is False and len(keys) == 2 and keys[0] == keys[1]
    assert (decision.state, decision.inputs) == ("cancelled", None)
