"""Channels and the delivery record in Django admin."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from notifications.models import Channel, Notification
from notifications.services import notifications_work

pytestmark = pytest.mark.django_db

FORM = {
    "kind": "webhook", "url": "", "signing_secret": "", "enabled": "on", "on_requested": "on", "on_quarantined": "on",
    "on_reminder": "on", "on_expired": "on", "min_risk_level": "low",
}


@pytest.fixture
def admin_client(make_reviewer):
    client = Client()
    client.force_login(make_reviewer("admin", "root@example.com"))
    return client


def test_a_new_signed_webhook_gets_a_secret_shown_once_and_blank_fields_keep_what_is_stored(admin_client):
    response = admin_client.post(
        "/admin/notifications/channel/add/", {**FORM, "name": "Ops receiver", "url": "https://hooks.example.com/in/abc123"}
    )
    assert response.status_code == 302, response.content.decode()
    channel = Channel.objects.get(name="Ops receiver")
    shown = [str(m) for m in get_messages(response.wsgi_request) if "signing secret" in str(m)]
    assert channel.signing_secret.startswith("whsec_") and shown == [
        f"Copy this signing secret into the receiver now, it is not shown again: {channel.signing_secret}"
    ]

    response = admin_client.post(f"/admin/notifications/channel/{channel.pk}/change/", {**FORM, "name": "Ops receiver", "min_risk_level": "high"})
    assert response.status_code == 302
    kept = Channel.objects.get(pk=channel.pk)
    assert (kept.url, kept.signing_secret, kept.min_risk_level) == (channel.url, channel.signing_secret, "high")

    response = admin_client.post(
        f"/admin/notifications/channel/{channel.pk}/change/",
        {**FORM, "name": "Ops receiver", "url": "https://hooks.example.com/in/new", "signing_secret": "mine-now"},
    )
    assert response.status_code == 302
    assert Channel.objects.filter(pk=channel.pk, url="https://hooks.example.com/in/new", signing_secret="mine-now").exists()


def test_a_webhook_needs_an_address_and_email_has_none(admin_client):
    response = admin_client.post("/admin/notifications/channel/add/", {**FORM, "name": "No address", "kind": "slack"})
    assert response.status_code == 200 and "A webhook channel needs the address" in response.content.decode()
    response = admin_client.post(
        "/admin/notifications/channel/add/", {**FORM, "name": "Mail 2", "kind": "email", "url": "https://x.example/"}
    )
    assert response.status_code == 200 and "An e-mail channel has no address" in response.content.decode()


def test_the_delivery_record_is_listed_and_failed_ones_can_be_sent_again(admin_client, people, request_approval, email_channel, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.HITL_NOTIFY_MAX_ATTEMPTS = "127.0.0.1", 1, 1
    request = request_approval("critical")
    start = timezone.now()
    for minute in range(4):  # one try of a dead mail server per pass; the rest wait for the next
        notifications_work(now=start + timedelta(minutes=minute))
    page = admin_client.get("/admin/notifications/notification/?status=failed").content.decode()
    assert request.action_id in page and "e-mail not accepted" in page and "ada@example.com" in page

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    ids = list(Notification.objects.values_list("pk", flat=True))
    response = admin_client.post(
        "/admin/notifications/notification/", {"action": "send_again", "_selected_action": ids}, follow=True
    )
    assert len(ids) == 3  # ada, abe and root, the admins
    assert "3 notification(s) will be sent again." in response.content.decode()
    notifications_work()
    assert set(Notification.objects.values_list("status", "attempts")) == {("sent", 2)}
