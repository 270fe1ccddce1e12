from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from zakops.catalogue import ACTION_CATALOGUE
from zakops.models import Action, Deal, Operator

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts():
    from approvals.models import ApprovalRequest
    from zakops.models import DealEvent, ExecutionCheckpoint

    return (
        Deal.objects.count(), Action.objects.count(), Operator.objects.count(), ApprovalRequest.objects.count(),
        ExecutionCheckpoint.objects.count(), DealEvent.objects.count(),
    )


def test_seed_demo_is_idempotent_and_covers_the_catalogue():
    seed()
    first = counts()
    seed()
    assert counts() == first
    assert set(Action.objects.values_list("action_type", flat=True)) == {e.action_type for e in ACTION_CATALOGUE}
    assert Action.objects.values("status").distinct().count() >= 4
    assert Action.objects.filter(status="PENDING_APPROVAL").exists()
    assert Deal.objects.filter(stage="closed").exists()


def test_seed_demo_has_requests_in_every_state_a_reviewer_meets_and_checkpoints():
    from approvals.models import ApprovalRequest
    from zakops.models import ExecutionCheckpoint

    seed()
    states = set(ApprovalRequest.objects.values_list("state", flat=True))
    assert {"pending", "quarantined", "approved", "rejected"} <= states
    assert set(ApprovalRequest.objects.filter(state="pending").values_list("risk_level", flat=True)) >= {"critical", "high", "medium"}
    for request in ApprovalRequest.objects.select_related("action"):
        expected = {"pending": "PENDING_APPROVAL", "quarantined": "PENDING_APPROVAL", "approved": "QUEUED", "rejected": "REJECTED"}
        assert request.action.status == expected[request.state]
    assert {"active", "resumed", "expired"} <= set(ExecutionCheckpoint.objects.values_list("status", flat=True))


def test_seed_demo_prints_passwords_that_sign_in(client):
    output = seed()
    line = next(line for line in output.splitlines() if "operator@zakops.demo" in line)
    password = line.split("password ")[1].strip()
    response = client.post(reverse("login"), {"username": "operator@zakops.demo", "password": password})
    assert response.status_code == 302
    assert seed().count(password) == 1  # same password on the next run
