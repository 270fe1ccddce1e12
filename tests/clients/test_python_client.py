"""The Python client (clients/python) against the app served on loopback: what the engine
sees when it opens a request, waits for a person, saves and resumes checkpoints, and
when it is refused."""

import asyncio
import threading

import httpx
import pytest
from django.db import connection
from zakops_hitl_client import (
    AsyncHitlClient,
    BadRequest,
    Conflict,
    Forbidden,
    HitlClient,
    NotFound,
    PayloadTooLarge,
    Retry,
)

from accounts.services import api_token_create, operator_upsert
from approvals.models import ApprovalRequest
from approvals.services.decisions import approval_decide
from zakops.models import ExecutionCheckpoint

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def closing(work):
    """`work` for another thread: its database connection closed when done, so that the
    test database can be dropped."""
    def run(*args, **kwargs):
        try:
            return work(*args, **kwargs)
        finally:
            connection.close()
    return run


def later(seconds, work):
    timer = threading.Timer(seconds, closing(work))
    timer.start()
    return timer


def test_the_engine_waits_for_a_reviewer_and_gets_the_inputs_as_edited(hitl, admins):
    assessment = hitl.assess_risk("DOCUMENT.GENERATE_LOI", {"template": "standard"})
    assert (assessment.level, assessment.needs_person) == ("high", True)

    opened = hitl.request_approval("ACT-CLIENT-1", "DOCUMENT.GENERATE_LOI", {"template": "standard"}, title="LOI",
                                   requested_by="ana@example.com")
    assert (opened.created, opened.state, opened.risk_level) == (True, "pending", "high")
    again = hitl.request_approval("ACT-CLIENT-1", "DOCUMENT.GENERATE_LOI", {"template": "standard"})
    assert (again.created, again.request_id) == (False, opened.request_id)

    timer = later(0.5, lambda: approval_decide(
        action_id="ACT-CLIENT-1", actor=admins["olu"], decision="approve", reason="ok", inputs={"template": "short"},
    ))
    decision = hitl.wait_for_decision("ACT-CLIENT-1", timeout=20, poll_interval=0.1)
    timer.join()
    assert (decision.state, decision.approved, decision.inputs) == ("approved", True, {"template": "short"})
    assert (decision.reason, decision.decided_by) == ("ok", "olu@example.com")
    assert ApprovalRequest.objects.filter(action_id="ACT-CLIENT-1").count() == 1


def test_a_rejection_reaches_the_engine_with_its_reason_and_no_inputs(hitl, admins):
    hitl.request_approval("ACT-CLIENT-2", "COMMUNICATION.DRAFT_EMAIL", {"subject": "Hi"})
    approval_decide(action_id="ACT-CLIENT-2", actor=admins["olu"], decision="reject", reason="wrong buyer")
    decision = hitl.wait_for_decision("ACT-CLIENT-2", timeout=10)
    assert (decision.state, decision.inputs, decision.reason) == ("rejected", None, "wrong buyer")
    assert hitl.get_approval("ACT-CLIENT-2").state == "rejected"


def test_a_lost_answer_is_retried_under_the_same_key_and_opens_one_request(live_server, engine_token):
    sent = []

    class LoseFirstAnswer(httpx.HTTPTransport):
        def handle_request(self, request):
            response = super().handle_request(request)
            sent.append(request.headers.get("Idempotency-Key"))
            if len(sent) == 1:
                response.read()
                raise httpx.ReadError("connection reset", request=request)  # the server did the work
            return response

    with HitlClient(live_server.url, engine_token, retry=Retry(base=0.01), transport=LoseFirstAnswer()) as client:
        approval = client.request_approval("ACT-CLIENT-3", "DOCUMENT.GENERATE_LOI", {"template": "standard"})
    assert approval.created is True  # the first answer, replayed
    assert len(sent) == 2 and sent[0] == sent[1]
    assert ApprovalRequest.objects.filter(action_id="ACT-CLIENT-3").count() == 1


def test_refusals_are_exceptions_with_the_servers_detail(hitl, live_server, settings):
    with pytest.raises(NotFound) as missing:
        hitl.get_approval("ACT-NOBODY")
    assert missing.value.detail == "Action ACT-NOBODY has no approval request."

    with pytest.raises(BadRequest) as bad:
        hitl.assess_risk("X" * 101)
    assert bad.value.status == 400 and "action_type" in str(bad.value.body)

    person_token = api_token_create(user=operator_upsert(email="pat@example.com", role="admin", name="Pat"), name="p")[1]
    with HitlClient(live_server.url, person_token, timeout=10) as person, pytest.raises(Forbidden) as refused:
        person.request_approval("ACT-CLIENT-4", "DOCUMENT.GENERATE_LOI", {})
    assert "engine" in refused.value.detail or "service" in refused.value.detail

    hitl.request_approval("ACT-CLIENT-5", "DOCUMENT.GENERATE_LOI", {"template": "standard"})
    saved = hitl.save_checkpoint("ACT-CLIENT-5", "before_send", {"step": 2})
    assert hitl.latest_checkpoint("ACT-CLIENT-5").checkpoint_id == saved.checkpoint_id
    assert hitl.resume_checkpoint("ACT-CLIENT-5", saved.checkpoint_id).checkpoint_id == saved.checkpoint_id
    with pytest.raises(Conflict) as twice:
        hitl.resume_checkpoint("ACT-CLIENT-5", saved.checkpoint_id)
    assert twice.value.status == 409 and twice.value.detail
    assert hitl.latest_checkpoint("ACT-CLIENT-5") is None
    assert ExecutionCheckpoint.objects.get(pk=saved.checkpoint_id).status == "resumed"

    settings.HITL_CHECKPOINT_MAX_BYTES = 1024
    with pytest.raises(PayloadTooLarge) as large:
        hitl.save_checkpoint("ACT-CLIENT-5", "big", {"blob": "x" * 4096})
    assert large.value.status == 413 and large.value.detail


def test_the_async_client_does_the_same(live_server, engine_token, admins):
    async def engine():
        async with AsyncHitlClient(live_server.url, engine_token) as client:
            opened = await client.request_approval("ACT-CLIENT-6", "COMMUNICATION.DRAFT_EMAIL", {"subject": "Hi"})
            await asyncio.to_thread(
                closing(approval_decide), action_id="ACT-CLIENT-6", actor=admins["olu"], decision="approve", reason="",
                inputs={"subject": "Hello"},
            )
            return opened, await client.wait_for_decision("ACT-CLIENT-6", timeout=10, poll_interval=0.1)

    opened, decision = asyncio.run(engine())
    assert (opened.created, opened.state) == (True, "pending")
    assert (decision.state, decision.inputs, decision.decided_by) == ("approved", {"subject": "Hello"}, "olu@example.com")
