"""Checking a decision that ZakOps HITL pushed to the engine's webhook (`hitl.decided`):
the signature, keyed with the channel's signing secret, over the bytes received, and its
age. Standard library only, so a receiver needs nothing else.

The scheme (docs/notifications.md on the server): `X-Hitl-Signature: t=<unix time>,v1=<hex>`,
where `<hex>` is the HMAC-SHA256 of `<unix time>.<raw body>`; `X-Hitl-Event-Id` is the
event's id, the same on every retry, by which a receiver drops a second delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any, Literal, TypedDict, cast

SIGNATURE_HEADER = "X-Hitl-Signature"
EVENT_ID_HEADER = "X-Hitl-Event-Id"
DECIDED_EVENT = "hitl.decided"
DEFAULT_TOLERANCE = 300  # seconds either side of this machine's clock


class WebhookVerificationError(Exception):
    """The call is not a genuine and recent event of the server: a missing or malformed
    header, a signature that does not match the body and the secret, a stale timestamp,
    or a body that is not the event's JSON. `str()` says which; answer such a call 400
    or 401 and do not act on it."""


class DecidedEvent(TypedDict):
    """A `hitl.decided` event: how an approval request ended."""

    type: Literal["hitl.decided"]
    event_id: str
    action_id: str
    request_id: str
    round: int
    action_type: str
    risk_level: str
    state: Literal["approved", "rejected", "expired", "cancelled"]
    approved_inputs: dict[str, Any] | None  # the inputs to run, edits included; None unless approved
    edited: bool
    reason: str | None
    decided_by: str | None
    at: str | None  # ISO 8601


def webhook_signature(secret: str | bytes, body: bytes, *, timestamp: int) -> str:
    """The `X-Hitl-Signature` value the server sends for `body` at `timestamp`: for tests
    of a receiver."""
    return f"t={timestamp},v1={_digest(_key(secret), timestamp, body)}"


def verify_webhook(
    secret: str | bytes,
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> DecidedEvent:
    """The event of a call the server signed with `secret` at most `tolerance` seconds
    from `now` (this machine's clock); WebhookVerificationError otherwise. `body` is the
    raw body as received (re-encoded JSON would not match), `headers` any mapping of the
    call's headers (names in any case)."""
    key = _key(secret)
    raw = body.encode() if isinstance(body, str) else body
    timestamp, candidates = _signature_parts(_header(headers, SIGNATURE_HEADER))
    moment = time.time() if now is None else now
    if abs(moment - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"{SIGNATURE_HEADER}: its timestamp is {abs(moment - timestamp):.0f} s away from this clock, "
            f"more than the {tolerance:g} s allowed (a stale or replayed call, or a clock out of step)."
        )
    expected = _digest(key, timestamp, raw)
    # Every candidate is compared, in constant time, so the timing tells nothing either.
    if not any([hmac.compare_digest(expected, candidate) for candidate in candidates]):
        raise WebhookVerificationError(
            f"{SIGNATURE_HEADER}: the signature does not match the body and this secret."
        )
    event = _event(raw)
    event_id = _header(headers, EVENT_ID_HEADER, required=False)
    if event_id is not None and event_id != event.get("event_id"):
        raise WebhookVerificationError(f"{EVENT_ID_HEADER}: it does not name the event in the signed body.")
    return cast(DecidedEvent, event)


def _key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise ValueError("verify_webhook: the signing secret is empty; pass the channel's secret (whsec_…).")
    return key


def _digest(key: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str, *, required: bool = True) -> str | None:
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    if value is None and required:
        raise WebhookVerificationError(f"The call has no {name} header.")
    return value


def _signature_parts(header: str | None) -> tuple[int, list[str]]:
    """(t, the v1 values) of `t=<unix time>,v1=<hex>[,v1=<hex>…]`."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in (header or "").split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit() and timestamp is None:
            timestamp = int(value)
        elif name == "v1" and value:
            candidates.append(value.strip())
    if timestamp is None or not candidates:
        raise WebhookVerificationError(f"{SIGNATURE_HEADER}: expected t=<unix time>,v1=<hex>.")
    return timestamp, candidates


def _event(raw: bytes) -> dict[str, Any]:
    try:
        event = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookVerificationError("The body is not JSON.") from None
    if not isinstance(event, dict) or event.get("type") != DECIDED_EVENT:
        raise WebhookVerificationError(f"The body is not a {DECIDED_EVENT} event.")
    return event
