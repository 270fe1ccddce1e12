import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from notifications.models import Channel, ChannelKind
from notifications.services import channel_save
from tests.approvals.conftest import engine, people, request_approval  # noqa: F401  (shared fixtures)
from zakops.models import Deal


def signature_checks(secret: str, header: str, body: bytes) -> bool:
    """The receiver's side of X-ZakOps-Signature, written from the documented scheme:
    HMAC-SHA256 of `<t>.<body>` with the signing secret, and a recent `t`."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - timestamp) < 300 and hmac.compare_digest(expected, parts.get("v1", ""))


class Receiver:
    """A webhook receiver on 127.0.0.1: answers 500 to the first `fail_first` calls
    (401 to a bad signature when it knows the secret), 200 after; `delay` makes it slow."""

    def __init__(self):
        self.calls = []
        self.fail_first = 0
        self.delay = 0.0
        self.secret = None
        self.answer_body = b"ok"
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                signed = receiver.secret is None or signature_checks(
                    receiver.secret, self.headers.get("X-ZakOps-Signature", ""), body
                )
                with receiver.lock:
                    if not signed:
                        status = 401
                    elif receiver.fail_first > 0:
                        receiver.fail_first -= 1
                        status = 500
                    else:
                        status = 200
                    receiver.calls.append(
                        {"path": self.path, "headers": self.headers, "body": body, "json": json.loads(body),
                         "signed": signed, "status": status}
                    )
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(receiver.answer_body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hooks/zakops") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def accepted(self) -> list[dict]:
        return [call for call in self.calls if call["status"] == 200]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def free_port() -> int:
    """A port nothing listens on (a call to it is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def make_channel(db):
    """make_channel("webhook", url) -> a saved channel (a signed webhook gets a secret)."""

    def make(kind: str, url: str = "", name: str | None = None, **fields) -> Channel:
        channel = Channel(name=name or f"{kind} {Channel.objects.count() + 1}", kind=kind, url=url, **fields)
        channel_save(channel=channel)
        return channel

    return make


@pytest.fixture
def email_channel(db) -> Channel:
    """The e-mail channel (migration 0002 makes it; a transactional test's flush removes it)."""
    return Channel.objects.get_or_create(kind=ChannelKind.EMAIL, defaults={"name": "E-mail"})[0]


@pytest.fixture
def deal(db) -> Deal:
    return Deal.objects.create(deal_id="DL-0042", canonical_name="Acme Industrial Holdings LLC", display_name="Acme Industrial")


@pytest.fixture(autouse=True)
def _notification_settings(settings):
    settings.HITL_BASE_URL = "https://hitl.example.com"
    settings.HITL_NOTIFY_RETRY_SECONDS = 30
    settings.HITL_NOTIFY_MAX_ATTEMPTS = 6
    settings.HITL_NOTIFY_REMINDER_PERCENT = 25
    settings.HITL_NOTIFY_TIMEOUT_SECONDS = 2
