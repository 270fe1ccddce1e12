"""A reference service for the engine's two hot endpoints, without authentication:
FastAPI on uvicorn, the rules in memory (assessor.py), the poll with the SQL the app's poll
runs, through psycopg's async pool in autocommit (one round trip a poll, as the original
backend's) or, with REFERENCE_DRIVER=asyncpg, through asyncpg's pool (the original
backend's driver; it prepares the statement once per connection). bench/engine.py measures
the app against both and compares with the faster.

    REFERENCE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/db [REFERENCE_DRIVER=asyncpg] \\
      .venv/bin/python -m uvicorn app:app --app-dir bench/reference --loop uvloop --http httptools
"""

import json
import os
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from assessor import assess, rules_load
from fastapi import FastAPI, HTTPException
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, StringConstraints

DATABASE_URL = os.environ.get("REFERENCE_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
POOL_SIZE = int(os.environ.get("REFERENCE_POOL_SIZE", 4))
DRIVER = os.environ.get("REFERENCE_DRIVER", "psycopg")  # or "asyncpg", or "psycopg-transactions"
EXPIRED_REASON = "No decision before the request expired."
APPROVALS_NEEDED = {"critical": 2}  # the app's default HITL_APPROVALS_NEEDED; 1 for the others

# What the app's poll runs (`approvals.selectors.approval_polled()`); engine.py checks that
# the two are the same statement.
POLL_SQL = (
    "SELECT id, action_id, round, state, risk_level, score, reasons, recommendations, matched_rules, "
    "requires_approval, requested_by, expires_at, escalated_by, escalated_by_name, escalated_at, "
    "escalation_reason, decided_by, decided_by_name, decided_at, reason, votes, created_at "
    "FROM approvals_approvalrequest WHERE action_id = %s ORDER BY round DESC LIMIT 1"
)

state = {}


async def _psycopg_pool():
    # autocommit: without it every poll is BEGIN, SELECT, COMMIT, three round trips, as the
    # reference was published until 2026-12-03 ("psycopg-transactions", kept for the record).
    pool = AsyncConnectionPool(DATABASE_URL, min_size=POOL_SIZE, max_size=POOL_SIZE, open=False,
                               kwargs={"autocommit": DRIVER != "psycopg-transactions"})
    await pool.open(wait=True)

    async def fetch(action_id: str):
        async with pool.connection() as conn:
            cursor = await conn.execute(POLL_SQL, (action_id,))
            return await cursor.fetchone()

    return fetch, pool.close


async def _asyncpg_pool():
    import asyncpg

    async def jsonb_as_python(conn):
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")

    pool = await asyncpg.create_pool(DATABASE_URL, min_size=POOL_SIZE, max_size=POOL_SIZE, init=jsonb_as_python)
    sql = POLL_SQL.replace("%s", "$1")

    async def fetch(action_id: str):
        async with pool.acquire() as conn:
            return await conn.fetchrow(sql, action_id)

    return fetch, pool.close


@asynccontextmanager
async def lifespan(app: FastAPI):
    state["rules"] = rules_load(DATABASE_URL)
    fetch, close = await (_asyncpg_pool() if DRIVER == "asyncpg" else _psycopg_pool())
    state["fetch"] = fetch
    try:
        yield
    finally:
        await close()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


class AssessRiskRequest(BaseModel):
    action_type: Annotated[str, StringConstraints(strict=True, max_length=100)]
    action_data: dict[str, Any] | None = None
    context: dict[str, Any] | None = None


class ScorePart(BaseModel):
    label: str
    points: float


class Assessment(BaseModel):
    level: str
    score: float
    requires_approval: bool
    requires_quarantine: bool
    reasons: list[str]
    recommendations: list[str]
    matched_rules: list[str]
    breakdown: list[ScorePart]


class Approval(BaseModel):
    request_id: str
    action_id: str
    round: int
    state: str
    risk_level: str
    score: float
    reasons: list[str]
    recommendations: list[str]
    matched_rules: list[str]
    requires_approval: bool
    requested_by: str
    expires_at: str
    decided_by: str | None
    decided_by_name: str
    decided_at: str | None
    reason: str
    escalated_by: str | None
    escalated_by_name: str
    escalated_at: str | None
    escalation_reason: str
    created_at: str
    votes: int
    approvals_needed: int


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@app.post("/api/hitl/assess-risk")
async def assess_risk(body: AssessRiskRequest) -> Assessment:
    return assess(state["rules"], body.action_type, body.action_data, body.context)


def _when(value: datetime | None) -> str | None:
    """As DRF writes a datetime with TIME_ZONE = "UTC": ISO 8601, Z for +00:00."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _uuid(value) -> str | None:
    return None if value is None else str(value)


@app.get("/api/hitl/actions/{action_id}/approval")
async def action_approval(action_id: str) -> Approval:
    row = await state["fetch"](action_id)
    if row is None:
        raise HTTPException(404, f"Action {action_id} has no approval request.")
    (request_id, action_id, round_, state_, risk_level, score, reasons, recommendations, matched_rules,
     requires_approval, requested_by, expires_at, escalated_by, escalated_by_name, escalated_at,
     escalation_reason, decided_by, decided_by_name, decided_at, reason, votes, created_at) = tuple(row)
    if state_ in ("pending", "quarantined") and expires_at <= datetime.now(UTC):
        # An overdue open request reads as expired, as the app's sweep will record it.
        state_, decided_by, decided_by_name, decided_at, reason = (
            "expired", None, "zakops-hitl", expires_at, EXPIRED_REASON
        )
    return {
        "request_id": str(request_id),
        "action_id": action_id,
        "round": round_,
        "state": state_,
        "risk_level": risk_level,
        "score": score,
        "reasons": reasons,
        "recommendations": recommendations,
        "matched_rules": matched_rules,
        "requires_approval": requires_approval,
        "requested_by": requested_by,
        "expires_at": _when(expires_at),
        "decided_by": _uuid(decided_by),
        "decided_by_name": decided_by_name,
        "decided_at": _when(decided_at),
        "reason": reason,
        "escalated_by": _uuid(escalated_by),
        "escalated_by_name": escalated_by_name,
        "escalated_at": _when(escalated_at),
        "escalation_reason": escalation_reason,
        "created_at": _when(created_at),
        "votes": len(votes or []),
        "approvals_needed": APPROVALS_NEEDED.get(risk_level, 1),
    }
