"""No secret (a webhook address's token, a signing secret, the SMTP password) in a log
line, a stored error or an admin page."""

import logging
import socket
import threading

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


def test_a_failed_post_stores_the_status_and_a_short_excerpt_without_secret_looking_values(
    receiver, make_channel, request_approval, caplog
):
    """A receiver's error page may echo anything it was sent or holds (tokens, keys):
    the stored error keeps the status and a short, scrubbed excerpt, never the page."""
    hex_run, b64_run = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "dGhpcyBpcyBhIHZlcnkgc2VjcmV0IHZhbHVlIQ=="
    page = (
        "<html><body><h1>Something broke</h1>"
        f"<pre>api_key=sk_live_51HxQ2eZvKYlo2C Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc123DEF456 "
        f"token: {hex_run} blob {b64_run} password=hunter2hunter2 {SIGNING}</pre>" + "<p>trace line</p>" * 400 + "</body></html>"
    )
    receiver.fail_first, receiver.answer_body = 1, page.encode()
    make_channel("webhook", receiver.url(f"/in/{TOKEN}"), signing_secret=SIGNING)
    caplog.set_level(logging.DEBUG)
    request_approval("critical")
    notifications_work()

    error = Notification.objects.get(channel__kind="webhook").last_error
    assert error.startswith("HTTP 500 Internal Server Error: <html><body><h1>Something broke</h1>"), error
    excerpt = error.removeprefix("HTTP 500 Internal Server Error: ")
    assert len(excerpt) <= 200 and "trace line" * 20 not in error
    secrets = ["sk_live_51HxQ2eZvKYlo2C", "eyJhbGciOiJIUzI1NiJ9", "abc123DEF456", hex_run, b64_run, "hunter2hunter2"]
    assert [s for s in [*secrets, SIGNING, TOKEN] if s in error] == []
    assert [s for s in [*secrets, SIGNING, TOKEN] if s in caplog.text] == []


@pytest.fixture
def refusing_mail_server():
    """An SMTP server on 127.0.0.1 that greets, then refuses the sender with a long reply
    holding secret-looking values."""
    server = socket.create_server(("127.0.0.1", 0))
    reply = "550 5.7.1 Relay denied for session key=" + "A1b2C3d4" * 8 + " " + "see the log, " * 60

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as lines:
                conn.sendall(b"220 mail.example ESMTP\r\n")
                for line in lines:
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        conn.sendall(b"250 mail.example\r\n")
                    elif verb == b"MAIL":
                        conn.sendall(reply.encode() + b"\r\n")
                    elif verb == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        break
                    else:
                        conn.sendall(b"250 ok\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def test_a_mail_server_refusal_is_stored_short_and_scrubbed(refusing_mail_server, email_channel, people, request_approval, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", refusing_mail_server
    request_approval("critical")
    notifications_work()
    [error] = Notification.objects.filter(attempts=1).values_list("last_error", flat=True)  # the others waited
    assert error.startswith("e-mail not accepted: SMTPSenderRefused 550: 5.7.1 Relay denied for session key=… see the log"), error
    assert len(error.split(": ", 1)[1]) <= 250
    assert "A1b2C3d4" not in "".join(Notification.objects.values_list("last_error", flat=True))
