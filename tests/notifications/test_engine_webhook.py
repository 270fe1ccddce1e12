"""The engine webhook: every approval, rejection, expiry and cancellation reaches the
engine once, as a signed `hitl.decided` that the Python client's verify_webhook accepts,
through the notifications' retries and address rules."""

import importlib.util
import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from approvals.models import EXPIRED_REASON, ApprovalRequest
from approvals.services.cancel import approval_cancel
from approvals.services.decisions import approval_decide
from approvals.services.expiry import approvals_expire
from notifications.models import Channel, Notification, NotificationEvent
from notifications.services import notifications_work, notifications_write

pytestmark = pytest.mark.django_db

CLIENT_WEBHOOKS = Path(__file__).resolve().parents[2] / "clients/python/src/zakops_hitl_client/webhooks.py"


def client_webhooks():
    """The client's webhooks module, loaded from its file: the receiver's side, as an
    engine installs it (standard library only, no Django)."""
    spec = importlib.util.spec_from_file_location("zakops_hitl_client_webhooks", CLIENT_WEBHOOKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


webhooks = client_webhooks()


@pytest.fixture
def engine_channel(make_channel, receiver):
    return make_channel("engine", receiver.url("/hitl/events"), name="engine")


def events_received(receiver, secret: str) -> list[dict]:
    """Every call accepted at the engine's address, checked as the engine checks it."""
    return [
        webhooks.verify_webhook(secret, call["body"], dict(call["headers"]))
        for call in receiver.accepted if call["path"] == "/hitl/events"
    ]


def test_an_approval_with_edits_a_rejection_and_a_cancellation_each_reach_the_engine_once_signed(
    engine_channel, receiver, request_approval, people, engine, make_channel, email_channel
):
    make_channel("webhook", receiver.url("/people"))  # a notifications webhook: not told of decisions
    approved, rejected, cancelled = (request_approval("medium") for _ in range(3))
    notifications_work()  # the three "requested" posts to the notifications webhook
    approval_decide(
        action_id=approved.action_id, actor=people["operator"], decision="approve", inputs={"subject": "Revised terms"}
    )
    approval_decide(action_id=rejected.action_id, actor=people["operator"], decision="reject", reason="Wrong deal.")
    approval_cancel(action_id=cancelled.action_id, actor=engine, reason="The agent changed its plan.")
    assert not [call for call in receiver.calls if call["path"] == "/hitl/events"]  # a decision only wrote rows

    notifications_work()
    notifications_work()  # a second pass sends nothing again
    calls = [call for call in receiver.accepted if call["path"] == "/hitl/events"]
    assert len(calls) == 3 and len(receiver.calls) == len(receiver.accepted)
    events = {event["action_id"]: event for event in events_received(receiver, engine_channel.signing_secret)}

    event = events[approved.action_id]
    approved.refresh_from_db()
    assert event["state"] == "approved" and event["approved_inputs"] == {"subject": "Revised terms"}
    assert event["edited"] is True and event["decided_by"] == "olu@example.com"
    assert event["request_id"] == str(approved.pk) and event["at"] == approved.decided_at.isoformat()
    assert events[rejected.action_id] | {"event_id": "", "at": ""} == {
        "type": "hitl.decided", "event_id": "", "action_id": rejected.action_id, "request_id": str(rejected.pk),
        "round": 1, "action_type": "COMMUNICATION.DRAFT_EMAIL", "risk_level": "medium", "state": "rejected",
        "approved_inputs": None, "edited": False, "reason": "Wrong deal.", "decided_by": "olu@example.com", "at": "",
    }
    assert (events[cancelled.action_id]["state"], events[cancelled.action_id]["decided_by"]) == ("cancelled", "action-engine")
    assert events[cancelled.action_id]["reason"] == "The agent changed its plan."
    assert len({event["event_id"] for event in events.values()}) == 3
    for call in calls:
        assert call["headers"]["X-Hitl-Event"] == "hitl.decided"
        assert call["headers"]["X-Hitl-Event-Id"] == call["json"]["event_id"]
    assert [call["json"]["kind"] for call in receiver.accepted if call["path"] == "/people"] == ["requested"] * 3


def test_an_expiry_reaches_the_engine_once(engine_channel, receiver, request_approval):
    request = request_approval("high")
    later = request.expires_at + timedelta(seconds=1)
    assert approvals_expire(now=later) == 1 and approvals_expire(now=later) == 0
    notifications_work()
    notifications_work()
    [event] = events_received(receiver, engine_channel.signing_secret)
    assert (event["action_id"], event["state"], event["reason"]) == (request.action_id, "expired", EXPIRED_REASON)
    assert event["decided_by"] == "zakops-hitl" and event["at"] == request.expires_at.isoformat()
    assert event["approved_inputs"] is None


def test_a_request_needing_two_admins_is_pushed_when_the_second_approves_not_at_the_first_vote(
    engine_channel, receiver, request_approval, people
):
    request = request_approval("critical")
    approval_decide(action_id=request.action_id, actor=people["admin"], decision="approve", reason="Recipient checked.")
    notifications_work()
    assert receiver.calls == []  # a vote is not a decision
    approval_decide(action_id=request.action_id, actor=people["admin2"], decision="approve", reason="Agreed.")
    notifications_work()
    [event] = events_received(receiver, engine_channel.signing_secret)
    assert (event["state"], event["decided_by"], event["approved_inputs"]) == (
        "approved", "abe@example.com", {"to": "cfo@seller.example"}
    )


def test_a_quarantine_is_not_an_end_and_is_not_pushed(engine_channel, receiver, request_approval, people):
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="quarantine", reason="Check it.")
    notifications_work()
    assert receiver.calls == [] and not Notification.objects.filter(channel=engine_channel).exists()


