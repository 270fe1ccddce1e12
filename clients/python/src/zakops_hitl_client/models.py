"""The typed results of the client's calls: small frozen dataclasses built from the
server's JSON, never the raw dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OPEN_STATES = frozenset({"pending", "quarantined"})
FINAL_STATES = frozenset({"approved", "rejected", "expired", "cancelled"})


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value)


def _opt(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None or value == "" else str(value)


def _texts(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    return [str(item) for item in value] if isinstance(value, list) else []


def _number(data: dict[str, Any], key: str) -> float:
    value = data.get(key)
    return float(value) if isinstance(value, (int, float)) else 0.0


@dataclass(frozen=True)
class Assessment:
    """What `assess-risk` answered: the level and whether a person must decide."""

    level: str
    score: float
    requires_approval: bool
    requires_quarantine: bool
    reasons: list[str]
    recommendations: list[str]
    matched_rules: list[str]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Assessment:
        return cls(
            level=_str(data, "level"), score=_number(data, "score"),
            requires_approval=bool(data.get("requires_approval")),
            requires_quarantine=bool(data.get("requires_quarantine")),
            reasons=_texts(data, "reasons"), recommendations=_texts(data, "recommendations"),
            matched_rules=_texts(data, "matched_rules"), raw=data,
        )

    @property
    def needs_person(self) -> bool:
        return self.requires_approval or self.requires_quarantine


@dataclass(frozen=True)
class Approval:
    """An action's approval request as the server holds it now (the poll's answer)."""

    request_id: str
    action_id: str
    state: str
    risk_level: str
    score: float
    reasons: list[str]
    requires_approval: bool
    expires_at: str | None
    decided_by: str | None
    decided_by_name: str | None
    decided_at: str | None
    reason: str
    created: bool
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, created: bool = False) -> Approval:
        return cls(
            request_id=_str(data, "request_id"), action_id=_str(data, "action_id"), state=_str(data, "state"),
            risk_level=_str(data, "risk_level"), score=_number(data, "score"), reasons=_texts(data, "reasons"),
            requires_approval=bool(data.get("requires_approval", True)), expires_at=_opt(data, "expires_at"),
            decided_by=_opt(data, "decided_by"), decided_by_name=_opt(data, "decided_by_name"),
            decided_at=_opt(data, "decided_at"), reason=_str(data, "reason"), created=created, raw=data,
        )

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class Decision:
    """How a request ended: `state` is approved, rejected, expired or cancelled; `inputs`
    are the action's inputs as finally approved (a reviewer's edits included; None unless
    approved); `decided_by` is the decider's name (`zakops-hitl` for the system)."""

    action_id: str
    request_id: str
    state: str
    inputs: dict[str, Any] | None
    reason: str
    decided_by: str | None
    decided_by_id: str | None
    decided_at: str | None

    @property
    def approved(self) -> bool:
        return self.state == "approved"

    @classmethod
    def of(cls, approval: Approval, inputs: dict[str, Any] | None) -> Decision:
        return cls(
            action_id=approval.action_id, request_id=approval.request_id, state=approval.state,
            inputs=inputs if approval.state == "approved" else None, reason=approval.reason,
            decided_by=approval.decided_by_name, decided_by_id=approval.decided_by, decided_at=approval.decided_at,
        )


@dataclass(frozen=True)
class Checkpoint:
    """A saved execution checkpoint, every column the server answered."""

    checkpoint_id: str
    action_id: str
    checkpoint_name: str
    checkpoint_type: str
    checkpoint_data: dict[str, Any]
    sequence_number: int
    status: str
    correlation_id: str | None
    run_id: str | None
    expires_at: str | None
    created_at: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        payload = data.get("checkpoint_data")
        sequence = data.get("sequence_number")
        return cls(
            checkpoint_id=_str(data, "checkpoint_id"), action_id=_str(data, "action_id"),
            checkpoint_name=_str(data, "checkpoint_name"), checkpoint_type=_str(data, "checkpoint_type"),
            checkpoint_data=payload if isinstance(payload, dict) else {},
            sequence_number=sequence if isinstance(sequence, int) else 0, status=_str(data, "status"),
            correlation_id=_opt(data, "correlation_id"), run_id=_opt(data, "run_id"),
            expires_at=_opt(data, "expires_at"), created_at=_opt(data, "created_at"), raw=data,
        )


@dataclass(frozen=True)
class Resumed:
    """A checkpoint marked resumed (once; a second resume is a Conflict)."""

    checkpoint_id: str
    resumed_by: str | None
