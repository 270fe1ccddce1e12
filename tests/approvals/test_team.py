"""Team review: claims, two-person approval, edit before approve, bulk decisions in the API."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import ApprovalRequest, ApprovalVote, Claim
from approvals.services.claims import claim_release, claim_take
from approvals.services.decisions import approval_decide
from approvals.services.edits import inputs_diff
from approvals.services.requests import approval_request
from common.errors import Conflict, InvalidInput, NotAllowed
from tests.conftest import run_at_once
from zakops.models import Action, DealEvent, OutboxEvent

pytestmark = pytest.mark.django_db


def events(action_id, event_type=None):
    found = DealEvent.objects.filter(details__action_id=action_id)
    if event_type:
        found = found.filter(event_type=event_type)
    return list(found.order_by("created_at", "sequence_number"))


def outbox(action_id, event_type):
    return OutboxEvent.objects.filter(aggregate_id=action_id, event_type=event_type).count()


# --- two-person approval ----------------------------------------------------------------


def test_a_critical_request_needs_two_different_admins(request_approval, people):
    request = request_approval("critical")
    first = approval_decide(action_id=request.action_id, actor=people["admin"], decision="approve", reason="fine")
    assert first.state == "pending" and [v["name"] for v in first.votes] == ["ada@example.com"]
    assert Action.objects.get(pk=request.action_id).status == "PENDING_APPROVAL"  # the engine may not run it yet

    with pytest.raises(Conflict, match="already approved"):
        approval_decide(action_id=request.action_id, actor=people["admin"], decision="approve", reason="Checked.")

    done = approval_decide(action_id=request.action_id, actor=people["admin2"], decision="approve", reason="Checked.")
    assert done.state == "approved" and done.decided_by == people["admin2"].actor_id
    assert Action.objects.get(pk=request.action_id).status == "QUEUED"
    assert [e.event_type for e in events(request.action_id)] == [
        "hitl.approval_requested", "hitl.approval_vote", "hitl.approval_vote", "hitl.approved",
    ]
    assert outbox(request.action_id, "hitl.approval_vote") == 2 and outbox(request.action_id, "hitl.approved") == 1
    assert ApprovalVote.objects.filter(request=request).count() == 2


@pytest.mark.parametrize("who", ["requester", "sender", "viewer", "operator"])
def test_who_never_votes_on_a_critical_request(who, request_approval, people, make_reviewer, engine):
    from accounts.selectors import actor_of

    rita = actor_of(make_reviewer("admin", "rita@example.com"))
    request = request_approval("critical", requested_by="rita@example.com")
    actor = {"requester": rita, "sender": engine, "viewer": people["viewer"], "operator": people["operator"]}[who]
    with pytest.raises(NotAllowed):
        approval_decide(action_id=request.action_id, actor=actor, decision="approve", reason="Checked.")
    assert ApprovalRequest.objects.get(pk=request.pk).votes == []
    assert events(request.action_id, "hitl.approval_vote") == []


def test_a_reject_after_one_vote_ends_it(request_approval, people):
    request = request_approval("critical")
    approval_decide(action_id=request.action_id, actor=people["admin"], decision="approve", reason="Checked.")
    rejected = approval_decide(action_id=request.action_id, actor=people["admin2"], decision="reject", reason="no")
    assert rejected.state == "rejected" and Action.objects.get(pk=request.action_id).status == "REJECTED"


def test_a_vote_does_not_outlive_the_deadline(request_approval, people):
    request = request_approval("critical")
    approval_decide(action_id=request.action_id, actor=people["admin"], decision="approve", reason="Checked.")
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Conflict, match="expired"):
        approval_decide(action_id=request.action_id, actor=people["admin2"], decision="approve", reason="Checked.")


def test_the_number_of_approvals_is_a_setting(request_approval, people, settings):
    settings.HITL_APPROVALS_NEEDED = {**settings.HITL_APPROVALS_NEEDED, "high": 2}
    request = request_approval("high")
    assert approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve", reason="Checked.").state == "pending"
    assert approval_decide(action_id=request.action_id, actor=people["operator2"], decision="approve", reason="Checked.").state == "approved"


# --- edit before approve ----------------------------------------------------------------


def _loi(engine, action_id, inputs):
    request, _ = approval_request(
        action_id=action_id, action_type="DOCUMENT.GENERATE_LOI", inputs=inputs, requester=engine, title="LOI"
    )
    return request


def test_an_edit_is_written_to_the_action_with_the_original_and_a_diff(engine, people):
    request = _loi(engine, "ACT-EDIT-1", {"price": 10, "buyer": "Acme"})
    assert request.risk_level == "high"
    done = approval_decide(
        action_id="ACT-EDIT-1", actor=people["operator"], decision="approve", reason="fixed the buyer",
        inputs={"price": 10, "buyer": "Acme Holdings", "note": "x"},
    )
    assert done.state == "approved" and done.original_inputs == {"price": 10, "buyer": "Acme"}
    assert Action.objects.get(pk="ACT-EDIT-1").inputs == {"price": 10, "buyer": "Acme Holdings", "note": "x"}
    [edit] = events("ACT-EDIT-1", "hitl.inputs_edited")
    assert edit.details["diff"] == {"added": {"note": "x"}, "removed": {}, "changed": {"buyer": {"from": "Acme", "to": "Acme Holdings"}}}
    assert edit.details["original_inputs"] == {"price": 10, "buyer": "Acme"}
    assert outbox("ACT-EDIT-1", "hitl.inputs_edited") == 1
    assert [e.event_type for e in events("ACT-EDIT-1")][-2:] == ["hitl.inputs_edited", "hitl.approved"]


def test_an_edit_adding_an_external_recipient_raises_the_level_and_needs_admins(engine, people):
    request = _loi(engine, "ACT-EDIT-2", {"amount": 5_000_000})
    assert request.risk_level == "high"
    with pytest.raises(Conflict, match="raised the risk from high to critical") as raised:
        approval_decide(
            action_id="ACT-EDIT-2", actor=people["operator"], decision="approve", reason="Checked.",
            inputs={"amount": 5_000_000, "cc": "partner@rival.example"},
        )
    assert raised.value.extra["inputs_edited"] is True
    after = ApprovalRequest.objects.get(pk=request.pk)
    assert (after.state, after.risk_level, after.votes) == ("pending", "critical", [])
    assert after.expires_at <= request.expires_at
    action = Action.objects.get(pk="ACT-EDIT-2")
    assert (action.status, action.risk_level, action.inputs["cc"]) == ("PENDING_APPROVAL", "critical", "partner@rival.example")
    [edit] = events("ACT-EDIT-2", "hitl.inputs_edited")
    assert (edit.details["previous_risk_level"], edit.details["assessed_risk_level"]) == ("high", "critical")
    # Now two admins must approve it.
    assert approval_decide(action_id="ACT-EDIT-2", actor=people["admin"], decision="approve", reason="Checked.").state == "pending"
    assert approval_decide(action_id="ACT-EDIT-2", actor=people["admin2"], decision="approve", reason="Checked.").state == "approved"


def test_an_edit_clears_the_votes_on_the_old_inputs(engine, people, request_approval):
    request = request_approval("critical")
    approval_decide(action_id=request.action_id, actor=people["admin"], decision="approve", reason="Checked.")
    edited = approval_decide(
        action_id=request.action_id, actor=people["admin2"], decision="approve", reason="Checked.", inputs={"to": "cfo@seller.example", "subject": "Hi"}
    )
    assert edited.state == "pending" and [v["name"] for v in edited.votes] == ["abe@example.com"]
    [edit] = events(request.action_id, "hitl.inputs_edited")
    assert edit.details["votes_cleared"] == ["ada@example.com"]


@pytest.mark.parametrize("inputs", [["a"], {"a": "nul\x00"}, {"a": "\ud800"}, {"a": [[[[[[[[]]]]]]]]}])
def test_edited_inputs_the_database_can_not_hold_are_refused(inputs, request_approval, people, settings):
    settings.HITL_JSON_MAX_DEPTH = 6
    request = request_approval("medium")
    with pytest.raises(InvalidInput):
        approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve", inputs=inputs)
    assert Action.objects.get(pk=request.action_id).inputs == {}


def test_inputs_diff():
    assert inputs_diff({"a": 1, "b": 2}, {"b": 3, "c": 4}) == {
        "added": {"c": 4}, "removed": {"a": 1}, "changed": {"b": {"from": 2, "to": 3}},
    }


# --- claims -------------------------------------------------------------------------------


def test_a_claim_blocks_others_until_takeover_which_is_recorded(request_approval, people):
    request = request_approval("medium")
    claim = claim_take(action_id=request.action_id, actor=people["operator"])
    assert claim.reviewer_name == "olu@example.com"
    with pytest.raises(Conflict, match="olu@example.com is reviewing"):
        claim_take(action_id=request.action_id, actor=people["operator2"])
    assert claim_take(action_id=request.action_id, actor=people["operator"]).expires_at >= claim.expires_at  # renewed
    taken = claim_take(action_id=request.action_id, actor=people["operator2"], takeover=True)
    assert taken.reviewer_name == "oona@example.com"
    [event] = events(request.action_id, "hitl.claim_taken_over")
    assert event.details["previous_reviewer"] == "olu@example.com" and outbox(request.action_id, "hitl.claim_taken_over") == 1
    assert events(request.action_id, "hitl.claimed") == []  # claims themselves are no audit events


def test_a_lapsed_claim_is_free_and_a_decision_or_release_ends_it(request_approval, people):
    request = request_approval("medium")
    claim_take(action_id=request.action_id, actor=people["operator"])
    Claim.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert claim_take(action_id=request.action_id, actor=people["operator2"]).reviewer_name == "oona@example.com"
    assert claim_release(action_id=request.action_id, actor=people["operator2"]) is True
    assert not Claim.objects.exists()
    claim_take(action_id=request.action_id, actor=people["operator"])
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve", reason="Checked.")  # the holder decides
    assert not Claim.objects.exists()


def test_only_who_may_decide_claims(request_approval, people):
    request = request_approval("critical")
    for who in ("viewer", "operator"):
        with pytest.raises(NotAllowed):
            claim_take(action_id=request.action_id, actor=people[who])


# --- races, on real connections ------------------------------------------------------------

RACE = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@RACE
def test_two_claims_at_once_one_wins(request_approval, people):
    request = request_approval("medium")
    actors = [people["operator"], people["operator2"]]
    results = run_at_once(2, lambda i: claim_take(action_id=request.action_id, actor=actors[i]))
    winners = [r for r in results if isinstance(r, Claim)]
    assert len(winners) == 1, results
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, Claim)), results
    assert Claim.objects.get().reviewer_name == winners[0].reviewer_name


@RACE
def test_two_last_votes_at_once_give_one_approval(request_approval, people, make_reviewer):
    from accounts.selectors import actor_of

    request = request_approval("critical")
    approval_decide(action_id=request.action_id, actor=people["admin"], decision="approve", reason="Checked.")
    actors = [people["admin2"], actor_of(make_reviewer("admin", "ava@example.com"))]
    results = run_at_once(2, lambda i: approval_decide(action_id=request.action_id, actor=actors[i], decision="approve", reason="Checked."))
    assert sorted(type(r).__name__ for r in results) == ["ApprovalRequest", "Conflict"], results
    assert ApprovalRequest.objects.get(pk=request.pk).state == "approved"
    assert len(events(request.action_id, "hitl.approval_vote")) == 2  # the first vote and the winning one
    assert len(events(request.action_id, "hitl.approved")) == 1 and outbox(request.action_id, "hitl.approved") == 1


@RACE
def test_an_edit_racing_a_reject_has_one_outcome(request_approval, people):
    request = request_approval("medium")
    work = [
        lambda: approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve", inputs={"body": "fixed"}),
        lambda: approval_decide(action_id=request.action_id, actor=people["operator2"], decision="reject", reason="no"),
    ]
    results = run_at_once(2, lambda i: work[i]())
    assert sorted(type(r).__name__ for r in results) == ["ApprovalRequest", "Conflict"], results
    final = ApprovalRequest.objects.get(pk=request.pk)
    action = Action.objects.get(pk=request.action_id)
    if final.state == "approved":
        assert action.inputs == {"body": "fixed"} and action.status == "QUEUED"
    else:
        assert final.state == "rejected" and action.inputs == {} and action.status == "REJECTED"
        assert events(request.action_id, "hitl.inputs_edited") == []


# --- the API --------------------------------------------------------------------------------


def _client(api, make_reviewer, role, email):
    api.force_login(make_reviewer(role, email))
    return api


def test_api_claim_and_release(api, make_reviewer, request_approval, people):
    request = request_approval("medium")
    client = _client(api, make_reviewer, "operator", "carl@example.com")
    answer = client.post(f"/api/hitl/actions/{request.action_id}/claim", {}, format="json")
    assert answer.status_code == 200 and answer.json()["claimed_by"] == "carl@example.com"
    with pytest.raises(Conflict):
        claim_take(action_id=request.action_id, actor=people["operator"])
    assert client.post(f"/api/hitl/actions/{request.action_id}/release").json()["released"] is True
    assert not Claim.objects.exists()
    assert api.post("/api/hitl/actions/NOPE/claim", {}, format="json").status_code == 404


def test_api_claim_of_a_claimed_request_is_409_until_takeover(api, make_reviewer, request_approval, people):
    request = request_approval("medium")
    claim_take(action_id=request.action_id, actor=people["operator"])
    client = _client(api, make_reviewer, "operator", "carl@example.com")
    refused = client.post(f"/api/hitl/actions/{request.action_id}/claim", {}, format="json")
    assert refused.status_code == 409 and refused.json()["claimed_by"] == "olu@example.com"
    taken = client.post(f"/api/hitl/actions/{request.action_id}/claim", {"takeover": True}, format="json")
    assert taken.status_code == 200 and taken.json()["claimed_by"] == "carl@example.com"


def test_api_service_accounts_do_not_claim(engine_api, request_approval):
    request = request_approval("medium")
    assert engine_api.post(f"/api/hitl/actions/{request.action_id}/claim", {}, format="json").status_code == 403
    assert engine_api.post(f"/api/hitl/actions/{request.action_id}/release").status_code == 403


def test_api_approve_answers_pending_with_votes_then_approved(api, make_reviewer, request_approval):
    request = request_approval("critical")
    first = _client(api, make_reviewer, "admin", "a1@example.com").post(f"/api/hitl/actions/{request.action_id}/approve", {"reason": "Checked."}, format="json")
    assert first.status_code == 200
    assert (first.json()["status"], first.json()["approvals_needed"], first.json()["decided_at"]) == ("pending", 2, None)
    second = _client(api, make_reviewer, "admin", "a2@example.com").post(f"/api/hitl/actions/{request.action_id}/approve", {"reason": "Checked."}, format="json")
    assert second.json()["status"] == "approved" and [v["name"] for v in second.json()["votes"]] == ["a1@example.com", "a2@example.com"]


def test_api_approve_with_inputs(api, make_reviewer, request_approval):
    request = request_approval("medium")
    client = _client(api, make_reviewer, "operator", "carl@example.com")
    bad = client.post(f"/api/hitl/actions/{request.action_id}/approve", {"inputs": [1]}, format="json")
    assert bad.status_code == 400
    nul = client.post(f"/api/hitl/actions/{request.action_id}/approve", '{"inputs": {"a": "\\u0000"}}', content_type="application/json")
    assert nul.status_code == 400
    done = client.post(f"/api/hitl/actions/{request.action_id}/approve", {"inputs": {"body": "Dear Sir"}}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "approved"
    assert Action.objects.get(pk=request.action_id).inputs == {"body": "Dear Sir"}


def test_api_bulk_decisions_report_each_outcome(api, make_reviewer, request_approval, people):
    medium, taken, critical = request_approval("medium"), request_approval("medium"), request_approval("critical")
    approval_decide(action_id=taken.action_id, actor=people["operator2"], decision="reject", reason="no")
    client = _client(api, make_reviewer, "operator", "carl@example.com")
    body = {"decisions": [
        {"action_id": medium.action_id, "decision": "approve", "reason": ""},
        {"action_id": taken.action_id, "decision": "approve"},
        {"action_id": critical.action_id, "decision": "approve"},
        {"action_id": "ACT-NONE", "decision": "reject", "reason": "x"},
    ]}
    answer = client.post("/api/hitl/decisions", body, format="json")
    assert answer.status_code == 200
    outcomes = answer.json()["outcomes"]
    assert [o["outcome"] for o in outcomes] == ["decided", "conflict", "refused", "missing"]
    assert outcomes[0]["state"] == "approved"
    assert outcomes[1]["conflict"]["decided_by_name"] == "oona@example.com" and outcomes[1]["conflict"]["decided_at"]
    assert "admin" in outcomes[2]["detail"]
    too_many = {"decisions": [{"action_id": f"A{n}", "decision": "approve"} for n in range(201)]}
    assert client.post("/api/hitl/decisions", too_many, format="json").status_code == 400
    assert api.post("/api/hitl/decisions", json.dumps({"decisions": []}), content_type="application/json").status_code == 400


def test_the_schema_documents_the_new_operations(api, make_reviewer):
    api.force_login(make_reviewer("operator", "carl@example.com"))
    schema = api.get("/api/hitl/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("/api/hitl/actions/{action_id}/claim", "/api/hitl/actions/{action_id}/release", "/api/hitl/decisions"):
        responses = schema["paths"][path]["post"]["responses"]
        assert "401" in responses and "200" in responses, path
    approve = schema["paths"]["/api/hitl/actions/{action_id}/approve"]["post"]
    assert "pending" in approve["description"]
    assert approve["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ApproveRequest")
    assert "inputs" in schema["components"]["schemas"]["ApproveRequest"]["properties"]
