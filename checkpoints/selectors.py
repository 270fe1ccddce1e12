"""Reads of execution checkpoints."""

import uuid

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from common import statements
from common.errors import NotFound
from zakops.models import Action, CheckpointStatus, ExecutionCheckpoint


def action_exists(*, action_id: str) -> bool:
    return Action.objects.filter(pk=action_id).exists()


def checkpoint_get(*, checkpoint_id: uuid.UUID) -> ExecutionCheckpoint | None:
    return ExecutionCheckpoint.objects.filter(pk=checkpoint_id).first()


def checkpoint_for_action(*, action_id: str, checkpoint_id: uuid.UUID) -> ExecutionCheckpoint:
    """The checkpoint, if it belongs to this action; NotFound otherwise (another action's
    checkpoint is as unknown here as a missing one)."""
    checkpoint = ExecutionCheckpoint.objects.filter(pk=checkpoint_id, action_id=action_id).first()
    if checkpoint is None:
        raise NotFound(f"No checkpoint {checkpoint_id} for action {action_id}.")
    return checkpoint


def checkpoint_latest(
    *,
    action_id: str | None = None,
    correlation_id: uuid.UUID | None = None,
    checkpoint_name: str | None = None,
    active_only: bool = True,
) -> ExecutionCheckpoint | None:
    """The newest checkpoint matching the given filters (at least one of action or
    correlation). Active means status active and not past its expiry.

    Fixed SQL rather than the ORM: this is the engine's hot read, and building the query
    cost more than the database spends on it (docs/performance.md).
    """
    if action_id is None and correlation_id is None:
        raise ValueError("give an action_id or a correlation_id")
    where, params = [], []
    if action_id is not None:
        where.append("action_id = %s")
        params.append(action_id)
    if correlation_id is not None:
        where.append("correlation_id = %s")
        params.append(_uuid_param(correlation_id))
    if checkpoint_name is not None:
        where.append("checkpoint_name = %s")
        params.append(checkpoint_name)
    if active_only:
        where.append("status = 'active' AND (expires_at IS NULL OR expires_at > %s)")
        params.append(connection.ops.adapt_datetimefield_value(timezone.now()))
    # Within an action the sequence number is the order; across actions, time is.
    order = "sequence_number DESC" if action_id is not None else "created_at DESC, sequence_number DESC"
    # Prepared on PostgreSQL, the row made into the model as the ORM makes one
    # (common.statements), which measured faster than raw() (docs/performance.md).
    sql = f"SELECT {_ROW.columns} FROM execution_checkpoints WHERE {' AND '.join(where)} ORDER BY {order} LIMIT 1"
    return _ROW.one(sql, params)


_ROW = statements.ModelRow(ExecutionCheckpoint)


def _uuid_param(value: uuid.UUID):
    """A UUID as the backend stores it (native on PostgreSQL, 32 hex digits on SQLite)."""
    return value if connection.vendor == "postgresql" else uuid.UUID(str(value)).hex


def checkpoints_for_action(*, action_id: str, include_inactive: bool = False):
    checkpoints = ExecutionCheckpoint.objects.filter(action_id=action_id)
    if not include_inactive:
        checkpoints = checkpoints.filter(active_q())
    return checkpoints.order_by("sequence_number")


def active_q(now=None) -> Q:
    """Active: status active and not past its expiry (even before the sweep marks it)."""
    now = now or timezone.now()
    return Q(status=CheckpointStatus.ACTIVE) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
