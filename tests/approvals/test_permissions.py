"""Who may decide (SPEC §3): every decision endpoint × every kind of caller × every kind
of request. Only the allowed cells succeed, and a refused one changes nothing."""

import json

import pytest
from rest_framework.test import APIClient

from accounts.selectors import actor_of
from accounts.services import api_token_create, service_account_ensure
from approvals.models import ApprovalRequest
from approvals.services.decisions import approval_decide
from zakops.models import Action, DealEvent

pytestmark = pytest.mark.django_db
REQUESTER = "rita@example.com"  # an admin who asked for the action herself

ALLOWED = {
    # (endpoint, caller, request) -> status; every other cell below is refused.
    ("approve", "operator", "medium"): 200,
    ("approve", "admin", "medium"): 200,
    ("approve", "admin", "critical"): 200,
    ("approve", "admin", "quarantined"): 200,
    ("reject", "operator", "medium"): 200,
    ("reject", "admin", "medium"): 200,
    ("reject", "admin", "critical"): 200,
    ("reject", "admin", "quarantined"): 200,
    ("quarantine", "operator", "medium"): 200,
    ("quarantine", "admin", "medium"): 200,
    ("quarantine", "admin", "critical"): 200,
}


def expected_status(endpoint, caller, kind):
    if caller == "anonymous":
        return 401
    if (endpoint, caller, kind) in ALLOWED:
        return 200
    if endpoint == "quarantine" and kind == "quarantined" and caller in ("operator", "admin", "requester"):
        return 409  # already quarantined: a state conflict, not a permission
    return 403


@pytest.fixture
def callers(make_reviewer):
    service = service_account_ensure(name="action-engine")
    return {
        "viewer": make_reviewer("viewer", "vic@example.com"),
        "operator": make_reviewer("operator", "olu@example.com"),
        "admin": make_reviewer("admin", "ada@example.com"),
        "requester": make_reviewer("admin", REQUESTER),
        "service": service,
        "escalator": make_reviewer("admin", "esc@example.com"),
    }


def client_for(caller, users):
    client = APIClient()
    if caller == "service":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=users['service'], name='t')[1]}")
    elif caller != "anonymous":
        client.force_login(users[caller])
    return client


@pytest.mark.parametrize("kind", ["medium", "critical", "quarantined"])
@pytest.mark.parametrize("caller", ["anonymous", "viewer", "operator", "admin", "service", "requester"])
@pytest.mark.parametrize("endpoint", ["approve", "reject", "quarantine"])
def test_permission_matrix(endpoint, caller, kind, callers, request_approval):
    request = request_approval("critical" if kind == "critical" else "medium", requested_by=REQUESTER)
    if kind == "quarantined":
        approval_decide(action_id=request.action_id, actor=actor_of(callers["escalator"]), decision="quarantine", reason="look")
    before_state = ApprovalRequest.objects.get(pk=request.pk).state
    before_events = DealEvent.objects.count()

    response = client_for(caller, callers).post(
        f"/api/hitl/actions/{request.action_id}/{endpoint}", json.dumps({"reason": "checked"}), content_type="application/json"
    )

    assert response.status_code == expected_status(endpoint, caller, kind), response.json()
    assert response.json().get("detail") or response.status_code == 200
    after = ApprovalRequest.objects.get(pk=request.pk)
    if response.status_code == 200 and (endpoint, kind) == ("approve", "critical"):
        # A critical request needs two admins: the first approval is a vote, one event.
        assert after.state == response.json()["status"] == "pending"
        assert after.votes[0]["name"] == callers[caller].email
        assert DealEvent.objects.count() == before_events + 1
    elif response.status_code == 200:
        assert after.state == {"approve": "approved", "reject": "rejected", "quarantine": "quarantined"}[endpoint]
        assert DealEvent.objects.count() == before_events + 1
    else:
        assert after.state == before_state
        assert DealEvent.objects.count() == before_events
        assert Action.objects.get(pk=request.action_id).status == "PENDING_APPROVAL"


@pytest.mark.parametrize(
    ("caller", "kind", "words"),
    [
        ("viewer", "medium", "Viewers can not decide"),
        ("service", "medium", "Service accounts can not decide"),
        ("operator", "critical", "Only an admin can decide a critical request"),
        ("operator", "quarantined", "Only an admin can decide a quarantined request"),
        ("requester", "medium", "four-eyes"),
    ],
)
def test_a_refusal_says_which_rule_refused(caller, kind, words, callers, request_approval):
    request = request_approval("critical" if kind == "critical" else "medium", requested_by=REQUESTER)
    if kind == "quarantined":
        approval_decide(action_id=request.action_id, actor=actor_of(callers["escalator"]), decision="quarantine", reason="look")
    response = client_for(caller, callers).post(f"/api/hitl/actions/{request.action_id}/approve")
    assert response.status_code == 403
    assert words in response.json()["detail"]


def test_the_requester_is_recognised_by_operator_id_too(callers, request_approval):
    rita_id = str(callers["requester"].account.actor_id)
    request = request_approval("medium", requested_by=rita_id)
    response = client_for("requester", callers).post(f"/api/hitl/actions/{request.action_id}/approve")
    assert response.status_code == 403 and "four-eyes" in response.json()["detail"]
