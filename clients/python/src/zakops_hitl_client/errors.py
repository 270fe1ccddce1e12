"""The exceptions the client raises: one per kind of refusal, all under HitlError, each
carrying the server's `detail` and the whole JSON body it answered."""

from __future__ import annotations

from typing import Any


class HitlError(Exception):
    """A call the server refused or could not answer. `status` is the HTTP status (None
    when no answer came), `detail` the server's message, `body` its JSON answer."""

    def __init__(self, detail: str, *, status: int | None = None, body: dict[str, Any] | None = None) -> None:
        super().__init__(detail if status is None else f"{status}: {detail}")
        self.detail = detail
        self.status = status
        self.body: dict[str, Any] = body or {}


class BadRequest(HitlError):
    """400: invalid input; `field` names the field at fault when the server said which."""

    @property
    def field(self) -> str | None:
        value = self.body.get("field")
        return value if isinstance(value, str) else None


class ValidationError(BadRequest):
    """400 with per-field `errors` (a serializer's refusal)."""

    @property
    def errors(self) -> dict[str, Any]:
        value = self.body.get("errors")
        return value if isinstance(value, dict) else {}


class Unauthorized(HitlError):
    """401: no token, or a token the server does not know."""


class Forbidden(HitlError):
    """403: the caller's role or a rule refused the call."""


class NotFound(HitlError):
    """404: unknown action, request or checkpoint."""


class Conflict(HitlError):
    """409: the state does not allow the call (already decided, not active …); the body
    carries the current state."""


class PayloadTooLarge(HitlError):
    """413: the body is over the endpoint's limit."""


class IdempotencyMismatch(HitlError):
    """422: an Idempotency-Key reused with another request."""


class Unavailable(HitlError):
    """503, or no answer at all (connection refused, reset, timed out) after the retries."""


class DecisionTimeout(HitlError):
    """wait_for_decision's time ran out while the request was still open."""


_BY_STATUS: dict[int, type[HitlError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 413: PayloadTooLarge,
    422: IdempotencyMismatch, 503: Unavailable,
}


def error_for(status: int, body: Any, text: str) -> HitlError:
    """The exception for an error answer: its class by status, its detail from the body."""
    payload: dict[str, Any] = body if isinstance(body, dict) else {}
    detail = payload.get("detail")
    message = detail if isinstance(detail, str) else (text.strip()[:500] or f"HTTP {status}")
    kind = _BY_STATUS.get(status, HitlError)
    if kind is BadRequest and isinstance(payload.get("errors"), dict):
        kind = ValidationError
    return kind(message, status=status, body=payload)
