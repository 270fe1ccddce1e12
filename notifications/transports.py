"""Sending one message: an e-mail through Django's e-mail backend, or an HTTP POST to a
Slack-compatible or signed webhook (standard library, short timeout, no redirects).

Failures are raised as `DeliveryError`, whose text is safe to log and store: it never
holds the webhook address, the signing secret or the SMTP password.

The signature of a signed webhook (`X-ZakOps-Signature: t=<unix time>,v1=<hex>`) is the
HMAC-SHA256, keyed with the channel's signing secret, of `<unix time>.<raw body>`. A
receiver recomputes it over the bytes it received, compares in constant time, and
refuses a timestamp more than five minutes old (so a captured call can not be replayed).
"""

import hashlib
import hmac
import json
import re
import smtplib
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings
from django.core.mail import EmailMessage

from notifications.messages import Message

SIGNATURE_HEADER = "X-ZakOps-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300
USER_AGENT = "ZakOps-HITL-Notifications/1"
ANSWER_READ_BYTES = 4096  # of an error answer, for its excerpt


class DeliveryError(Exception):
    """A message could not be delivered; `str()` is safe to log. `unreachable`: the
    receiver did not answer at all (refused, timed out), so its other messages would
    wait in vain too."""

    def __init__(self, message: str, *, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


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


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that answers with a redirect has not received the message."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _post(*, url: str, body: bytes, headers: dict, secrets: list[str]) -> None:
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
    )
    timeout = settings.HITL_NOTIFY_TIMEOUT_SECONDS
    secrets = [url, urllib.parse.urlsplit(url).path, urllib.parse.urlsplit(url).query, *secrets]
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(4096)
    except urllib.error.HTTPError as exc:
        raw = exc.read(ANSWER_READ_BYTES + 1) if exc.fp else b""
        answer = answer_excerpt(raw[:ANSWER_READ_BYTES], complete=len(raw) <= ANSWER_READ_BYTES, secrets=secrets)
        status = scrubbed(f"HTTP {exc.code} {exc.reason}", secrets, limit=80)
        raise DeliveryError(status + (f": {answer}" if answer else "")) from None
    except (TimeoutError, socket.timeout):
        raise DeliveryError(f"no answer within {timeout} s", unreachable=True) from None
    except urllib.error.URLError as exc:
        raise DeliveryError(scrubbed(f"could not connect: {exc.reason}", secrets), unreachable=True) from None
    except (OSError, ValueError) as exc:
        raise DeliveryError(scrubbed(f"could not post: {type(exc).__name__}: {exc}", secrets)) from None


def slack_post(*, url: str, message: Message) -> None:
    _post(url=url, body=json.dumps({"text": message.slack_text}).encode(), headers={}, secrets=[])


def webhook_post(*, url: str, secret: str, message: Message, notification_id: int) -> None:
    body = json.dumps(message.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        SIGNATURE_HEADER: signature(secret=secret, timestamp=int(time.time()), body=body),
        "X-ZakOps-Notification": str(notification_id),
    }
    _post(url=url, body=body, headers=headers, secrets=[secret])
