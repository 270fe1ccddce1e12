"""Reads of execution checkpoints."""

import uuid

from django.db.models import Q
from django.utils import timezone

from zakops.models import Action, CheckpointStatus, ExecutionCheckpoint
from zakops_hitl.errors import NotFound


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
    correlation). Active means status active and not past its expiry."""
    if action_id is None and correlation_id is None:
        raise ValueError("give an action_id or a correlation_id")
    checkpoints = ExecutionCheckpoint.objects.all()
    if action_id is not None:
        checkpoints = checkpoints.filter(action_id=action_id)
    if correlation_id is not None:
        checkpoints = checkpoints.filter(correlation_id=correlation_id)
    if checkpoint_name is not None:
        checkpoints = checkpoints.filter(checkpoint_name=checkpoint_name)
    if active_only:
        checkpoints = checkpoints.filter(active_q())
    # Within an action the sequence number is the order; across actions, time is.
    order = ("-sequence_number",) if action_id is not None else ("-created_at", "-sequence_number")
    return checkpoints.order_by(*order).first()


def checkpoints_for_action(*, action_id: str, include_inactive: bool = False):
    checkpoints = ExecutionCheckpoint.objects.filter(action_id=action_id)
    if not include_inactive:
        checkpoints = checkpoints.filter(active_q())
    return checkpoints.order_by("sequence_number")


def active_q(now=None) -> Q:
    """Active: status active and not past its expiry (even before the sweep marks it)."""
    now = now or timezone.now()
    return Q(status=CheckpointStatus.ACTIVE) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
