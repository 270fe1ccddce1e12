"""Reminders: when the configured share of a request's time is left and nobody decided,
the people who may decide it are reminded, once."""

from datetime import timedelta

import pytest
from django.core import mail

from approvals.services.decisions import approval_decide
from notifications.models import NotificationEvent
from notifications.services import notifications_work

pytestmark = pytest.mark.django_db


def reminders():
    return [email for email in mail.outbox if "Reminder" in email.subject]


def test_a_reminder_is_sent_once_when_a_quarter_of_the_time_is_left(people, request_approval, email_channel):
    request = request_approval("critical")  # four hours: the reminder falls due one hour before the end
    notifications_work(now=request.created_at)
    mail.outbox.clear()

    assert notifications_work(now=request.expires_at - timedelta(minutes=61))[0] == 0
    assert reminders() == []

    due = request.expires_at - timedelta(minutes=59, seconds=30)
    reminded, counts = notifications_work(now=due)
    assert reminded == 1 and counts.sent == 2
    assert sorted(email.to[0] for email in reminders()) == ["abe@example.com", "ada@example.com"]
    email = reminders()[0]
    assert email.subject == "[ZakOps HITL] Reminder, 59 min left (critical): A critical action"
    assert "expires in 59 min" in email.body and f"/actions/{request.action_id}/" in email.body

    # The worker again, later, and again: still one reminder each.
    assert notifications_work(now=due + timedelta(minutes=1))[0] == 0
    assert notifications_work(now=due + timedelta(minutes=30))[0] == 0
    assert len(reminders()) == 2
    assert NotificationEvent.objects.filter(kind="reminder").count() == 1


def test_the_share_is_configurable_and_zero_sends_no_reminder(settings, people, request_approval, email_channel):
    settings.HITL_NOTIFY_REMINDER_PERCENT = 50
    early = request_approval("critical")
    settings.HITL_NOTIFY_REMINDER_PERCENT = 0
    never = request_approval("critical")
    notifications_work(now=early.created_at + timedelta(hours=2, minutes=1))
    assert {event.request_id for event in NotificationEvent.objects.filter(kind="reminder")} == {early.pk}
    notifications_work(now=never.expires_at - timedelta(seconds=1))
    assert not NotificationEvent.objects.filter(kind="reminder", request=never).exists()


def test_a_decided_or_expired_request_is_not_reminded(people, request_approval, email_channel):
    decided, late = request_approval("medium"), request_approval("medium")
    approval_decide(action_id=decided.action_id, actor=people["admin"], decision="approve")
    notifications_work(now=decided.expires_at - timedelta(hours=1))
    assert NotificationEvent.objects.filter(kind="reminder").values_list("request_id", flat=True).get() == late.pk
    notifications_work(now=late.expires_at + timedelta(seconds=1))
    assert NotificationEvent.objects.filter(kind="reminder").count() == 1


def test_a_quarantined_request_reminds_the_admins_only(people, request_approval, email_channel):
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["admin"], decision="quarantine", reason="Check it.")
    mail.outbox.clear()
    notifications_work(now=request.expires_at - timedelta(hours=2))
    assert sorted(email.to[0] for email in reminders()) == ["abe@example.com", "ada@example.com"]
