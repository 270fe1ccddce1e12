from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.services.cancel import approval_cancel
from approvals.services.decisions import approval_decide
from approvals.services.expiry import approvals_expire
from approvals.services.requests import approval_request
from checkpoints.services import checkpoint_save
from common.errors import Conflict, InvalidInput, NotAllowed, NotFound
from zakops.models import Action, Deal, DealEvent, ExecutionCheckpoint, OutboxEvent

pytestmark = pytest.mark.django_db


def events(action_id):
    return list(DealEvent.objects.filter(details__action_id=action_id).order_by("sequence_number").values_list("event_type", flat=True))


def outbox(action_id):
    return list(OutboxEvent.objects.filter(aggregate_id=action_id).order_by("created_at").values_list("event_type", flat=True))


def test_a_request_creates_the_action_assesses_it_and_waits(engine):
    Deal.objects.create(deal_id="DL-0042", canonical_name="Acme", stage="diligence")
    request, created = approval_request(
        action_id="ACT-1", action_type="DOCUMENT.GENERATE_LOI", requester=engine, deal_id="DL-0042",
        title="LOI for Acme", inputs={"template": "standard"}, requested_by="ana@example.com",
    )
    assert created
    assert (request.state, request.risk_level, request.round) == ("pending", "high", 1)
    assert "Matched rule document_generation" in request.reasons[0]
    assert timedelta(hours=7, minutes=59) < request.expires_at - timezone.now() <= timedelta(hours=8)
    action = Action.objects.get(pk="ACT-1")
    assert (action.status, action.risk_level, action.requires_human_review) == ("PENDING_APPROVAL", "high", True)
    assert (action.title, action.deal_id, action.inputs) == ("LOI for Acme", "DL-0042", {"template": "standard"})
    assert events("ACT-1") == outbox("ACT-1") == ["hitl.approval_requested"]
    event = DealEvent.objects.get(details__action_id="ACT-1")
    assert event.deal_id == "DL-0042"
    assert (event.actor, event.actor_type, event.source) == ("action-engine", "service", "zakops-hitl")
    assert event.details["request_id"] == str(request.id) and event.details["risk_level"] == "high"


def test_expiry_follows_the_level(request_approval):
    critical = request_approval("critical")
    assert timedelta(hours=3, minutes=59) < critical.expires_at - timezone.now() <= timedelta(hours=4)
    medium = request_approval("medium")
    assert timedelta(hours=23, minutes=59) < medium.expires_at - timezone.now() <= timedelta(hours=24)


def test_a_second_request_returns_the_open_one(request_approval, engine):
    first = request_approval("medium", action_id="ACT-1")
    again, created = approval_request(action_id="ACT-1", action_type="COMMUNICATION.DRAFT_EMAIL", requester=engine)
    assert (again.pk, created) == (first.pk, False)
    assert ApprovalRequest.objects.count() == 1
    assert events("ACT-1") == ["hitl.approval_requested"]


def test_an_existing_action_row_is_used_as_is(engine):
    Action.objects.create(action_id="ACT-1", action_type="DOCUMENT.GENERATE_NDA", inputs={"x": 1}, status="READY", created_by="ana@example.com")
    request, _ = approval_request(action_id="ACT-1", action_type="DOCUMENT.GENERATE_NDA", requester=engine)
    assert request.requested_by == "ana@example.com"
    assert Action.objects.get(pk="ACT-1").inputs == {"x": 1}


def test_a_type_that_differs_from_the_actions_is_a_conflict(engine):
    Action.objects.create(action_id="ACT-1", action_type="DEAL.GET_DETAILS")
    with pytest.raises(Conflict):
        approval_request(action_id="ACT-1", action_type="COMMUNICATION.SEND_EMAIL", requester=engine)


def test_an_unknown_deal_is_invalid(engine):
    with pytest.raises(InvalidInput, match="deal_id"):
        approval_request(action_id="ACT-1", action_type="X", requester=engine, deal_id="DL-404")
    assert not Action.objects.exists()


