from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from operations.demo import DEMO_DEALS, DEMO_SERVICE_ACCOUNT
from zakops.catalogue import ACTION_CATALOGUE
from zakops.models import Action, Deal, Operator

pytestmark = pytest.mark.django_db


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
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
    line = next(line for line in output.splitlines() if "operator@operations.demo" in line)
    password = line.split("password ")[1].strip()
    response = client.post(reverse("login"), {"username": "operator@operations.demo", "password": password})
    assert response.status_code == 302
    assert seed().count(password) == 1  # same password on the next run


def snapshot() -> dict:
    """Every row the demo could write, as plain values."""
    from django.contrib.auth import get_user_model

    from accounts.models import Account, ApiToken
    from approvals.models import ApprovalRequest
    from zakops.models import DealEvent, ExecutionCheckpoint, OutboxEvent

    tables = {
        "deals": Deal.objects.order_by("pk"),
        "actions": Action.objects.order_by("pk"),
        "operators": Operator.objects.order_by("pk"),
        "requests": ApprovalRequest.objects.order_by("pk"),
        "checkpoints": ExecutionCheckpoint.objects.order_by("pk"),
        "events": DealEvent.objects.order_by("pk"),
        "outbox": OutboxEvent.objects.order_by("pk"),
        "users": get_user_model().objects.order_by("pk"),
        "accounts": Account.objects.order_by("pk"),
        "tokens": ApiToken.objects.order_by("pk"),
    }
    rows = {name: list(queryset.values()) for name, queryset in tables.items()}
    rows["groups"] = list(get_user_model().groups.through.objects.order_by("pk").values())
    return rows


REAL_ACTION = "ACT-20260119T101500-1a2b3c4d"


def real_rows(*, deal: bool = True, action: bool = True) -> None:
    if deal:
        Deal.objects.create(deal_id="DL-0001", canonical_name="Northwind Traders Inc", display_name="Northwind", stage="loi")
    if action:
        Action.objects.create(
            action_id=REAL_ACTION, deal_id="DL-0001" if deal else None, action_type="COMMUNICATION.SEND_EMAIL",
            status="PENDING_APPROVAL", inputs={"to": "ceo@northwind.example"}, audit_trail=[],
        )


@pytest.mark.parametrize(
    ("deal", "action", "named"),
    [(True, True, ["DL-0001", REAL_ACTION]), (True, False, ["DL-0001"]), (False, True, [REAL_ACTION])],
    ids=["deal-and-action", "deal-only", "action-only"],
)
def test_seed_demo_refuses_a_database_with_real_deals_or_actions_and_writes_nothing(deal, action, named):
    real_rows(deal=deal, action=action)
    before = snapshot()
    with pytest.raises(CommandError) as refused:
        seed()
    message = str(refused.value)
    assert "--force" in message
    for row_id in named:
        assert row_id in message
    assert snapshot() == before


def test_seed_demo_with_force_seeds_beside_real_rows_and_leaves_them_untouched():
    real_rows()
    deal_before = Deal.objects.filter(pk="DL-0001").values().get()
    action_before = Action.objects.filter(pk=REAL_ACTION).values().get()
    output = seed("--force")
    assert Deal.objects.filter(pk="DL-0001").values().get() == deal_before
    assert Action.objects.filter(pk=REAL_ACTION).values().get() == action_before
    assert Deal.objects.filter(deal_id__startswith="DEMO-").count() == len(DEMO_DEALS)
    assert Action.objects.filter(action_id__startswith="ACT-DEMO-").count() == 2 * len(ACTION_CATALOGUE)
    assert f"Demo data: {len(DEMO_DEALS)} deals" in output


def test_demo_ids_can_not_be_real_ones_and_a_second_run_changes_nothing():
    first_output = seed()
    deal_ids = list(Deal.objects.values_list("deal_id", flat=True))
    assert deal_ids and all(deal_id.startswith("DEMO-") for deal_id in deal_ids)
    assert all(action_id.startswith("ACT-DEMO-") for action_id in Action.objects.values_list("action_id", flat=True))
    assert all(email.endswith("@operations.demo") for email in Operator.objects.values_list("email", flat=True))
    first = snapshot()
    assert seed() == first_output
    assert snapshot() == first


def test_demo_requests_come_from_a_demo_service_account_not_the_real_engine():
    from accounts.services import service_account_ensure
    from approvals.models import ApprovalRequest
    from zakops.models import DealEvent

    service_account_ensure(name="action-engine")  # the real engine's account
    seed()
    assert ApprovalRequest.objects.filter(requested_via=DEMO_SERVICE_ACCOUNT).exists()
    assert not ApprovalRequest.objects.filter(requested_via="action-engine").exists()
    assert not DealEvent.objects.filter(actor="action-engine").exists()


