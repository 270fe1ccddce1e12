"""Approving a critical or quarantined request needs a reason, like a reject: the same
rule and the same message through every door (the page's row and panel, the bulk page, the
API's approve and its batch), and the reason is recorded with the vote."""

import json

import pytest
from rest_framework.test import APIClient

from accounts.services import api_token_create
from approvals.models import ApprovalRequest, ApprovalVote
from approvals.services.decisions import approval_decide
from common.errors import InvalidInput
from zakops.models import DealEvent

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
NEEDS_REASON = "reason: a reason is required to approve a critical request"


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, name='laptop')[1]}")
    return client


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


@pytest.fixture
def admin(make_reviewer):
    return make_reviewer("admin", "ada@example.com")


def test_the_service_refuses_a_critical_or_quarantined_approval_without_a_reason(request_approval, people):
    critical = request_approval("critical")
    for blank in ("", "   "):
        with pytest.raises(InvalidInput, match=NEEDS_REASON) as refused:
            approval_decide(action_id=critical.action_id, actor=people["admin"], decision="approve", reason=blank)
        assert refused.value.extra == {"field": "reason"}
    assert ApprovalRequest.objects.get(pk=critical.pk).votes == []

    vote = approval_decide(action_id=critical.action_id, actor=people["admin"], decision="approve", reason="CFO confirmed by phone.")
    assert vote.state == "pending"
    assert ApprovalVote.objects.get(request=critical).reason == "CFO confirmed by phone."
    [event] = DealEvent.objects.filter(event_type="hitl.approval_vote", details__action_id=critical.action_id)
    assert event.details["reason"] == "CFO confirmed by phone."

    medium = request_approval("medium")  # below critical the reason stays optional
    assert approval_decide(action_id=medium.action_id, actor=people["operator"], decision="approve").state == "approved"


def test_the_api_answers_400_naming_reason(request_approval, admin):
    critical = request_approval("critical")
    response = post(api_as(admin), f"/api/hitl/actions/{critical.action_id}/approve", {})
    assert response.status_code == 400
    assert response.json()["detail"].startswith(NEEDS_REASON)
    assert response.json()["field"] == "reason"
    assert ApprovalRequest.objects.get(pk=critical.pk).votes == []
    ok = post(api_as(admin), f"/api/hitl/actions/{critical.action_id}/approve", {"reason": "Checked the recipient."})
    assert ok.status_code == 200 and ok.json()["status"] == "pending" and ok.json()["reason"] == "Checked the recipient."


def test_the_bulk_api_refuses_that_row_alone(request_approval, admin):
    critical, medium = request_approval("critical"), request_approval("medium")
    response = post(api_as(admin), "/api/hitl/decisions", {"decisions": [
        {"action_id": critical.action_id, "decision": "approve"},
        {"action_id": medium.action_id, "decision": "approve"},
    ]})
    assert response.status_code == 200
    outcomes = {o["action_id"]: o for o in response.json()["outcomes"]}
    assert outcomes[critical.action_id]["outcome"] == "refused"
    assert outcomes[critical.action_id]["detail"].startswith(NEEDS_REASON)
    assert outcomes[medium.action_id]["state"] == "approved"


def test_the_pages_refuse_it_and_say_why(client, request_approval, people, admin):
    critical = request_approval("critical")
    quarantined = request_approval("high")
    approval_decide(action_id=quarantined.action_id, actor=people["operator"], decision="quarantine", reason="Odd price.")
    client.force_login(admin)

    row = client.post(f"/actions/{critical.action_id}/decide", {"decision": "approve", "where": "row"}, **HX)
    assert row["HX-Reswap"] == "none" and NEEDS_REASON in row.content.decode()
    panel = client.post(f"/actions/{quarantined.action_id}/decide", {"decision": "approve"}, **HX).content.decode()
    assert "reason: a reason is required to approve a quarantined request" in panel
    bulk = client.post("/decisions/bulk", {"decision": "approve", "action_ids": [critical.action_id]}, **HX).content.decode()
    assert 'data-outcome="refused"' in bulk and NEEDS_REASON in bulk
    assert ApprovalRequest.objects.get(pk=critical.pk).votes == []
    assert ApprovalRequest.objects.get(pk=quarantined.pk).state == "quarantined"


def test_the_queue_row_tells_the_dialog_that_a_reason_is_needed(client, request_approval, admin):
    critical, medium = request_approval("critical"), request_approval("medium")
    client.force_login(admin)
    html = client.get("/").content.decode()
    assert f'data-action-id="{critical.action_id}"' in html
    rows = {match.split('data-action-id="')[1].split('"')[0]: match for match in html.split("<tr ")[1:] if "data-action-id" in match}
    assert 'data-approve-reason="critical"' in rows[critical.action_id]
    assert "data-approve-reason" not in rows[medium.action_id]
