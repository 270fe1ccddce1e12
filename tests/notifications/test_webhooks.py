"""Webhooks against a real HTTP server on 127.0.0.1: the signature a receiver can check,
retries with back-off, exactly one delivery, and the Slack format."""

import json
import time
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.services.decisions import approval_decide
from notifications.models import Notification, NotificationKind, NotificationStatus
from notifications.services import notifications_retry, notifications_work, notifications_write
from notifications.transports import signature, signature_valid
from tests.notifications.conftest import free_port

pytestmark = pytest.mark.django_db


def webhook_row():
    return Notification.objects.get(channel__kind__in=("webhook", "slack"))


def test_a_signed_webhook_that_fails_twice_is_retried_with_back_off_then_delivered_once(
    receiver, make_channel, request_approval, deal
):
    channel = make_channel("webhook", receiver.url())
    assert channel.signing_secret.startswith("whsec_")
    receiver.secret, receiver.fail_first = channel.signing_secret, 2
    request = request_approval("critical", deal_id=deal.deal_id)
    assert receiver.calls == []  # opening the request only wrote the row

    start = timezone.now()
    notifications_work(now=start)
    row = webhook_row()
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500 Internal Server Error: ok")
    assert row.next_attempt_at == start + timedelta(seconds=30)

    notifications_work(now=start + timedelta(seconds=20))  # not due yet
    assert len(receiver.calls) == 1

    second = start + timedelta(seconds=31)
    notifications_work(now=second)
    row = webhook_row()
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 2, second + timedelta(seconds=60))  # doubled

    notifications_work(now=second + timedelta(seconds=61))
    notifications_work(now=second + timedelta(seconds=600))
    row = webhook_row()
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, "")
    assert len(receiver.calls) == 3 and all(call["signed"] for call in receiver.calls)
    [delivered] = receiver.accepted

    body = delivered["json"]
    assert body["kind"] == "requested" and body["notification_id"] == row.pk
    assert delivered["headers"]["X-ZakOps-Notification"] == str(row.pk)
    assert body["action"] == {
        "action_id": request.action_id, "title": "A critical action", "action_type": "COMMUNICATION.SEND_EMAIL",
        "deal_id": "DL-0042", "deal_name": "Acme Industrial",
    }
    assert body["request"]["risk_level"] == "critical" and body["request"]["request_id"] == str(request.pk)
    assert body["url"] == f"https://hitl.example.com/actions/{request.action_id}/"
    assert body["time_left"].startswith("3 h")


def test_a_receiver_that_does_not_know_the_secret_refuses_the_call(receiver, make_channel, request_approval):
    make_channel("webhook", receiver.url())
    receiver.secret = "not-the-channel-secret"
    request_approval("high")
    notifications_work()
    assert receiver.calls[0]["status"] == 401
    assert webhook_row().last_error.startswith("HTTP 401")


def test_the_signature_scheme_is_hmac_sha256_over_timestamp_and_body():
    body = json.dumps({"kind": "requested"}).encode()
    now = int(time.time())
    header = signature(secret="s3cret", timestamp=now, body=body)
    assert header.startswith(f"t={now},v1=") and len(header.split("v1=")[1]) == 64
    assert signature_valid(secret="s3cret", header=header, body=body)
    assert not signature_valid(secret="s3cret", header=header, body=body + b" ")
    assert not signature_valid(secret="other", header=header, body=body)
    old = signature(secret="s3cret", timestamp=now - 301, body=body)
    assert not signature_valid(secret="s3cret", header=old, body=body)  # a replay of an old call
    assert not signature_valid(secret="s3cret", header="garbage", body=body)


def test_a_slack_channel_gets_an_incoming_webhook_text(receiver, make_channel, request_approval, deal):
    channel = make_channel("slack", receiver.url("/services/T000/B000/XXXX"))
    assert channel.signing_secret == ""
    request = request_approval("high", deal_id=deal.deal_id)
    notifications_work()
    [call] = receiver.accepted
    assert call["path"] == "/services/T000/B000/XXXX" and list(call["json"]) == ["text"]
    text = call["json"]["text"]
    assert text.startswith("*Approval needed (high): A high action*\n")
    assert "Type: DOCUMENT.GENERATE_LOI" in text and "Risk level: high" in text and "Deal: Acme Industrial (DL-0042)" in text
    assert "Time left: 7 h 59 min" in text
    assert f"<https://hitl.example.com/actions/{request.action_id}/|Open {request.action_id} in ZakOps HITL>" in text
    assert webhook_row().status == "sent"


