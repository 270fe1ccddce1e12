"""E-mail through Django's locmem backend: who is written to about what, and what the
message says. Rows are written with the transition; the worker sends them."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.selectors import actor_of
from approvals.models import ApprovalRequest
from approvals.services.decisions import approval_decide
from approvals.services.expiry import approvals_expire
from approvals.services.requests import approval_request
from notifications.models import Notification, NotificationEvent, NotificationStatus

pytestmark = pytest.mark.django_db


def deliver():
    call_command("hitl_notify", "--once", stdout=open("/dev/null", "w"))


def email_recipients(kind: str | None = None) -> list[str]:
    rows = Notification.objects.filter(channel__kind="email")
    if kind:
        rows = rows.filter(event__kind=kind)
    return sorted(rows.values_list("recipient", flat=True))


def test_a_critical_request_emails_the_admins_who_may_decide_it_with_everything_they_need(
    people, request_approval, deal, email_channel, make_reviewer
):
    request = request_approval("critical", requested_by="abe@example.com", deal_id=deal.deal_id)
    # Written with the request, not sent: sending is the worker's.
    assert email_recipients() == ["ada@example.com"]  # abe asked for it; operators and viewers may not decide it
    assert mail.outbox == []

    deliver()
    [email] = mail.outbox
    assert email.to == ["ada@example.com"]
    assert email.subject == "[ZakOps HITL] Approval needed (critical): A critical action"
    link = f"https://hitl.example.com/actions/{request.action_id}/"
    for expected in (
        "Title: A critical action", "Type: COMMUNICATION.SEND_EMAIL", "Risk level: critical",
        "Deal: Acme Industrial (DL-0042)", "Time left: 3 h 59 min", "Requested by: abe@example.com", f"Open it: {link}",
    ):
        assert expected in email.body, expected
    assert Notification.objects.get().status == NotificationStatus.SENT

    # The link is the request's detail page.
    client = Client()
    client.force_login(make_reviewer("admin", "ann@example.com"))
    page = client.get(link.removeprefix("https://hitl.example.com"))
    assert page.status_code == 200 and "A critical action" in page.content.decode()


def test_a_medium_request_goes_to_operators_and_admins_never_to_viewers_or_the_requester(people, request_approval, email_channel):
    request_approval("medium", requested_by="OLU@example.com")  # four-eyes matches whatever the case
    assert email_recipients() == ["abe@example.com", "ada@example.com", "oona@example.com"]
    deliver()
    assert sorted(address for email in mail.outbox for address in email.to) == email_recipients()
    assert all(len(email.to) == 1 for email in mail.outbox)  # nobody sees who else was told


def test_the_requester_gets_nothing_even_as_the_only_admin(make_reviewer, request_approval, email_channel):
    make_reviewer("admin", "rita@example.com")
    request_approval("critical", requested_by="rita@example.com")
    deliver()
    assert email_recipients() == [] and mail.outbox == []


def test_a_request_approved_automatically_sends_nothing(people, engine, email_channel):
    request, _ = approval_request(action_id="ACT-READ-1", action_type="DEAL.GET_DETAILS", requester=engine)
    assert request.state == "approved"
    assert not NotificationEvent.objects.exists() and not Notification.objects.exists()


def test_a_quarantine_tells_the_admins_but_not_the_admin_who_quarantined(people, request_approval, email_channel):
    request = request_approval("medium")
    Notification.objects.all().delete()
    approval_decide(action_id=request.action_id, actor=people["admin"], decision="quarantine", reason="Amount looks wrong.")
    assert email_recipients("quarantined") == ["abe@example.com"]
    deliver()
    [email] = mail.outbox
    assert email.subject == "[ZakOps HITL] Quarantined (medium): A medium action"
    assert "ada@example.com quarantined this request" in email.body and "Reason: Amount looks wrong." in email.body


def test_an_operators_quarantine_goes_to_every_admin(people, request_approval, email_channel):
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="quarantine", reason="Odd.")
    assert email_recipients("quarantined") == ["abe@example.com", "ada@example.com"]


def test_an_expiry_sends_the_admins_a_summary(people, request_approval, email_channel):
    request = request_approval("high", requested_by="ada@example.com")
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert approvals_expire() == 1
    assert email_recipients("expired") == ["abe@example.com"]  # admins only; ada asked for it
    deliver()
    [summary] = [email for email in mail.outbox if "Expired" in email.subject]
    assert summary.subject == "[ZakOps HITL] Expired undecided (high): A high action"
    assert "Nobody decided this request" in summary.body and "Time left: none" in summary.body
    assert "Type: DOCUMENT.GENERATE_LOI" in summary.body and f"/actions/{request.action_id}/" in summary.body


def test_a_request_decided_before_the_worker_runs_is_not_sent(people, request_approval, email_channel):
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["admin"], decision="approve")
    deliver()
    assert mail.outbox == []
    assert set(Notification.objects.values_list("status", "last_error")) == {
        (NotificationStatus.SKIPPED, "Not sent: the request was approved before it went out.")
    }


def test_switching_the_email_channel_off_or_raising_its_level_sends_less(people, request_approval, email_channel):
    email_channel.min_risk_level = "high"
    email_channel.save()
    request_approval("medium")
    assert email_recipients() == []
    request_approval("high")
    assert len(email_recipients()) == 4
    email_channel.enabled = False
    email_channel.save()
    request_approval("critical")
    assert len(email_recipients()) == 4


def test_a_deactivated_or_viewer_account_is_never_written_to(people, make_reviewer, request_approval, email_channel):
    gone = make_reviewer("admin", "gone@example.com")
    gone.is_active = False
    gone.save()
    request_approval("critical")
    assert email_recipients() == ["abe@example.com", "ada@example.com"]
    assert actor_of(gone).role == "admin"
