"""The decision receiver: a genuine pushed hitl.decided is handed on and answered 204; a
forged, stale or oversized call is answered with a JSON detail and handed on to nobody."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from zakops_hitl_client.receiver import MAX_BODY, serve_decisions
from zakops_hitl_client.webhooks import DecidedEvent, webhook_signature

SECRET = "whsec_receiver-secret"
EVENT = {
    "type": "hitl.decided", "event_id": "6f1e4b0c-2f8a-5d7e-9b3a-0c1d2e3f4a5b", "action_id": "ACT-R-1",
    "request_id": "8d9e0f1a-2b3c-4d5e-8f70-112233445566", "round": 1, "action_type": "DOCUMENT.GENERATE_LOI",
    "risk_level": "high", "state": "approved", "approved_inputs": {"template": "short"}, "edited": True,
    "reason": None, "decided_by": "ada@example.com", "at": "2026-12-03T08:00:00+00:00",
}
BODY = json.dumps(EVENT, separators=(",", ":"), sort_keys=True).encode()


class Taken:
    def __init__(self) -> None:
        self.events: list[DecidedEvent] = []
        self.arrived = threading.Event()
        self.fail = False

    def __call__(self, event: DecidedEvent) -> None:
        if self.fail:
            raise RuntimeError("the resumer's queue is full")
        self.events.append(event)
        self.arrived.set()


@pytest.fixture
def taken() -> Taken:
    return Taken()


@pytest.fixture
def url(taken: Taken) -> Iterator[str]:
    server = serve_decisions(SECRET, on_event=taken)
    host, port = server.server_address[:2]
    yield f"http://{host!s}:{port}/hitl/events"
    server.shutdown()
    server.server_close()


def post(url: str, body: bytes = BODY, *, secret: str = SECRET, at: int | None = None) -> httpx.Response:
    timestamp = int(time.time()) if at is None else at
    headers = {"X-Hitl-Signature": webhook_signature(secret, body, timestamp=timestamp), "Content-Type": "application/json"}
    return httpx.post(url, content=body, headers=headers)


def test_a_genuine_event_is_handed_on_and_answered_204(url: str, taken: Taken) -> None:
    answer = post(url)
    assert answer.status_code == 204 and answer.content == b""
    assert taken.arrived.wait(2) and taken.events == [EVENT]


@pytest.mark.parametrize(
    ("case", "call"),
    [
        ("wrong secret", lambda url: post(url, secret="whsec_someone-else")),
        ("stale", lambda url: post(url, at=int(time.time()) - 3600)),
        ("tampered", lambda url: httpx.post(
            url, content=BODY.replace(b"short", b"long!"),
            headers={"X-Hitl-Signature": webhook_signature(SECRET, BODY, timestamp=int(time.time()))},
        )),
        ("unsigned", lambda url: httpx.post(url, content=BODY)),
    ],
)
def test_a_call_that_does_not_check_out_is_refused_with_a_detail(url: str, taken: Taken, case: str, call) -> None:  # type: ignore[no-untyped-def]
    answer = call(url)
    assert answer.status_code == 400, case
    assert "X-Hitl-Signature" in answer.json()["detail"]
    assert taken.events == []


def test_an_oversized_body_is_refused_unread(url: str, taken: Taken) -> None:
    answer = post(url, b"{" + b" " * MAX_BODY + b"}")
    assert answer.status_code == 413 and "larger than" in answer.json()["detail"]
    assert taken.events == []


def test_an_event_the_handler_could_not_take_is_answered_503_so_the_server_sends_it_again(url: str, taken: Taken) -> None:
    taken.fail = True
    assert post(url).status_code == 503
    taken.fail = False
    assert post(url).status_code == 204 and taken.events == [EVENT]
