"""A request past its deadline is expired for everyone at once (SPEC §3): the engine's
poll, the queue and decisions, whether or not the sweep has run yet."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import QUEUE_CHANNEL, ApprovalRequest
from approvals.services.expiry import approvals_expire
from common.changes import feed
from zakops.models import Action

pytestmark = pytest.mark.django_db


def overdue(request):
    deadline = timezone.now() - timedelta(seconds=1)
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=deadline)
    # What the table's trigger tells every process on commit, which the test's transaction
    # never reaches: the polls of this action are read again.
    feed.announce(QUEUE_CHANNEL, key=request.action_id)
    return deadline


def test_the_poll_says_expired_the_moment_the_deadline_passes(engine_api, request_approval):
    request = request_approval("high")
    path = f"/api/hitl/actions/{request.action_id}/approval"
    assert engine_api.get(path).json()["state"] == "pending"
    overdue(request)

    before_sweep = engine_api.get(path).json()
    assert (before_sweep["state"], before_sweep["decided_by_name"]) == ("expired", "zakops-hitl")
    assert before_sweep["decided_at"] == before_sweep["expires_at"]
    assert before_sweep["reason"] == "No decision before the request expired."
    assert Action.objects.get(pk=request.action_id).status == "PENDING_APPROVAL"  # never QUEUED: it does not run

    assert approvals_expire() == 1
    after_sweep = engine_api.get(path).json()
    assert after_sweep == before_sweep  # the sweep records what the poll already said
    assert Action.objects.get(pk=request.action_id).status == "REJECTED"


def test_the_queue_shows_an_overdue_request_as_expired(engine_api, request_approval):
    request = request_approval("medium")
    overdue(request)
    [item] = engine_api.get("/api/hitl/approval-queue").json()
    assert (item["action_id"], item["state"]) == (request.action_id, "expired")


@pytest.mark.parametrize("path", ["approve", "reject", "quarantine"])
def test_decisions_after_the_deadline_are_409_expired(api, make_reviewer, request_approval, path):
    request = request_approval("medium")
    overdue(request)
    api.force_login(make_reviewer("admin"))
    response = api.post(f"/api/hitl/actions/{request.action_id}/{path}", json.dumps({"reason": "late"}), content_type="application/json")
    assert response.status_code == 409
    assert response.json()["state"] == "expired" and "expired" in response.json()["detail"]
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"  # the sweep records it


def test_the_engine_can_not_cancel_an_expired_request(engine_api, request_approval):
    request = request_approval("medium")
    overdue(request)
    response = engine_api.post(f"/api/hitl/actions/{request.action_id}/cancel")
    assert response.status_code == 409 and response.json()["state"] == "expired"


def test_a_repeated_request_for_an_overdue_one_reads_as_expired(engine_api, request_approval):
    request = request_approval("medium")
    overdue(request)
    response = engine_api.post(
        "/api/hitl/approval-requests", json.dumps({"action_id": request.action_id, "action_type": "COMMUNICATION.DRAFT_EMAIL"}),
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["state"] == "expired"
