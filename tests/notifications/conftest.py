import hashlib
import hmac
import ipaddress
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
    (401 to a bad signature when it knows the secret), 200 after; `delay` makes it slow;
    `redirect_to` makes it answer 302 with that Location instead."""

    def __init__(self):
        self.calls = []
        self.fail_first = 0
        self.delay = 0.0
        self.secret = None
        self.answer_body = b"ok"
        self.redirect_to = None
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
                    elif receiver.redirect_to:
                        status = 302
                    elif receiver.fail_first > 0:
                        receiver.fail_first -= 1
                        status = 500
                    else:
                        status = 200
                    receiver.calls.append(
                        {"path": self.path, "headers": self.headers, "body": body, "json": json.loads(body),
                         "signed": signed, "status": status, "at": time.monotonic()}
                    )
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", receiver.redirect_to)
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
    # The receivers of these tests listen on 127.0.0.1, inside the network: allowed the way
    # an admin allows an internal receiver.
    settings.HITL_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def connections_made(monkeypatch):
    """Every address a socket connects to from now on. Any address but loopback is
    refused here, before a packet leaves: a test must never reach the network."""
    made = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        made.append(address[0])
        if not ipaddress.ip_address(address[0].split("%")[0]).is_loopback:
            raise ConnectionRefusedError(f"test guard: no connection to {address[0]}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return made


@pytest.fixture
def resolver(monkeypatch):
    """A stub of socket.getaddrinfo: names in `resolver.answers` resolve to the addresses
    given (a list, or a callable for answers that change), every other name fails.
    `resolver.asked` lists the names looked up."""

    class Resolver:
        answers: dict = {}
        asked: list = []

        def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
            self.asked.append(host)
            answer = self.answers.get(host)
            if answer is None:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            addresses = answer() if callable(answer) else answer
            return [
                (
                    socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                    (address, port or 0, 0, 0) if ":" in address else (address, port or 0),
                )
                for address in addresses
            ]

    stub = Resolver()
    stub.answers, stub.asked = {}, []
    monkeypatch.setattr(socket, "getaddrinfo", stub)
    return stub