def test_an_action_that_needs_no_approval_is_approved_by_the_system(engine):
    request, created = approval_request(action_id="ACT-1", action_type="DEAL.GET_DETAILS", requester=engine)
    assert created and request.state == "approved"
    assert request.decided_by is None and request.decided_by_name == "zakops-hitl"
    assert request.reason.startswith("Approved automatically")
    action = Action.objects.get(pk="ACT-1")
    assert action.status == "QUEUED" and action.approved_at is not None and action.requires_human_review is False
    assert events("ACT-1") == outbox("ACT-1") == ["hitl.approval_requested", "hitl.approved"]


def test_a_closed_deal_makes_even_a_read_critical(engine):
    Deal.objects.create(deal_id="DL-9", canonical_name="Done Deal", stage="closed")
    request, _ = approval_request(action_id="ACT-1", action_type="DEAL.GET_DETAILS", requester=engine, deal_id="DL-9")
    assert (request.state, request.risk_level) == ("pending", "critical")


def test_approve_moves_the_action_to_queued_with_the_operators_uuid(request_approval, people):
    request = request_approval("high")
    decided = approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve", reason="Looks right")
    assert (decided.state, decided.decided_by, decided.decided_by_name, decided.reason) == ("approved", people["operator"].actor_id, "olu@example.com", "Looks right")
    action = Action.objects.get(pk=request.action_id)
    assert (action.status, action.approved_by) == ("QUEUED", people["operator"].actor_id)
    assert action.approved_at == decided.decided_at
    assert events(request.action_id) == outbox(request.action_id) == ["hitl.approval_requested", "hitl.approved"]
    approved = DealEvent.objects.get(event_type="hitl.approved")
    assert approved.details["decider"] == "olu@example.com" and approved.details["reason"] == "Looks right"
    assert approved.actor_id == str(people["operator"].actor_id) and approved.actor_type == "user"


def test_reject_moves_the_action_to_rejected_and_cancels_its_checkpoints(request_approval, people):
    request = request_approval("medium")
    checkpoint_save(action_id=request.action_id, checkpoint_name="gate", checkpoint_data={}, checkpoint_type="approval_gate")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="reject", reason="Wrong recipient")
    assert Action.objects.get(pk=request.action_id).status == "REJECTED"
    assert list(ExecutionCheckpoint.objects.values_list("status", flat=True)) == ["cancelled"]
    assert events(request.action_id)[-1] == "hitl.rejected"


@pytest.mark.parametrize("decision", ["reject", "quarantine"])
@pytest.mark.parametrize("reason", ["", "   "])
def test_reject_and_quarantine_need_a_reason(request_approval, people, decision, reason):
    request = request_approval("medium")
    with pytest.raises(InvalidInput, match="reason"):
        approval_decide(action_id=request.action_id, actor=people["operator"], decision=decision, reason=reason)
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"


def test_a_reason_over_2000_characters_is_refused(request_approval, people):
    request = request_approval("medium")
    with pytest.raises(InvalidInput, match="2000"):
        approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve", reason="x" * 2001)
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve", reason="x" * 2000)


def test_quarantine_escalates_to_admins_who_then_decide(request_approval, people):
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="quarantine", reason="Unusual amount")
    quarantined = ApprovalRequest.objects.get(pk=request.pk)
    assert (quarantined.state, quarantined.escalated_by_name, quarantined.escalation_reason) == ("quarantined", "olu@example.com", "Unusual amount")
    assert Action.objects.get(pk=request.action_id).status == "PENDING_APPROVAL"  # still must not run
    with pytest.raises(NotAllowed, match="quarantined"):
        approval_decide(action_id=request.action_id, actor=people["operator2"], decision="approve")
    with pytest.raises(Conflict, match="already quarantined"):
        approval_decide(action_id=request.action_id, actor=people["admin"], decision="quarantine", reason="again")
    with pytest.raises(InvalidInput, match="reason: a reason is required to approve a quarantined request"):
        approval_decide(action_id=request.action_id, actor=people["admin"], decision="approve", reason="  ")
    approval_decide(action_id=request.action_id, actor=people["admin"], decision="approve", reason="Amount confirmed.")
    assert Action.objects.get(pk=request.action_id).status == "QUEUED"
    assert events(request.action_id) == ["hitl.approval_requested", "hitl.escalated", "hitl.approved"]
    assert ApprovalRequest.objects.get(pk=request.pk).reason == "Amount confirmed."


