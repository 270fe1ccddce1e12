"""Webhooks go to the public internet only (no server-side request forgery): an address
inside the network is refused when a channel is saved and again when a message is sent,
for every address its name resolves to, unless an admin lists the host in
HITL_WEBHOOK_ALLOWED_HOSTS. No test here connects anywhere but 127.0.0.1: names are
resolved by a stub, and any other connection is stopped before it is made."""

import io
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from notifications import transports
from notifications.models import Channel, Notification
from notifications.services import notifications_work

pytestmark = pytest.mark.django_db

INSIDE = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.8.9.10:8080/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://10.1.2.3/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("http://172.31.255.254/hook", "private"),
    ("http://192.168.1.20/hook", "private"),
    ("http://[fd00::1]/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://[::]/hook", "unspecified"),
    ("http://localhost/hook", "this machine"),
    ("http://LOCALHOST./hook", "this machine"),
    ("http://hooks.localhost/hook", "this machine"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://[::ffff:169.254.169.254]/hook", "link-local"),
    ("http://[64:ff9b::a00:1]/hook", "private"),  # NAT64 of 10.0.0.1
    ("http://2130706433/hook", "loopback"),  # 127.0.0.1 as one number
    ("http://0x7f.1/hook", "loopback"),
    ("http://127.1/hook", "loopback"),
    ("http://0177.0.0.1/hook", "loopback"),  # octal
    ("http://100.64.0.1/hook", "carrier-grade NAT"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://[ff02::1]/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://255.255.255.255/hook", "reserved"),
]


def channel_errors(url: str, kind: str = "webhook") -> list[str]:
    try:
        Channel(name="Receiver", kind=kind, url=url).full_clean()
    except ValidationError as exc:
        return exc.message_dict.get("url", [])
    return []


@pytest.fixture
def nothing_allowed(settings):
    settings.HITL_WEBHOOK_ALLOWED_HOSTS = []


@pytest.mark.parametrize(("url", "why"), INSIDE)
def test_an_address_inside_the_network_can_not_be_saved(url, why, nothing_allowed):
    errors = channel_errors(url, kind="slack")
    assert any(why in error and "HITL_WEBHOOK_ALLOWED_HOSTS" in error for error in errors), errors


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/in", "gopher://hooks.example.com/", "file:///etc/passwd"])
def test_only_http_and_https_addresses_are_accepted(url, nothing_allowed):
    assert channel_errors(url), url


@pytest.mark.parametrize("url", ["https://hooks.slack.com/services/T/B/X", "http://93.184.216.34/in", "https://[2606:4700::1]/in"])
def test_a_public_address_is_accepted(url, nothing_allowed):
    assert channel_errors(url) == []


def test_an_admin_allows_an_inside_host_by_name_or_address(settings):
    settings.HITL_WEBHOOK_ALLOWED_HOSTS = ["hooks.localhost", "10.1.2.3", "::1"]
    assert channel_errors("http://hooks.localhost:9000/in") == []
    assert channel_errors("http://10.1.2.3/in") == []
    assert channel_errors("http://[::1]/in") == []
    assert channel_errors("http://10.1.2.4/in") != []


def test_the_admin_form_names_the_field_and_why(make_reviewer, nothing_allowed):
    client = Client()
    client.force_login(make_reviewer("admin", "root@example.com"))
    response = client.post(
        "/admin/notifications/channel/add/",
        {
            "name": "Metadata", "kind": "webhook", "url": "http://169.254.169.254/latest/meta-data/", "signing_secret": "",
            "enabled": "on", "on_requested": "on", "min_risk_level": "low",
        },
    )
    page = response.content.decode()
    assert response.status_code == 200 and not Channel.objects.filter(name="Metadata").exists()
    assert "169.254.169.254 is a link-local address" in page and 'id="id_url"' in page


def test_create_notify_channel_refuses_an_inside_address(nothing_allowed):
    with pytest.raises(CommandError, match="url: Refused: 10.0.0.8 is a private network address"):
        call_command("create_notify_channel", "x", "--kind", "slack", "--url", "http://10.0.0.8/hook", stdout=io.StringIO())
    assert not Channel.objects.filter(name="x").exists()


# --- when sending ----------------------------------------------------------------------


def stored_channel(kind: str, url: str) -> Channel:
    """A channel written past validation (an old row, a data fix, the allow-list shortened
    since): the send-time check is the one that counts."""
    channel = Channel.objects.create(name=f"{kind} {url}", kind=kind, url=url, signing_secret="whsec_test")
    return channel


def webhook_row() -> Notification:
    return Notification.objects.get(channel__kind__in=("webhook", "slack"))


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://127.0.0.1:9/hook", "Refused: 127.0.0.1 is a loopback address"),
        ("http://2130706433/hook", "Refused: 2130706433 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "Refused: 169.254.169.254 is a link-local address"),
        ("http://[::ffff:10.0.0.1]/hook", "Refused: ::ffff:10.0.0.1 is a private network address"),
    ],
)
def test_a_stored_inside_address_fails_at_send_time_without_a_connection(
    url, error, nothing_allowed, request_approval, connections_made, resolver
):
    stored_channel("webhook", url)
    request_approval("high")
    _, counts = notifications_work()
    row = webhook_row()
    assert (row.status, counts.failed) == ("failed", 1)  # refused for good: retrying would change nothing
    assert row.last_error.startswith(error) and "HITL_WEBHOOK_ALLOWED_HOSTS" in row.last_error
    assert connections_made == [] and resolver.asked == []


