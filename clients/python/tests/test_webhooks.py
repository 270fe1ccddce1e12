"""verify_webhook: a genuine, recent hitl.decided is returned; anything else is refused
with a WebhookVerificationError that says why."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from zakops_hitl_client.webhooks import (
    WebhookVerificationError,
    verify_webhook,
    webhook_signature,
)

SECRET = "whsec_test-secret"
EVENT = {
    "type": "hitl.decided", "event_id": "4b0c6f1e-2f8a-5d7e-9b3a-0c1d2e3f4a5b", "action_id": "ACT-1",
    "request_id": "8d9e0f1a-2b3c-4d5e-8f70-112233445566", "round": 1, "action_type": "COMMUNICATION.SEND_EMAIL",
    "risk_level": "high", "state": "approved", "approved_inputs": {"to": "cfo@seller.example"}, "edited": True,
    "reason": None, "decided_by": "ada@example.com", "at": "2026-12-03T08:00:00+00:00",
}
BODY = json.dumps(EVENT, separators=(",", ":"), sort_keys=True).encode()


def signed(body: bytes = BODY, *, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    """Headers as the server sends them, the signature written out from the scheme."""
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Hitl-Signature": f"t={timestamp},v1={digest}", "X-Hitl-Event-Id": EVENT["event_id"]}  # type: ignore[dict-item]


def test_a_genuine_call_gives_back_the_event() -> None:
    event = verify_webhook(SECRET, BODY, signed())
    assert event == EVENT
    assert event["state"] == "approved" and event["approved_inputs"] == {"to": "cfo@seller.example"}


def test_header_names_in_any_case_a_str_body_and_a_bytes_secret_are_accepted() -> None:
    headers = {name.lower(): value for name, value in signed().items()}
    assert verify_webhook(SECRET.encode(), BODY.decode(), headers)["action_id"] == "ACT-1"


def test_webhook_signature_is_the_documented_scheme() -> None:
    assert webhook_signature(SECRET, BODY, timestamp=1_700_000_000) == signed(at=1_700_000_000)["X-Hitl-Signature"]


def test_a_tampered_body_is_refused() -> None:
    headers = signed()
    tampered = BODY.replace(b'"state":"approved"', b'"state":"rejected"')
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(SECRET, tampered, headers)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(SECRET, BODY + b" ", headers)


def test_a_wrong_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook("whsec_someone-else", BODY, signed())


def test_a_stale_or_future_timestamp_is_refused_even_with_a_valid_signature() -> None:
    now = time.time()
    with pytest.raises(WebhookVerificationError, match="away from this clock"):
        verify_webhook(SECRET, BODY, signed(at=int(now) - 301), now=now)
    with pytest.raises(WebhookVerificationError, match="away from this clock"):
        verify_webhook(SECRET, BODY, signed(at=int(now) + 400), now=now)
    assert verify_webhook(SECRET, BODY, signed(at=int(now) - 290), now=now)["event_id"] == EVENT["event_id"]
    with pytest.raises(WebhookVerificationError, match="more than the 60 s allowed"):
        verify_webhook(SECRET, BODY, signed(at=int(now) - 120), tolerance=60, now=now)


def test_a_replayed_signature_with_a_new_timestamp_is_refused() -> None:
    old = signed(at=int(time.time()) - 3600)["X-Hitl-Signature"]
    replayed = f"t={int(time.time())},{old.split(',', 1)[1]}"
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(SECRET, BODY, {"X-Hitl-Signature": replayed})


@pytest.mark.parametrize("header", [None, "", "garbage", "t=abc,v1=00", "v1=00", "t=1700000000", "t=-5,v1=00"])
def test_a_missing_or_malformed_signature_header_is_refused(header: str | None) -> None:
    headers = {} if header is None else {"X-Hitl-Signature": header}
    with pytest.raises(WebhookVerificationError, match="X-Hitl-Signature"):
        verify_webhook(SECRET, BODY, headers)


def test_an_event_id_header_that_does_not_name_the_signed_event_is_refused() -> None:
    headers = {**signed(), "X-Hitl-Event-Id": "another-event"}
    with pytest.raises(WebhookVerificationError, match="X-Hitl-Event-Id"):
        verify_webhook(SECRET, BODY, headers)


def test_a_signed_body_that_is_not_the_event_is_refused() -> None:
    for body in (b"not json", b"[1, 2]", b'{"type": "something.else"}', b"\xff\xfe"):
        headers = {"X-Hitl-Signature": signed(body)["X-Hitl-Signature"]}
        with pytest.raises(WebhookVerificationError, match="body"):
            verify_webhook(SECRET, body, headers)


def test_an_empty_secret_is_a_mistake_of_the_caller() -> None:
    with pytest.raises(ValueError, match="secret is empty"):
        verify_webhook("", BODY, signed())
