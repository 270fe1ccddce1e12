"""No secret (a webhook address's token, a signing secret, the SMTP password) in a log
line, a stored error or an admin page."""

import logging

import pytest
from django.test import Client

from notifications.models import Channel, Notification
from notifications.services import notifications_work
from tests.notifications.conftest import free_port

pytestmark = pytest.mark.django_db

TOKEN = "T0AAA1B2/B0CCC3D4/Xy9SecretToken42"
SIGNING = "whsec_do-not-leak-this-signing-secret"
SMTP_PASSWORD = "smtp-Pa55word-never-logged"


@pytest.fixture
def leaky_setup(receiver, make_channel, email_channel, people, request_approval, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "hitl-mailer", SMTP_PASSWORD
    receiver.fail_first = 100
    receiver.answer_body = f"no such hook /services/{TOKEN}".encode()  # a receiver that echoes the path
    make_channel("slack", receiver.url(f"/services/{TOKEN}"), name="slack-ops")
    make_channel("webhook", f"http://127.0.0.1:{free_port()}/in/{TOKEN}?key={TOKEN}", name="signed", signing_secret=SIGNING)
    request_approval("critical")


def leaked(text: str) -> list[str]:
    return [secret for secret in (TOKEN, "Xy9SecretToken42", SIGNING, SMTP_PASSWORD) if secret in text]


def test_failures_are_logged_and_stored_without_secrets(leaky_setup, caplog):
    caplog.set_level(logging.DEBUG)
    _, counts = notifications_work()
    assert counts.retrying == 4  # two e-mails (admins), two webhooks
    assert "slack-ops" in caplog.text and "HTTP 500" in caplog.text and "ConnectionRefusedError" in caplog.text
    assert leaked(caplog.text) == []
    errors = "\n".join(Notification.objects.values_list("last_error", flat=True))
    assert "HTTP 500 Internal Server Error: no such hook …" in errors
    assert leaked(errors) == []


def test_admin_pages_show_channels_masked(leaky_setup, make_reviewer):
    notifications_work()
    client = Client()
    client.force_login(make_reviewer("admin", "root@example.com"))
    channels = client.get("/admin/notifications/channel/").content.decode()
    assert f"http://127.0.0.1:{Channel.objects.get(name='slack-ops').url.split(':')[2].split('/')[0]}/…" in channels
    pages = [channels, client.get("/admin/notifications/notification/").content.decode()]
    for channel in Channel.objects.all():
        page = client.get(f"/admin/notifications/channel/{channel.pk}/change/")
        assert page.status_code == 200
        pages.append(page.content.decode())
        if channel.name == "signed":
            assert "A secret is stored (leave empty to keep it)." in pages[-1]
    assert [leaked(page) for page in pages] == [[]] * len(pages)