def test_a_re_run_keeps_what_people_changed_in_the_demo_rows(client):
    from django.contrib.auth import get_user_model

    from zakops.models import ExecutionCheckpoint

    seed()
    deal_id = DEMO_DEALS[0][0]
    Deal.objects.filter(pk=deal_id).update(stage="closed", display_name="Renamed in the demo")
    checkpoint = ExecutionCheckpoint.objects.filter(status="active").order_by("action_id", "sequence_number").first()
    ExecutionCheckpoint.objects.filter(pk=checkpoint.pk).update(status="cancelled")
    operator = get_user_model().objects.get(username="operator@operations.demo")
    operator.set_password("a password of my own")
    operator.save(update_fields=["password"])

    output = seed()

    assert Deal.objects.filter(pk=deal_id).values_list("stage", "display_name").get() == ("closed", "Renamed in the demo")
    checkpoint.refresh_from_db()
    assert checkpoint.status == "cancelled"
    response = client.post(reverse("login"), {"username": "operator@operations.demo", "password": "a password of my own"})
    assert response.status_code == 302
    line = next(line for line in output.splitlines() if "operator@operations.demo" in line)
    assert "password changed since it was seeded" in line and "demo-" not in line  # no stale password shown


def printed_curl(output: str) -> tuple[str, dict, str]:
    """(token, body, url) of the curl line the seed prints, as a shell would read it."""
    import json
    import shlex

    line = next(line.strip() for line in output.splitlines() if line.strip().startswith("TOKEN="))
    assignment, curl = line.split("; ", 1)
    token = assignment.removeprefix("TOKEN=")
    words = shlex.split(curl)
    assert words[0] == "curl" and 'Authorization: Bearer $TOKEN' in words
    return token, json.loads(words[words.index("-d") + 1]), words[-1]


def test_seed_demo_prints_the_demo_engine_token_once_in_a_curl_that_opens_a_critical_request(settings):
    from rest_framework.test import APIClient

    from approvals.models import ApprovalRequest

    settings.HITL_BASE_URL = "http://127.0.0.1:8123"
    output = seed()
    token, body, url = printed_curl(output)
    assert token.startswith("zkh_") and output.count(token) == 1
    assert "demo token, not for production" in output
    assert url == "http://127.0.0.1:8123/api/hitl/approval-requests"

    response = APIClient().post(url.removeprefix("http://127.0.0.1:8123"), body, format="json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 201, response.content
    assert response.json()["risk_level"] == "critical"
    request = ApprovalRequest.objects.get(action_id=body["action_id"])
    assert request.requested_via == DEMO_SERVICE_ACCOUNT
    # The request it opened is the demo's: a later run still seeds, and prints the same token.
    assert printed_curl(seed())[0] == token


def test_a_revoked_demo_token_stays_revoked_and_is_not_printed():
    from accounts.models import ApiToken
    from accounts.services import api_tokens_revoke

    token, _, _ = printed_curl(seed())
    api_tokens_revoke(tokens=ApiToken.objects.filter(user__username=DEMO_SERVICE_ACCOUNT))
    output = seed()
    assert token not in output and "was revoked" in output
    assert ApiToken.objects.filter(revoked_at__isnull=True, user__username=DEMO_SERVICE_ACCOUNT).count() == 0


def test_the_demo_has_two_admins_who_both_sign_in(client):
    output = seed()
    admins = [line.split() for line in output.splitlines() if line.strip().startswith("admin ")]
    assert len(admins) == 2 and admins[0][1] != admins[1][1]
    for _, email, _, password in admins:
        response = client.post(reverse("login"), {"username": email, "password": password})
        assert response.status_code == 302, email
        client.post(reverse("logout"))


def test_seed_demo_skip_refused_says_why_in_one_line_and_writes_nothing():
    real_rows()
    before = snapshot()
    output = seed("--skip-refused")
    assert output.count("\n") == 1
    assert output.startswith("Demo: not seeded, this database holds rows that are not demo data: deals DL-0001")
    assert snapshot() == before


def test_the_two_demo_admins_approve_the_request_the_printed_curl_opens():
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from accounts.selectors import actor_of
    from approvals.services.decisions import approval_decide

    token, body, url = printed_curl(seed())
    APIClient().post("/api/hitl/approval-requests", body, format="json", HTTP_AUTHORIZATION=f"Bearer {token}")
    admins = [actor_of(get_user_model().objects.get(username=email)) for email in ("admin@operations.demo", "admin2@operations.demo")]
    first = approval_decide(action_id=body["action_id"], actor=admins[0], decision="approve", reason="Checked the LOI.")
    assert first.state == "pending"  # one vote of two
    second = approval_decide(action_id=body["action_id"], actor=admins[1], decision="approve", reason="Agreed.")
    assert second.state == "approved"
