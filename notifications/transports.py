"""Sending one message: an e-mail through Django's e-mail backend, or an HTTP POST to a
Slack-compatible or signed webhook (standard library, one timeout for the whole call, no
redirects), connected only to the addresses checked for it (addresses.py).

Failures are raised as `DeliveryError`, whose text is safe to log and store: it never
holds the webhook address, the signing secret or the SMTP password.

The signature of a signed webhook (`X-ZakOps-Signature: t=<unix time>,v1=<hex>`) is the
HMAC-SHA256, keyed with the channel's signing secret, of `<unix time>.<raw body>`. A
receiver recomputes it over the bytes it received, compares in constant time, and
refuses a timestamp more than five minutes old (so a captured call can not be replayed).
An engine webhook's `hitl.decided` post is signed the same way, under the headers
`X-Hitl-Signature` and `X-Hitl-Event-Id` (docs/notifications.md).
"""

import functools
import hashlib
import hmac
import http.client
import json
import re
import smtplib
import socket
import ssl
import threading
import time
import urllib.parse

from django.conf import settings
from django.core.mail import EmailMessage

from notifications.addresses import AddressRefused, Target, target_resolve
from notifications.messages import Message

SIGNATURE_HEADER = "X-ZakOps-Signature"
ENGINE_SIGNATURE_HEADER = "X-Hitl-Signature"
ENGINE_EVENT_ID_HEADER = "X-Hitl-Event-Id"
ENGINE_EVENT_HEADER = "X-Hitl-Event"
SIGNATURE_TOLERANCE_SECONDS = 300
USER_AGENT = "ZakOps-HITL-Notifications/1"
ANSWER_READ_BYTES = 4096  # of an error answer, for its excerpt


