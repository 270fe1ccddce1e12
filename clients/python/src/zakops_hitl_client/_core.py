"""What the sync and async clients share: how each call is written (path, body, headers,
its Idempotency-Key), how an answer is read, and the retry and polling schedules. No I/O
here: the clients send."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from zakops_hitl_client import __version__
from zakops_hitl_client.errors import HitlError, error_for

USER_AGENT = f"zakops-hitl-client/{__version__}"


@dataclass(frozen=True)
class Call:
    """One logical call: sent once, or again under the same Idempotency-Key."""

    method: str
    path: str
    body: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    etag: str | None


def api_root(base_url: str) -> str:
    """The API's root from the server's address; an address that already ends in
    /api/hitl is taken as it is."""
    root = base_url.rstrip("/")
    return root if root.endswith("/api/hitl") else f"{root}/api/hitl"


def segment(value: str) -> str:
    """An action id or checkpoint name as one path segment."""
    if not isinstance(value, str) or not value:
        raise ValueError("an action id or checkpoint name must be a non-empty string")
    return quote(value, safe="")


def read(method: str, path: str, params: dict[str, str] | None = None) -> Call:
    return Call(method, path, params=params or {})


def write(path: str, payload: dict[str, Any], *, key: str | None = None, idempotent: bool = True) -> Call:
    """A POST whose body is serialized once, so that every retry sends the same bytes
    under the same key (the server replays the first answer to them)."""
    headers = {"Content-Type": "application/json"}
    if idempotent:
        headers["Idempotency-Key"] = key or str(uuid.uuid4())
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Call("POST", path, body=body, headers=headers)


def without_none(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def answer_of(response: httpx.Response) -> Answer:
    """The answer of a 2xx or 304; an error answer raises its HitlError."""
    etag = response.headers.get("ETag")
    if response.status_code == 304:
        return Answer(304, None, etag)
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.status_code >= 400:
        raise error_for(response.status_code, body, response.text)
    if response.status_code >= 300:
        raise HitlError(f"unexpected redirect to {response.headers.get('Location')}", status=response.status_code)
    return Answer(response.status_code, body, etag)


def json_object(answer: Answer) -> dict[str, Any]:
    if not isinstance(answer.body, dict):
        raise HitlError("the server answered something that is not a JSON object", status=answer.status)
    return answer.body


@dataclass(frozen=True)
class Retry:
    """Connection errors and 503 are tried again `retries` times, after a delay drawn at
    random between 0 and base * 2**attempt (at most `cap` seconds): full jitter, so that
    many engines retrying at once do not come back together."""

    retries: int = 4
    base: float = 0.25
    cap: float = 8.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2**attempt))


@dataclass
class PollPace:
    """How long wait_for_decision sleeps between polls: poll_interval while the answer
    changes, growing by half each time nothing changed, up to ten times poll_interval
    (at most 15 s); never past the request's deadline or the caller's timeout."""

    interval: float
    current: float = 0.0

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.current = self.interval

    def changed(self) -> None:
        self.current = self.interval

    def unchanged(self) -> None:
        self.current = min(self.current * 1.5, max(self.interval, min(self.interval * 10, 15.0)))


def answer_of_error_body(response: httpx.Response) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None
