"""Exactly one decision wins, under real concurrency: threads on separate PostgreSQL
connections, released together."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_token_create
from approvals.models import ApprovalRequest
from approvals.services.expiry import approvals_expire
from tests.conftest import run_at_once
from zakops.models import Action, DealEvent, OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
THREADS = 20


@pytest.fixture
def reviewer_tokens(make_reviewer):
    """Twenty eligible reviewers (operators), each with a token."""
    return [api_token_create(user=make_reviewer("operator", f"op{i}@example.com"), name="t")[1] for i in range(THREADS)]


def decide(token, action_id, decision):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post(
        f"/api/hitl/actions/{action_id}/{decision}", json.dumps({"reason": f"{decision} it"}), content_type="application/json"
    )
    return decision, response.status_code, response.json()


def decision_events(action_id):
    return list(
        DealEvent.objects.filter(details__action_id=action_id)
        .exclude(event_type="hitl.approval_requested")
        .values_list("event_type", flat=True)
    )


def test_twenty_reviewers_deciding_one_action_at_once_one_wins(reviewer_tokens, request_approval):
    for _ in range(8):  # many actions: one lucky ordering proves nothing
        action_id = request_approval("medium").action_id
        results = run_at_once(
            THREADS, lambda i: decide(reviewer_tokens[i], action_id, "approve" if i % 2 else "reject")
        )
        assert not [r for r in results if isinstance(r, Exception)], results
        statuses = sorted(status for _, status, _ in results)
        assert statuses == [200] + [409] * (THREADS - 1)
        winner = next(decision for decision, status, _ in results if status == 200)
        state = {"approve": "approved", "reject": "rejected"}[winner]
        losers = [body for _, status, body in results if status == 409]
        assert {body["state"] for body in losers} == {state}  # every loser is told what won

        assert decision_events(action_id) == [f"hitl.{state}"]
        assert OutboxEvent.objects.filter(aggregate_id=action_id).exclude(event_type="hitl.approval_requested").count() == 1
        assert ApprovalRequest.objects.get(action_id=action_id).state == state
        assert Action.objects.get(pk=action_id).status == {"approved": "QUEUED", "rejected": "REJECTED"}[state]


def test_sweeps_racing_each_other_expire_each_request_once(request_approval):
    requests = [request_approval("medium") for _ in range(10)]
    ApprovalRequest.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    counts = run_at_once(6, lambda i: approvals_expire())
    assert not [c for c in counts if isinstance(c, Exception)], counts
    assert sum(counts) == 10
    for request in requests:
        assert decision_events(request.action_id) == ["hitl.expired"]
        assert Action.objects.get(pk=request.action_id).status == "REJECTED"
    assert approvals_expire() == 0


def test_a_sweep_racing_reviewers_leaves_exactly_one_outcome(reviewer_tokens, request_approval):
    for _ in range(5):
        request = request_approval("medium")
        ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() + timedelta(milliseconds=200))

        def work(i):
            if i == 0:
                import time

                time.sleep(0.2)
                return approvals_expire()
            return decide(reviewer_tokens[i], request.action_id, "approve")

        run_at_once(6, work)
        # A sweep skips an action a reviewer holds at that instant, and a reviewer who got
        # the lock after the deadline is refused: then the next sweep (a minute later in
        # production) expires it. Either way exactly one outcome, never two.
        approvals_expire()
        outcome = decision_events(request.action_id)
        assert len(outcome) == 1, outcome
        state = ApprovalRequest.objects.get(pk=request.pk).state
        assert outcome == [{"approved": "hitl.approved", "expired": "hitl.expired"}[state]]


def test_the_same_idempotency_key_at_once_runs_once_and_replays(reviewer_tokens, request_approval):
    action_id = request_approval("medium").action_id
    token = reviewer_tokens[0]

    def work(i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = client.post(
            f"/api/hitl/actions/{action_id}/approve", json.dumps({"reason": "ok"}),
            content_type="application/json", HTTP_IDEMPOTENCY_KEY="retry-1",
        )
        return response.status_code, response.json()

    results = run_at_once(5, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert {status for status, _ in results} == {200}
    assert len({json.dumps(body, sort_keys=True) for _, body in results}) == 1
    assert decision_events(action_id) == ["hitl.approved"]