def test_a_receiver_that_fails_then_answers_gets_the_event_once_after_the_retry(
    engine_channel, receiver, request_approval, people
):
    receiver.fail_first = 1
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve")
    start = timezone.now()
    notifications_work(now=start)
    row = Notification.objects.get(channel=engine_channel)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500 Internal Server Error: ok")
    assert row.next_attempt_at == start + timedelta(seconds=30)
    notifications_work(now=start + timedelta(seconds=10))  # not due yet
    notifications_work(now=start + timedelta(seconds=31))
    notifications_work(now=start + timedelta(minutes=30))
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(receiver.calls) == 2
    assert receiver.calls[0]["headers"]["X-Hitl-Event-Id"] == receiver.calls[1]["headers"]["X-Hitl-Event-Id"]
    [event] = events_received(receiver, engine_channel.signing_secret)  # each try signed anew, and valid
    assert event["state"] == "approved"


def test_the_server_signature_checks_with_the_client_and_tampering_or_a_wrong_secret_do_not(
    engine_channel, receiver, request_approval, people
):
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="reject", reason="No.")
    notifications_work()
    [call] = receiver.accepted
    headers, body, secret = dict(call["headers"]), call["body"], engine_channel.signing_secret
    assert webhooks.verify_webhook(secret, body, headers)["state"] == "rejected"
    forged = json.dumps({**call["json"], "state": "approved"}, separators=(",", ":"), sort_keys=True).encode()
    for args in ((secret, forged, headers), ("whsec_not-the-channel-secret", body, headers)):
        with pytest.raises(webhooks.WebhookVerificationError, match="does not match"):
            webhooks.verify_webhook(*args)
    signed_at = int(headers["X-Hitl-Signature"].split(",")[0][2:])
    with pytest.raises(webhooks.WebhookVerificationError, match="away from this clock"):
        webhooks.verify_webhook(secret, body, headers, now=signed_at + 301)


def test_with_no_engine_channel_a_decision_writes_no_event(receiver, request_approval, people, make_channel):
    make_channel("webhook", receiver.url())
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve")
    assert not NotificationEvent.objects.filter(kind="decided").exists()


def test_a_disabled_engine_channel_is_told_nothing(engine_channel, receiver, request_approval, people):
    engine_channel.enabled = False
    engine_channel.save()
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve")
    notifications_work()
    assert receiver.calls == []


# --- address rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, why",
    [
        ("http://10.1.2.3/hitl", "a private network address"),
        ("http://192.168.0.7:8080/hitl", "a private network address"),
        ("http://169.254.169.254/latest/meta-data", "a link-local address"),
        ("http://[fe80::1]/hitl", "a link-local address"),
        ("http://127.0.0.1:9000/hitl", "a loopback address"),
        ("http://localhost:9000/hitl", "localhost"),
        ("ftp://engine.example.com/hitl", "only http:// and https://"),
    ],
)
def test_admin_refuses_an_engine_webhook_inside_the_network(admin_client, url, why, settings):
    settings.HITL_WEBHOOK_ALLOWED_HOSTS = []  # as in production: nothing inside the network allowed
    response = admin_client.post("/admin/notifications/channel/add/", {**ENGINE_FORM, "url": url})
    assert response.status_code == 200
    assert why in response.content.decode()
    assert url.startswith("ftp:") or "HITL_WEBHOOK_ALLOWED_HOSTS" in response.content.decode()
    assert not Channel.objects.filter(name="Engine").exists()