def test_the_second_decision_is_a_conflict_saying_who_decided_what_and_when(request_approval, people):
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="reject", reason="No")
    with pytest.raises(Conflict) as conflict:
        approval_decide(action_id=request.action_id, actor=people["operator2"], decision="approve")
    assert conflict.value.extra["state"] == "rejected"
    assert conflict.value.extra["decided_by_name"] == "olu@example.com"
    assert "Already rejected by olu@example.com" in conflict.value.detail
    assert Action.objects.get(pk=request.action_id).status == "REJECTED"
    assert events(request.action_id).count("hitl.approved") == 0


def test_a_decision_after_expiry_is_a_conflict_before_the_sweep(request_approval, people):
    request = request_approval("medium")
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Conflict, match="expired"):
        approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve")
    assert Action.objects.get(pk=request.action_id).status == "PENDING_APPROVAL"


def test_unknown_action_or_no_request_is_not_found(people):
    with pytest.raises(NotFound):
        approval_decide(action_id="ACT-NOPE", actor=people["operator"], decision="approve")
    Action.objects.create(action_id="ACT-LONE", action_type="X")
    with pytest.raises(NotFound, match="no approval request"):
        approval_decide(action_id="ACT-LONE", actor=people["operator"], decision="approve")


def test_cancel_withdraws_the_request_the_action_and_its_checkpoints(request_approval, engine, people):
    request = request_approval("high")
    checkpoint_save(action_id=request.action_id, checkpoint_name="gate", checkpoint_data={})
    with pytest.raises(NotAllowed):
        approval_cancel(action_id=request.action_id, actor=people["operator"])
    cancelled = approval_cancel(action_id=request.action_id, actor=engine, reason="Deal paused")
    assert (cancelled.state, cancelled.decided_by_name, cancelled.reason) == ("cancelled", "action-engine", "Deal paused")
    assert Action.objects.get(pk=request.action_id).status == "CANCELLED"
    assert ExecutionCheckpoint.objects.get().status == "cancelled"
    assert events(request.action_id)[-1] == "hitl.cancelled"
    with pytest.raises(Conflict, match="cancelled"):
        approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve")


def test_a_new_round_after_a_decision_keeps_the_history(request_approval, people, engine):
    first = request_approval("medium", action_id="ACT-R")
    approval_decide(action_id="ACT-R", actor=people["operator"], decision="approve")
    Action.objects.filter(pk="ACT-R").update(status="READY")
    second, created = approval_request(action_id="ACT-R", action_type="COMMUNICATION.DRAFT_EMAIL", requester=engine, new_round=True)
    assert created and second.round == 2
    assert list(ApprovalRequest.objects.filter(action_id="ACT-R").order_by("round").values_list("state", flat=True)) == ["approved", "pending"]
    assert first.pk != second.pk


