"""The engine's own pending actions (SPEC §3): an action the engine set to
PENDING_APPROVAL by itself, with no request, is adopted, then decided, shown and expired
like any other. The first decision adopts it, and so does `hitl_sweep`."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_token_create
from approvals.models import ApprovalRequest
from approvals.services.decisions import approval_decide
from approvals.services.expiry import approvals_expire
from approvals.services.requests import approvals_adopt_pending
from tests.conftest import run_at_once
from zakops.models import Action, DealEvent, OutboxEvent


def legacy_action(action_id="ACT-L1", action_type="DOCUMENT.GENERATE_LOI", **fields):
    """What the backend's engine writes when it holds an action for approval itself."""
    now = timezone.now()
    fields = {"status": "PENDING_APPROVAL", "inputs": {}, "created_by": "agent:deal-assistant", "created_at": now, "updated_at": now, **fields}
    return Action.objects.create(action_id=action_id, action_type=action_type, **fields)


def events(action_id):
    return list(DealEvent.objects.filter(details__action_id=action_id).order_by("sequence_number").values_list("event_type", flat=True))


@pytest.mark.django_db
def test_the_first_decision_adopts_the_action_and_decides_it(api, make_reviewer, engine_api):
    legacy_action()
    queue = engine_api.get("/api/hitl/approval-queue").json()
    assert [(item["action_id"], item["request_id"]) for item in queue] == [("ACT-L1", None)]

    api.force_login(make_reviewer("operator"))
    response = api.post("/api/hitl/actions/ACT-L1/approve", json.dumps({"reason": "Template is standard"}), content_type="application/json")
    assert response.status_code == 200 and response.json()["status"] == "approved"

    request = ApprovalRequest.objects.get(action_id="ACT-L1")
    assert (request.round, request.state, request.risk_level, request.requested_via) == (1, "approved", "high", "zakops-hitl")
    assert request.requested_by == "agent:deal-assistant"
    assert events("ACT-L1") == ["hitl.approval_requested", "hitl.approved"]
    assert OutboxEvent.objects.filter(aggregate_id="ACT-L1").count() == 2
    assert Action.objects.get(pk="ACT-L1").status == "QUEUED"
    assert engine_api.get("/api/hitl/actions/ACT-L1/approval").json()["state"] == "approved"


@pytest.mark.django_db
def test_a_refused_decision_adopts_nothing(api, make_reviewer):
    legacy_action(action_type="COMMUNICATION.SEND_EMAIL", inputs={"to": "cfo@seller.example"})  # critical
    api.force_login(make_reviewer("operator"))
    response = api.post("/api/hitl/actions/ACT-L1/approve", json.dumps({}), content_type="application/json")
    assert response.status_code == 403 and "critical" in response.json()["detail"]
    assert not ApprovalRequest.objects.exists() and not DealEvent.objects.exists()


@pytest.mark.django_db
def test_the_sweep_adopts_them_and_they_expire(capsys):
    legacy_action()
    legacy_action("ACT-L2", "DEAL.GET_DETAILS")  # the rules would wave this through: the engine held it, a person decides
    Action.objects.create(action_id="ACT-Q", action_type="DEAL.GET_DETAILS", status="QUEUED")
    call_command("hitl_sweep")
    assert "2 opened for actions the engine held by itself" in capsys.readouterr().out

    adopted = {r.action_id: r for r in ApprovalRequest.objects.all()}
    assert set(adopted) == {"ACT-L1", "ACT-L2"}
    assert adopted["ACT-L2"].state == "pending" and adopted["ACT-L2"].requires_approval
    assert "a person decides" in adopted["ACT-L2"].reasons[-1]
    assert Action.objects.get(pk="ACT-L2").status == "PENDING_APPROVAL"
    assert approvals_adopt_pending() == 0  # once

    later = timezone.now() + timedelta(hours=25)
    assert approvals_expire(now=later) == 2
    assert set(Action.objects.filter(pk__in=adopted).values_list("status", flat=True)) == {"REJECTED"}
    assert events("ACT-L1") == ["hitl.approval_requested", "hitl.expired"]


@pytest.mark.django_db
def test_an_action_the_engine_held_again_after_a_decision_gets_a_new_round(people):
    legacy_action()
    approval_decide(action_id="ACT-L1", actor=people["operator"], decision="reject", reason="Wrong template")
    Action.objects.filter(pk="ACT-L1").update(status="PENDING_APPROVAL")  # the engine's own flow, again
    approved = approval_decide(action_id="ACT-L1", actor=people["operator"], decision="approve")
    assert (approved.round, approved.state) == (2, "approved")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_reviewers_and_sweeps_adopting_one_action_at_once_give_one_request_and_one_decision(make_reviewer):
    tokens = [api_token_create(user=make_reviewer("operator", f"op{i}@example.com"), name="t")[1] for i in range(10)]

    def work(i):
        if i >= len(tokens):
            return ("sweep", approvals_adopt_pending())
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[i]}")
        return ("decide", client.post(f"/api/hitl/actions/{action_id}/approve", "{}", content_type="application/json").status_code)

    for round_number in range(5):
        action_id = f"ACT-RACE-{round_number}"
        legacy_action(action_id)
        results = run_at_once(14, work)
        assert not [r for r in results if isinstance(r, Exception)], results
        statuses = sorted(status for kind, status in results if kind == "decide")
        assert statuses == [200] + [409] * 9, statuses
        assert ApprovalRequest.objects.filter(action_id=action_id).count() == 1
        assert events(action_id) == ["hitl.approval_requested", "hitl.approved"]
        assert OutboxEvent.objects.filter(aggregate_id=action_id).count() == 2
        assert Action.objects.get(pk=action_id).status == "QUEUED"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_polls_and_sweeps_adopting_one_action_at_once_give_one_request(service_token):
    """The engine polls the action it held (several workers at once) while sweeps run:
    every poll answers the one request opened for it."""

    def work(i):
        if i >= 8:
            return ("sweep", approvals_adopt_pending())
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {service_token}")
        response = client.get(f"/api/hitl/actions/{action_id}/approval")
        return ("poll", response.status_code, response.json().get("state"), response.json().get("request_id"))

    for round_number in range(5):
        action_id = f"ACT-POLL-RACE-{round_number}"
        legacy_action(action_id)
        results = run_at_once(10, work)
        assert not [r for r in results if isinstance(r, Exception)], results
        polls = [r[1:] for r in results if r[0] == "poll"]
        only = ApprovalRequest.objects.get(action_id=action_id)  # exactly one
        assert polls == [(200, "pending", str(only.id))] * 8, polls
        assert sum(r[1] for r in results if r[0] == "sweep") in (0, 1)
        assert events(action_id) == ["hitl.approval_requested"]
        assert OutboxEvent.objects.filter(aggregate_id=action_id).count() == 1