class DeliveryError(Exception):
    """A message could not be delivered; `str()` is safe to log. `unreachable`: the
    receiver did not answer at all (refused, timed out), so its other messages would
    wait in vain too. `refused`: we will not send there (an address inside the network),
    so trying again would change nothing."""

    def __init__(self, message: str, *, unreachable: bool = False, refused: bool = False):
        super().__init__(message)
        self.unreachable = unreachable
        self.refused = refused


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The X-ZakOps-Signature value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_valid(*, secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """What a receiver written in Python checks: the HMAC matches and is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    expected = signature(secret=secret, timestamp=timestamp, body=body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


# What a receiver or mail server answers is written by someone else and may hold anything
# (an echo of the call, a key, a session): an error keeps a short excerpt of it, scrubbed.
EXCERPT_CHARS = 200
ERROR_CHARS = 400
_SECRET_LOOKING = [
    (re.compile(r"(?i)\bbearer\s+[^\s\"'<>]+"), "Bearer …"),
    # name=value, name: value, "name": "value" where the name says what the value is
    (
        re.compile(
            r"(?i)([\w.-]*(?:key|token|secret|passw(?:or)?d|pwd|auth\w*|signature|credential|session|cookie)[\w.-]*"
            r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'<>&,;]+"
        ),
        r"\1…",
    ),
    (re.compile(r"\b(?:xox[a-z]|whsec|sk|pk|rk|ghp|gho|github_pat|glpat)[_-][\w-]+"), "…"),
    (re.compile(r"\b[0-9a-fA-F]{16,}\b"), "…"),  # hashes, hex keys
]
_LONG_RUN = re.compile(r"[A-Za-z0-9+/_=-]{20,}")  # base64 and random tokens: letters and digits mixed


def _random_looking(match: re.Match) -> str:
    run = match.group()
    mixed = any(c.isdigit() for c in run) and any(c.isalpha() for c in run)
    return "…" if mixed else run


def scrubbed(text: str, secrets: list[str], *, limit: int = ERROR_CHARS) -> str:
    """`text` with the given secrets and anything secret-looking replaced by "…", on one
    line, at most `limit` characters."""
    for secret in sorted((s for s in secrets if s and s != "/"), key=len, reverse=True):
        text = text.replace(secret, "…")
    for pattern, replacement in _SECRET_LOOKING:
        text = pattern.sub(replacement, text)
    text = " ".join(_LONG_RUN.sub(_random_looking, text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def answer_excerpt(raw: bytes, *, complete: bool, secrets: list[str]) -> str:
    """At most EXCERPT_CHARS of a response body, scrubbed. When `raw` is only the start of
    the body, its last word is dropped: a secret cut short would match no pattern."""
    text = raw.decode("utf-8", "replace")
    if not complete:
        text = text[: max(text.rfind(" "), 0)]
    return scrubbed(text, secrets, limit=EXCERPT_CHARS)


def email_send(*, to: str, message: Message, notification_id: int) -> None:
    email = EmailMessage(
        subject=message.subject, body=message.text, to=[to],
        headers={"Auto-Submitted": "auto-generated", "X-ZakOps-Notification": str(notification_id)},
    )
    try:
        email.send(fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        secrets = [settings.EMAIL_HOST_PASSWORD, settings.EMAIL_HOST_USER]
        if isinstance(exc, smtplib.SMTPResponseException):  # the server's own words: its code and an excerpt
            answer = exc.smtp_error if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error).encode()
            detail = f"{type(exc).__name__} {exc.smtp_code}: {answer_excerpt(answer, complete=True, secrets=secrets)}"
        else:
            detail = scrubbed(f"{type(exc).__name__}: {exc}", secrets)
        unreachable = isinstance(exc, (smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected, OSError))
        raise DeliveryError(f"e-mail not accepted: {detail}", unreachable=unreachable) from None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """TLS of a post: the system's trusted certificates, checked against the URL's host."""
    return ssl.create_default_context()


class _Deadline:
    """The whole call (connect, TLS, request, answer) within `seconds`, after which its
    sockets are shut down. A socket timeout bounds each wait, not their sum: a receiver
    answering a byte at a time would otherwise hold the worker, and the notification it
    holds, as long as it liked."""

    def __init__(self, seconds: float):
        self.over = False
        self._ends = time.monotonic() + seconds
        self._sockets = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc_info):
        with self._lock:
            self._timer.cancel()
            self._sockets.clear()

    def remaining(self) -> float:
        return max(self._ends - time.monotonic(), 0.01)

    def watch(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            if self.over:
                raise TimeoutError("deadline passed")
            self._sockets.append(sock)
        return sock

    def _cut(self):
        with self._lock:
            self.over = True
            for sock in self._sockets:
                try:
                    # socket.socket's own shutdown: an SSLSocket's would drop its TLS state
                    # under the thread reading from it. A closed socket has no descriptor
                    # left to shut (EBADF), so a descriptor reused since is never touched.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass


def _connect(target: Target, deadline: _Deadline) -> socket.socket:
    """A connection to the first of the target's checked addresses that answers."""
    error = OSError("no address to connect to")
    for family, sockaddr in target.addresses:
        sock = deadline.watch(socket.socket(family, socket.SOCK_STREAM))
        try:
            sock.settimeout(deadline.remaining())
            sock.connect(sockaddr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """http.client with the host name kept for the Host header, but connected to the
    addresses already checked: the name is never resolved again."""

    def __init__(self, target: Target, deadline: _Deadline):
        super().__init__(target.host, target.port, timeout=deadline.remaining())
        self._target, self._deadline = target, deadline

    def connect(self):
        self.sock = _connect(self._target, self._deadline)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """The same over TLS: the certificate is checked for the host name, sent as SNI."""

    def __init__(self, target: Target, deadline: _Deadline):
        super().__init__(target.host, target.port, timeout=deadline.remaining(), context=tls_context())
        self._target, self._deadline = target, deadline

    def connect(self):
        sock = self._context.wrap_socket(
            _connect(self._target, self._deadline), server_hostname=self.host, do_handshake_on_connect=False
        )
        self._deadline.watch(sock)
        sock.do_handshake()
        self.sock = sock


def webhook_target(url: str) -> Target:
    """Where to post `url`: its host resolved once and every address checked. A
    DeliveryError when refused (for good: `refused`) or when the name does not resolve."""
    try:
        return target_resolve(url)
    except AddressRefused as exc:
        raise DeliveryError(str(exc), refused=True) from None
    except (OSError, UnicodeError):  # socket.gaierror, or a name IDNA can not encode
        raise DeliveryError(f"could not resolve {urllib.parse.urlsplit(url).hostname}", unreachable=True) from None


def _post(*, target: Target, body: bytes, headers: dict, secrets: list[str]) -> None:
    """POST `body` to the target's checked addresses. Only a 2xx answer is a delivery: a
    redirect is not followed (it could lead anywhere, inside the network too)."""
    timeout = settings.HITL_NOTIFY_TIMEOUT_SECONDS
    path, _, query = target.path.partition("?")
    secrets = [target.path, path, query, *secrets]  # the path of an incoming webhook is its token
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connected = False
    with _Deadline(timeout) as deadline:
        connection = connection_class(target, deadline)
        try:
            connection.connect()
            connected = True
            connection.request(
                "POST", target.path, body=body,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, "Connection": "close", **headers},
            )
            response = connection.getresponse()
            if 200 <= response.status < 300:
                return
            try:
                raw = response.read(ANSWER_READ_BYTES + 1)
            except (OSError, http.client.HTTPException):
                raw = b""
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if deadline.over or isinstance(exc, TimeoutError):
                raise DeliveryError(f"no answer within {timeout} s", unreachable=True) from None
            if not connected:
                raise DeliveryError(scrubbed(f"could not connect: {exc}", secrets), unreachable=True) from None
            raise DeliveryError(scrubbed(f"could not post: {type(exc).__name__}: {exc}", secrets)) from None
        finally:
            connection.close()
    answer = answer_excerpt(raw[:ANSWER_READ_BYTES], complete=len(raw) <= ANSWER_READ_BYTES, secrets=secrets)
    status = scrubbed(f"HTTP {response.status} {response.reason}", secrets, limit=80)
    raise DeliveryError(status + (f": {answer}" if answer else ""))


def slack_post(*, target: Target, message: Message) -> None:
    _post(target=target, body=json.dumps({"text": message.slack_text}).encode(), headers={}, secrets=[])


def webhook_post(*, target: Target, secret: str, message: Message, notification_id: int) -> None:
    body = json.dumps(message.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        SIGNATURE_HEADER: signature(secret=secret, timestamp=int(time.time()), body=body),
        "X-ZakOps-Notification": str(notification_id),
    }
    _post(target=target, body=body, headers=headers, secrets=[secret])


def engine_post(*, target: Target, secret: str, payload: dict) -> None:
    """POST a decision's event to an engine webhook, signed with the channel's secret and
    carrying the event's id, the same on every try, by which the engine drops a repeat."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        ENGINE_SIGNATURE_HEADER: signature(secret=secret, timestamp=int(time.time()), body=body),
        ENGINE_EVENT_ID_HEADER: payload["event_id"],
        ENGINE_EVENT_HEADER: payload["type"],
    }
    _post(target=target, body=body, headers=headers, secrets=[secret])