def test_admin_saves_a_public_engine_webhook_with_a_secret_shown_once_then_never_again(admin_client):
    response = admin_client.post("/admin/notifications/channel/add/", {**ENGINE_FORM, "url": "https://engine.example.com/hitl/events"})
    assert response.status_code == 302, response.content.decode()
    channel = Channel.objects.get(name="Engine")
    assert channel.kind == "engine" and channel.signing_secret.startswith("whsec_")
    listing = admin_client.get("/admin/notifications/channel/").content.decode()
    assert "every decision, expiry and cancellation" in listing and "https://engine.example.com/…" in listing
    page = admin_client.get(f"/admin/notifications/channel/{channel.pk}/change/").content.decode()
    assert channel.signing_secret not in page and "/hitl/events" not in page
    assert "A secret is stored" in page


def test_a_name_that_resolves_inside_the_network_is_refused_at_send_time_without_connecting(
    make_channel, request_approval, people, resolver, connections_made, settings
):
    settings.HITL_WEBHOOK_ALLOWED_HOSTS = []
    resolver.answers["engine.example.com"] = ["10.0.0.9"]  # public when saved, rebound since
    channel = make_channel("engine", "https://engine.example.com/hitl")
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve")
    notifications_work()
    row = Notification.objects.get(channel=channel)
    assert row.status == "failed" and "resolves to 10.0.0.9, a private network address" in row.last_error
    assert connections_made == []


def test_a_public_address_is_posted_to(make_channel, request_approval, people, resolver, connections_made, settings):
    settings.HITL_WEBHOOK_ALLOWED_HOSTS = []
    resolver.answers["engine.example.com"] = ["93.184.215.14"]
    channel = make_channel("engine", "http://engine.example.com/hitl")
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve")
    notifications_work()
    assert connections_made == ["93.184.215.14"]  # the test's guard refused it before a packet left
    row = Notification.objects.get(channel=channel)
    assert row.status == "pending" and row.last_error.startswith("could not connect")


def test_the_secret_is_in_no_log_line_or_stored_error(engine_channel, receiver, request_approval, people, caplog):
    caplog.set_level(logging.DEBUG)
    secret = engine_channel.signing_secret
    receiver.fail_first = 1
    receiver.answer_body = f"bad signature for key {secret}".encode()  # a receiver that echoes it
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve")
    notifications_work()
    row = Notification.objects.get(channel=engine_channel)
    assert row.last_error.startswith("HTTP 500") and secret not in row.last_error
    assert "channel 'engine' (engine)" in caplog.text and secret not in caplog.text


def test_create_notify_channel_makes_an_engine_webhook(capsys):
    call_command("create_notify_channel", "engine", "--kind", "engine", "--url", "https://engine.example.com/hitl")
    out = capsys.readouterr().out.splitlines()
    channel = Channel.objects.get(name="engine")
    assert out[0] == (
        "Created channel 'engine' (engine) posting to https://engine.example.com/…, "
        "sending every decision, expiry and cancellation."
    )
    assert "X-Hitl-Signature" in out[1] and out[2] == channel.signing_secret


ENGINE_FORM = {
    "name": "Engine", "kind": "engine", "url": "", "signing_secret": "", "enabled": "on", "min_risk_level": "low",
}


@pytest.fixture
def admin_client(make_reviewer):
    client = Client()
    client.force_login(make_reviewer("admin", "root@example.com"))
    return client


def test_every_end_of_a_request_is_one_event_row(engine_channel, request_approval, people, engine):
    """A unique (request, kind) row: a second writer of the same end writes nothing."""
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve")
    request = ApprovalRequest.objects.get(pk=request.pk)
    assert notifications_write(kind="decided", request=request, action=request.action) is None
    assert NotificationEvent.objects.filter(request=request, kind="decided").count() == 1
    assert Notification.objects.filter(channel=engine_channel).count() == 1