@pytest.mark.parametrize(
    ("addresses", "error"),
    [
        (["10.0.0.7"], "Refused: hooks.example.com resolves to 10.0.0.7, a private network address"),
        (["93.184.216.34", "169.254.169.254"], "Refused: hooks.example.com resolves to 169.254.169.254, a link-local"),
        (["::1"], "Refused: hooks.example.com resolves to ::1, a loopback address"),
        (["::ffff:127.0.0.1"], "Refused: hooks.example.com resolves to ::ffff:127.0.0.1, a loopback address"),
    ],
)
def test_a_name_resolving_inside_is_refused_when_sending(
    addresses, error, nothing_allowed, request_approval, connections_made, resolver
):
    resolver.answers["hooks.example.com"] = addresses
    stored_channel("slack", "https://hooks.example.com/services/T/B/X")
    request_approval("high")
    notifications_work()
    row = webhook_row()
    assert row.status == "failed" and row.last_error.startswith(error), row.last_error
    assert connections_made == [] and resolver.asked == ["hooks.example.com"]


def test_a_name_that_does_not_resolve_is_retried(request_approval, connections_made, resolver):
    stored_channel("slack", "https://nowhere.example.com/services/T/B/X")
    request_approval("high")
    notifications_work()
    row = webhook_row()
    assert row.status == "pending" and row.last_error == "could not resolve nowhere.example.com"
    assert connections_made == []


def test_the_post_goes_to_the_address_checked_not_to_a_second_lookup(
    receiver, make_channel, request_approval, connections_made, resolver
):
    """DNS rebinding: a name that answers a harmless address to the check and an inside one
    to the connection. The address checked is the address connected to, and the receiver
    still sees the name in the Host header."""
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])
    resolver.answers["hooks.example.test"] = lambda: next(answers)
    make_channel("webhook", f"http://hooks.example.test:{receiver.port}/in")
    request_approval("high")
    notifications_work()
    assert webhook_row().status == "sent"
    [call] = receiver.accepted
    assert call["headers"]["Host"] == f"hooks.example.test:{receiver.port}"
    assert resolver.asked == ["hooks.example.test"] and connections_made == ["127.0.0.1"]


def test_a_redirect_is_not_followed(receiver, make_channel, request_approval, connections_made):
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"
    make_channel("slack", receiver.url())
    request_approval("high")
    notifications_work()
    row = webhook_row()
    assert row.status == "pending" and row.last_error.startswith("HTTP 302")
    assert connections_made == ["127.0.0.1"] and len(receiver.calls) == 1


@pytest.fixture
def tls_receiver(tmp_path):
    """An HTTPS receiver on 127.0.0.1 whose certificate names hooks.example.test (signed by a
    test CA), recording the name the client asked for in TLS (SNI)."""
    run = lambda *args: subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=hooks.example.test")
    (tmp_path / "ext").write_text("subjectAltName=DNS:hooks.example.test\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.pem",
        "-days", "2", "-extfile", "ext")
    seen = {"sni": [], "hosts": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen["hosts"].append(self.headers["Host"])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "srv.pem", tmp_path / "srv.key")
    context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], str(tmp_path / "ca.pem"), seen
    server.shutdown()
    server.server_close()


def test_https_to_a_pinned_address_checks_the_certificate_of_the_name(
    tls_receiver, make_channel, request_approval, connections_made, resolver, monkeypatch
):
    port, ca, seen = tls_receiver
    monkeypatch.setattr(transports, "tls_context", lambda: ssl.create_default_context(cafile=ca))
    resolver.answers["hooks.example.test"] = ["127.0.0.1"]
    make_channel("slack", f"https://hooks.example.test:{port}/services/T/B/X")
    request_approval("high")
    notifications_work()
    assert webhook_row().status == "sent", webhook_row().last_error
    assert seen == {"sni": ["hooks.example.test"], "hosts": [f"hooks.example.test:{port}"]}
    assert connections_made == ["127.0.0.1"]


def test_https_refuses_a_certificate_for_another_name(
    tls_receiver, make_channel, request_approval, connections_made, resolver, monkeypatch
):
    port, ca, seen = tls_receiver
    monkeypatch.setattr(transports, "tls_context", lambda: ssl.create_default_context(cafile=ca))
    resolver.answers["other.example.test"] = ["127.0.0.1"]
    make_channel("slack", f"https://other.example.test:{port}/services/T/B/X")
    request_approval("high")
    notifications_work()
    row = webhook_row()
    assert row.status == "pending" and "certificate" in row.last_error, row.last_error
    assert seen["hosts"] == []
