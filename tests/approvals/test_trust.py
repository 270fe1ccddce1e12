"""Who may open a request, whose word counts, and what a caller can not lower (SPEC §3).

Each test plays a caller the old rules trusted too far: a person opening requests, a
requester hiding behind another name, a context that says an action's closed deal is
open, a second request that sends an approved action back to the queue."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.selectors import actor_of
from accounts.services import api_token_create
from approvals.models import ApprovalRequest
from approvals.services.decisions import approval_decide
from approvals.services.requests import approval_request
from common.errors import NotAllowed
from zakops.models import Action, Deal, DealEvent, OutboxEvent

pytestmark = pytest.mark.django_db
REQUESTS = "/api/hitl/approval-requests"


def post(client, path, body=None):
    return client.post(path, json.dumps(body or {}), content_type="application/json")


def person_client(user, *, token=False):
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, name='laptop')[1]}")
    else:
        client.force_login(user)
    return client


def written():
    return Action.objects.count(), ApprovalRequest.objects.count(), DealEvent.objects.count(), OutboxEvent.objects.count()


# --- only the engine opens requests ---------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
@pytest.mark.parametrize("token", [False, True], ids=["session", "token"])
def test_people_can_not_open_approval_requests(make_reviewer, role, token):
    client = person_client(make_reviewer(role), token=token)
    response = post(client, REQUESTS, {"action_id": "ACT-P1", "action_type": "DEAL.GET_DETAILS"})
    assert response.status_code == 403
    assert "People can not open approval requests" in response.json()["detail"]
    assert written() == (0, 0, 0, 0)


def test_the_engine_opens_them(engine_api):
    assert post(engine_api, REQUESTS, {"action_id": "ACT-E1", "action_type": "DOCUMENT.GENERATE_LOI"}).status_code == 201


# --- four-eyes: the requester and the sender ------------------------------------------


@pytest.mark.parametrize(
    "who_asked",
    [
        lambda ana: {"requested_by": "  ANA@Example.COM "},
        lambda ana: {"created_by": "Ana@example.com"},
        lambda ana: {"requested_via": "ana@example.com"},
        lambda ana: {"requested_via_id": ana.actor_id},
        lambda ana: {"operator_id": ana.actor_id},
        lambda ana: {"requested_by": str(ana.actor_id).upper()},
    ],
    ids=["requested_by, any case", "the action's created_by", "sender's name", "sender's id", "the action's operator_id", "operator id, upper case"],
)
def test_whoever_asked_for_or_sent_the_request_can_not_decide_it(request_approval, make_reviewer, who_asked):
    ana = actor_of(make_reviewer("admin", "ana@example.com"))
    request = request_approval("medium")
    fields = who_asked(ana)
    action_fields = {k: v for k, v in fields.items() if k in ("created_by", "operator_id")}
    Action.objects.filter(pk=request.action_id).update(**action_fields)
    ApprovalRequest.objects.filter(pk=request.pk).update(**{k: v for k, v in fields.items() if k not in action_fields})

    with pytest.raises(NotAllowed, match="four-eyes"):
        approval_decide(action_id=request.action_id, actor=ana, decision="approve")
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"
    other = actor_of(make_reviewer("admin", "abe@example.com"))
    assert approval_decide(action_id=request.action_id, actor=other, decision="approve").state == "approved"


# How people write an address: a display name, mailto:, full-width letters, invisible
# format characters pasted with it, spaces and case. Each is Ana.
WRITTEN_AS_ANA = {
    "display name": "Ana Smith <ana@example.com>",
    "quoted display name": '"Smith, Ana" <ANA@example.com>',
    "mailto": "mailto:ana@example.com",
    "mailto in brackets": "Ana <MAILTO:Ana@Example.com>",
    "full-width": "\uff41\uff4e\uff41\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",
    "full-width brackets": "Ana \uff1cana@example.com\uff1e",
    "zero-width space": "a\u200bna@example.com",
    "zero-width non-joiner": "an\u200ca@example.com",
    "zero-width joiner": "ana@exa\u200dmple.com",
    "word joiner": "ana\u2060@example.com",
    "byte order mark": "\ufeffana@example.com",
    "soft hyphen": "ana@ex\u00adample.com",
    "spaces and case": "\u00a0 ANA@Example.COM \t",
    "a dot after the domain": "ana@example.com.",
    "a quoted local part": '"ana"@example.com',
    "a semicolon after": "ana@example.com;",
    "in single quotes": "'ana@example.com'",
    "a comment after": "Ana <ana@example.com> (sales)",
    "first of a list": "ana@example.com, bob@example.com",
    "last of a list": "Bob <bob@example.com>, Ana <ana@example.com>",
    "first of a list of names": "Ana <ana@example.com>, Bob <bob@example.com>",
}


@pytest.mark.parametrize("written", WRITTEN_AS_ANA.values(), ids=WRITTEN_AS_ANA.keys())
@pytest.mark.parametrize("field", ["requested_by", "requested_via", "created_by"])
def test_four_eyes_knows_an_address_however_it_is_written(request_approval, make_reviewer, field, written):
    ana = actor_of(make_reviewer("admin", "ana@example.com"))
    request = request_approval("medium")
    if field == "created_by":
        Action.objects.filter(pk=request.action_id).update(created_by=written)
    else:
        ApprovalRequest.objects.filter(pk=request.pk).update(**{field: written})

    with pytest.raises(NotAllowed, match="four-eyes"):
        approval_decide(action_id=request.action_id, actor=ana, decision="approve")
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"


def test_four_eyes_compares_the_deciders_address_the_same_way(request_approval, make_reviewer):
    ana = actor_of(make_reviewer("admin", "ana@example.com"))
    request = request_approval("medium", requested_by="ana@example.com")
    written_oddly = ana.__class__(kind=ana.kind, name="\u200bAna@EXAMPLE.com ", actor_id=ana.actor_id, role=ana.role)
    with pytest.raises(NotAllowed, match="four-eyes"):
        approval_decide(action_id=request.action_id, actor=written_oddly, decision="approve")


@pytest.mark.parametrize(
    "someone_else",
    ["anna@example.com", "ana@example.com.evil.example", "Ana <ana@example.org>", "mailto:ana.smith@example.com", "ana"],
)
def test_four_eyes_does_not_refuse_another_address(request_approval, make_reviewer, someone_else):
    ana = actor_of(make_reviewer("admin", "ana@example.com"))
    request = request_approval("medium", requested_by=someone_else)
    assert approval_decide(action_id=request.action_id, actor=ana, decision="approve").state == "approved"


def test_the_requester_however_written_is_neither_offered_the_buttons_nor_told(request_approval, make_reviewer, client):
    from notifications.models import NotificationKind
    from notifications.selectors import recipients_for

    ana = make_reviewer("admin", "ana@example.com")
    make_reviewer("admin", "abe@example.com")
    request = request_approval("medium", requested_by="Ana <\uff41na@example.com\u200b>")
    action = Action.objects.get(pk=request.action_id)
    assert recipients_for(kind=NotificationKind.REQUESTED, request=request, action=action) == ["abe@example.com"]
    client.force_login(ana)
    assert "four-eyes" in client.get("/").content.decode()


def test_the_sender_is_recorded_with_its_id(request_approval, engine):
    request = request_approval("medium")
    assert (request.requested_via, request.requested_via_id) == ("action-engine", engine.actor_id)


# --- stored facts beat what the caller says -------------------------------------------


def test_a_closed_deal_is_critical_whatever_the_context_says(engine_api):
    Deal.objects.create(deal_id="DL-C", canonical_name="Closed Co", stage="closed")
    body = post(engine_api, REQUESTS, {
        "action_id": "ACT-C1", "action_type": "DEAL.GET_DETAILS", "deal_id": "DL-C", "context": {"deal_stage": "diligence"},
    }).json()
    assert (body["state"], body["risk_level"], body["requires_approval"]) == ("pending", "critical", True)
    assert "Deal is closed - all actions require approval" in body["reasons"]
    assert Action.objects.get(pk="ACT-C1").status == "PENDING_APPROVAL"


def test_a_stored_action_on_a_closed_deal_is_critical_whatever_the_context_says(engine_api):
    Deal.objects.create(deal_id="DL-C", canonical_name="Closed Co", stage="closed")
    Action.objects.create(action_id="ACT-C2", action_type="DEAL.GET_DETAILS", deal_id="DL-C", status="READY", inputs={})
    body = post(engine_api, REQUESTS, {
        "action_id": "ACT-C2", "action_type": "DEAL.GET_DETAILS", "context": {"deal_stage": "inbound"},
    }).json()
    assert (body["state"], body["risk_level"]) == ("pending", "critical")


def test_the_context_may_make_an_assessment_stricter(engine_api):
    Deal.objects.create(deal_id="DL-O", canonical_name="Open Co", stage="diligence")
    body = post(engine_api, REQUESTS, {
        "action_id": "ACT-C3", "action_type": "DEAL.GET_DETAILS", "deal_id": "DL-O", "context": {"deal_stage": "closed"},
    }).json()
    assert (body["state"], body["risk_level"]) == ("pending", "critical")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"inputs": {"to": "me@internal.example"}}, "inputs differ"),
        ({"inputs": {}}, "inputs differ"),
        ({"deal_id": "DL-O"}, "belongs to deal"),
        ({"action_type": "DEAL.GET_DETAILS"}, "is a COMMUNICATION.SEND_EMAIL"),
    ],
)
def test_a_request_can_not_describe_a_stored_action_as_milder_than_it_is(engine_api, change, words):
    Deal.objects.create(deal_id="DL-O", canonical_name="Open Co", stage="diligence")
    Action.objects.create(
        action_id="ACT-S1", action_type="COMMUNICATION.SEND_EMAIL", status="READY", inputs={"to": "cfo@buyer.example"},
    )
    before = written()
    response = post(engine_api, REQUESTS, {"action_id": "ACT-S1", "action_type": "COMMUNICATION.SEND_EMAIL", **change})
    assert response.status_code == 409 and words in response.json()["detail"]
    assert written() == before
    # Sent as stored (or with the inputs left out), it is assessed from the row.
    body = post(engine_api, REQUESTS, {"action_id": "ACT-S1", "action_type": "COMMUNICATION.SEND_EMAIL"}).json()
    assert (body["risk_level"], body["state"]) == ("critical", "pending")


# --- a decided action stays decided ---------------------------------------------------


def test_a_second_request_for_an_approved_action_answers_the_decision_and_changes_nothing(engine_api, request_approval, people):
    request = request_approval("medium", action_id="ACT-D1")
    approval_decide(action_id="ACT-D1", actor=people["operator"], decision="approve", reason="ok")
    before = written()
    response = post(engine_api, REQUESTS, {"action_id": "ACT-D1", "action_type": "COMMUNICATION.DRAFT_EMAIL"})
    assert response.status_code == 200
    assert (response.json()["request_id"], response.json()["state"]) == (str(request.pk), "approved")
    assert Action.objects.get(pk="ACT-D1").status == "QUEUED"
    assert written() == before

    again = post(engine_api, REQUESTS, {"action_id": "ACT-D1", "action_type": "COMMUNICATION.DRAFT_EMAIL", "new_round": True})
    assert again.status_code == 409 and "QUEUED" in again.json()["detail"]
    assert written() == before


def test_the_engine_asks_for_a_new_round_explicitly(engine_api, request_approval, people):
    request_approval("medium", action_id="ACT-D2")
    approval_decide(action_id="ACT-D2", actor=people["operator"], decision="approve")
    Action.objects.filter(pk="ACT-D2").update(status="FAILED")  # the engine will retry it
    response = post(engine_api, REQUESTS, {"action_id": "ACT-D2", "action_type": "COMMUNICATION.DRAFT_EMAIL", "new_round": True})
    assert response.status_code == 201
    assert (response.json()["round"], response.json()["state"]) == (2, "pending")
    assert Action.objects.get(pk="ACT-D2").status == "PENDING_APPROVAL"


# --- cancel is the engine's -----------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "operator", "viewer"])
def test_only_the_engine_cancels(engine_api, request_approval, make_reviewer, role):
    request = request_approval("high")
    response = post(person_client(make_reviewer(role)), f"/api/hitl/actions/{request.action_id}/cancel", {"reason": "no"})
    assert response.status_code == 403
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"
    assert post(engine_api, f"/api/hitl/actions/{request.action_id}/cancel").status_code == 200


def test_in_process_code_may_open_requests(db):
    from accounts.selectors import SYSTEM

    request, created = approval_request(action_id="ACT-SYS", action_type="DOCUMENT.GENERATE_LOI", requester=SYSTEM)
    assert created and request.state == "pending"


# --- a createsuperuser account --------------------------------------------------------


def test_a_superuser_counts_as_admin_and_is_told_how_to_get_an_operator_record(request_approval):
    call_command("createsuperuser", interactive=False, username="root@example.com", email="root@example.com", verbosity=0)
    root = get_user_model().objects.get(username="root@example.com")
    request = request_approval("critical")
    response = post(person_client(root), f"/api/hitl/actions/{request.action_id}/approve")
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert "Viewers" not in detail and "create_operator root@example.com --role admin" in detail

    call_command("create_operator", "root@example.com", "--role", "admin", stdout=open("/dev/null", "w"))
    assert post(person_client(root), f"/api/hitl/actions/{request.action_id}/approve", {"reason": "Checked."}).status_code == 200