@pytest.mark.parametrize("status", ["QUEUED", "REJECTED", "CANCELLED", "COMPLETED", "PROCESSING"])
def test_an_approved_running_or_finished_action_never_goes_back_to_the_queue(request_approval, people, engine, status):
    request = request_approval("medium", action_id="ACT-F")
    approval_decide(action_id="ACT-F", actor=people["operator"], decision="approve", reason="fine")
    Action.objects.filter(pk="ACT-F").update(status=status)
    before = (events("ACT-F"), ApprovalRequest.objects.count())

    again, created = approval_request(action_id="ACT-F", action_type="COMMUNICATION.DRAFT_EMAIL", requester=engine)
    assert (created, again.pk, again.state) == (False, request.pk, "approved")  # the decided request, unchanged
    with pytest.raises(Conflict, match=status):
        approval_request(action_id="ACT-F", action_type="COMMUNICATION.DRAFT_EMAIL", requester=engine, new_round=True)

    assert Action.objects.get(pk="ACT-F").status == status
    assert (events("ACT-F"), ApprovalRequest.objects.count()) == before


@pytest.mark.parametrize("status", ["QUEUED", "PROCESSING", "COMPLETED"])
def test_an_action_the_engine_already_ran_or_queued_can_not_be_requested(engine, status):
    Action.objects.create(action_id="ACT-Q", action_type="COMMUNICATION.DRAFT_EMAIL", status=status)
    with pytest.raises(Conflict, match=status):
        approval_request(action_id="ACT-Q", action_type="COMMUNICATION.DRAFT_EMAIL", requester=engine)
    assert Action.objects.get(pk="ACT-Q").status == status and not ApprovalRequest.objects.exists()


def test_expiry_rejects_the_action_cancels_checkpoints_and_runs_once(request_approval, people):
    overdue, fresh = request_approval("critical"), request_approval("medium")
    checkpoint_save(action_id=overdue.action_id, checkpoint_name="gate", checkpoint_data={})
    approval_decide(action_id=request_approval("medium").action_id, actor=people["operator"], decision="quarantine", reason="r")
    later = timezone.now() + timedelta(hours=5)  # past critical's 4 h, within medium's 24 h
    assert approvals_expire(now=later) == 1
    assert approvals_expire(now=later) == 0
    expired = ApprovalRequest.objects.get(pk=overdue.pk)
    assert (expired.state, expired.decided_by_name) == ("expired", "zakops-hitl")
    assert Action.objects.get(pk=overdue.action_id).status == "REJECTED"
    assert ExecutionCheckpoint.objects.get().status == "cancelled"
    assert events(overdue.action_id)[-1] == outbox(overdue.action_id)[-1] == "hitl.expired"
    assert ApprovalRequest.objects.get(pk=fresh.pk).state == "pending"
    assert approvals_expire(now=timezone.now() + timedelta(hours=25)) == 2  # the pending and the quarantined one


def test_hitl_sweep_expires_requests_too(request_approval, capsys):
    request = request_approval("medium")
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    call_command("hitl_sweep")
    assert "approval requests: 1 expired" in capsys.readouterr().out
    call_command("hitl_sweep")
    assert "approval requests: 0 expired" in capsys.readouterr().out


def test_a_failure_after_the_state_change_leaves_nothing(request_approval, people, monkeypatch):
    from approvals.services import events as transition_events

    request = request_approval("medium")

    def broken(**kwargs):
        raise RuntimeError("outbox down")

    monkeypatch.setattr(transition_events, "transition_record", broken)
    with pytest.raises(RuntimeError):
        approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve")
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"
    action = Action.objects.get(pk=request.action_id)
    assert (action.status, action.approved_by) == ("PENDING_APPROVAL", None)
    assert events(request.action_id) == ["hitl.approval_requested"]


def test_admins_can_look_requests_up_but_not_edit_them(client, make_reviewer, request_approval):
    request = request_approval("high")
    client.force_login(make_reviewer("admin"))
    listing = client.get("/admin/approvals/approvalrequest/", {"state__exact": "pending"})
    assert listing.status_code == 200 and request.action_id in listing.content.decode()
    page = client.get(f"/admin/approvals/approvalrequest/{request.pk}/change/")
    assert page.status_code == 200 and "Save" not in page.content.decode()
    assert client.post(f"/admin/approvals/approvalrequest/{request.pk}/change/", {"state": "approved"}).status_code == 403
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"