def test_after_max_attempts_it_fails_for_good_and_admin_can_send_it_again(receiver, make_channel, request_approval, settings):
    settings.HITL_NOTIFY_MAX_ATTEMPTS = 2
    make_channel("slack", receiver.url())
    receiver.fail_first = 10
    request_approval("high")
    start = timezone.now()
    notifications_work(now=start)
    notifications_work(now=start + timedelta(minutes=5))
    notifications_work(now=start + timedelta(minutes=50))
    row = webhook_row()
    assert (row.status, row.attempts) == ("failed", 2) and len(receiver.calls) == 2

    receiver.fail_first = 0
    assert notifications_retry(notifications=Notification.objects.all()) == 1
    notifications_work()
    row = webhook_row()
    assert (row.status, row.attempts) == ("sent", 3) and len(receiver.accepted) == 1


def test_a_receiver_that_is_down_is_a_failure_to_retry(make_channel, request_approval):
    make_channel("slack", f"http://127.0.0.1:{free_port()}/never")
    request_approval("high")
    notifications_work()
    row = webhook_row()
    assert row.status == "pending" and row.last_error.startswith("could not connect")


def test_a_claim_left_by_a_worker_that_died_is_taken_again_after_it_runs_out(receiver, make_channel, request_approval):
    make_channel("slack", receiver.url())
    request_approval("high")
    now = timezone.now()
    Notification.objects.update(status="sending", claimed_until=now + timedelta(seconds=60), attempts=1)
    notifications_work(now=now)
    assert receiver.calls == []  # another worker holds it
    notifications_work(now=now + timedelta(seconds=61))
    assert len(receiver.accepted) == 1 and webhook_row().status == "sent"


def test_one_row_per_event_and_channel_and_recipient(make_channel, request_approval, people, email_channel):
    make_channel("slack", "https://hooks.slack.com/services/T/B/X")
    request = request_approval("medium")
    before = Notification.objects.count()
    assert before == 5  # four reviewers by e-mail, one post
    assert notifications_write(kind=NotificationKind.REQUESTED, request=request, action=request.action) is None
    assert Notification.objects.count() == before
    row = Notification.objects.filter(channel__kind="email").first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(event=row.event, channel=row.channel, recipient=row.recipient, max_attempts=1)


def test_a_quarantine_posts_to_the_channels_that_take_it(receiver, make_channel, request_approval, people):
    make_channel("webhook", receiver.url(), on_requested=False)
    request = request_approval("medium")
    assert not Notification.objects.filter(channel__kind="webhook").exists()
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="quarantine", reason="Check the amount.")
    notifications_work()
    [call] = receiver.accepted
    assert call["json"]["kind"] == "quarantined" and call["json"]["reason"] == "Check the amount."
    assert call["json"]["actor"] == "olu@example.com"
    assert webhook_row().status == NotificationStatus.SENT


def test_switching_a_channel_off_stops_what_waits_for_it(receiver, make_channel, request_approval):
    channel = make_channel("webhook", receiver.url())
    request_approval("high")
    channel.enabled = False
    channel.save()
    notifications_work()
    assert receiver.calls == []
    assert (webhook_row().status, webhook_row().last_error) == ("skipped", "Not sent: the channel was disabled.")


def test_nothing_is_sent_when_another_worker_took_the_notification_over_while_its_name_resolved(
    receiver, make_channel, request_approval, resolver, caplog
):
    """A lookup that hangs past the hold: the notification is someone else's by then, so
    this worker must not post it too."""
    other_worker = uuid.uuid4()

    def slow_lookup():  # meanwhile, the hold ran out and another worker claimed it
        Notification.objects.update(claim=other_worker)
        return ["127.0.0.1"]

    resolver.answers["hooks.example.test"] = slow_lookup
    make_channel("slack", f"http://hooks.example.test:{receiver.port}/in")
    request_approval("high")
    _, counts = notifications_work()
    assert receiver.calls == [] and counts.handled == 0
    row = webhook_row()
    assert (row.status, row.claim) == ("sending", other_worker)  # left to the worker that holds it
    assert "another worker took it over before it was sent" in caplog.text


def test_a_pass_told_to_stop_ends_after_the_message_in_hand_and_holds_nothing(receiver, make_channel, request_approval):
    make_channel("slack", receiver.url())
    for _ in range(3):
        request_approval("high")
    _, counts = notifications_work(stop=lambda: len(receiver.calls) >= 1)
    assert counts.sent == 1 and len(receiver.calls) == 1
    assert sorted(Notification.objects.values_list("status", flat=True)) == ["pending", "pending", "sent"]
    notifications_work()
    assert len(receiver.accepted) == 3
