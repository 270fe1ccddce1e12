"""Writes of durable execution checkpoints (SPEC §4) on zakops.execution_checkpoints.

Sequence numbers are 0, 1, 2, … per action with no gap or duplicate: a save locks the
action's row, then takes the next number, so concurrent writers for one action take
turns. The next number is the greater of the highest existing one + 1 and the action's
SequenceFloor, which retention raises past the numbers it deletes, so no number is handed
out twice. On PostgreSQL a save is one call of the function `hitl_checkpoint_save`
(checkpoints migration 0002), one round trip, as a prepared statement
(common.statements); on SQLite the same steps run in a transaction, which begins
IMMEDIATE and so holds the write lock. Resume and cancel are one conditional UPDATE on
`status = 'active'`: its row count says whether this caller won.
"""

import json
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Subquery
from django.db.models.base import ModelState
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from checkpoints import metrics
from checkpoints.models import SequenceFloor
from checkpoints.selectors import active_q, checkpoint_for_action
from common import statements
from common.errors import Conflict, InvalidInput, NotFound, TooLarge
from zakops.models import Action, CheckpointStatus, CheckpointType, ExecutionCheckpoint, derived_correlation

_SAVE = (
    "SELECT id, correlation_id, sequence_number FROM hitl_checkpoint_save"
    "(%s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s)"
)
_TYPES = frozenset(CheckpointType.values)


def _serialised(data: dict) -> str:
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise InvalidInput("checkpoint_data: NaN and Infinity are not JSON.", field="checkpoint_data") from None


def checkpoint_save(
    *,
    action_id: str,
    checkpoint_name: str,
    checkpoint_data: dict,
    checkpoint_type: str = CheckpointType.STATE,
    correlation_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
    expires_in_hours: float | None = None,
) -> ExecutionCheckpoint:
    if checkpoint_type not in _TYPES:
        raise InvalidInput(
            f"checkpoint_type must be one of {', '.join(CheckpointType.values)}", field="checkpoint_type"
        )
    if not isinstance(checkpoint_data, dict):
        raise InvalidInput("checkpoint_data must be a JSON object", field="checkpoint_data")
    serialised = _serialised(checkpoint_data)
    size, limit = len(serialised.encode()), settings.HITL_CHECKPOINT_MAX_BYTES
    if size > limit:
        raise TooLarge(f"checkpoint_data is {size} bytes; the limit is {limit} bytes (HITL_CHECKPOINT_MAX_BYTES).")
    now = timezone.now()
    fields = {
        "action_id": action_id,
        "checkpoint_name": checkpoint_name,
        "checkpoint_type": checkpoint_type,
        "correlation_id": correlation_id,
        "run_id": run_id,
        "expires_at": now + timedelta(hours=expires_in_hours) if expires_in_hours else None,
        "created_at": now,
    }
    db = transaction.get_connection()  # once: each use of `connection` looks it up again
    if db.vendor == "postgresql":
        checkpoint = _save_statement(db, serialised, checkpoint_data, fields)
    else:
        checkpoint = _save_in_transaction(checkpoint_data=checkpoint_data, **fields)
    if db.in_atomic_block:
        db.on_commit(metrics.CHECKPOINT_SAVES.inc)
    else:  # autocommit: saved already (on_commit would run it now, by a longer way)
        metrics.CHECKPOINT_SAVES.inc()
    return checkpoint


def _save_statement(db, serialised: str, checkpoint_data: dict, fields: dict) -> ExecutionCheckpoint:
    """One prepared call of hitl_checkpoint_save. Only what the database chose comes back
    (id, correlation id, number); the instance is made from those and what we sent, the
    data being the dict we hold."""
    action_id = fields["action_id"]
    row = statements.fetch_one(
        _SAVE,
        [
            action_id, fields["checkpoint_name"], fields["checkpoint_type"], serialised, fields["correlation_id"],
            derived_correlation(action_id), fields["run_id"], fields["expires_at"], fields["created_at"],
        ],
        db,
    )
    if row is None:
        raise NotFound(f"No action {action_id}.")
    return _loaded(db.alias, dict(
        fields, id=row[0], correlation_id=row[1], sequence_number=row[2], checkpoint_data=checkpoint_data,
        status=CheckpointStatus.ACTIVE.value, resumed_at=None, resumed_by=None,
    ))


def _loaded(alias: str, values: dict) -> ExecutionCheckpoint:
    """The instance the ORM would make when loading this row (every column set, saved,
    from `alias`), without Model.__init__'s loop over the fields and its init signals,
    which nothing on this model listens to."""
    checkpoint = ExecutionCheckpoint.__new__(ExecutionCheckpoint)
    checkpoint.__dict__.update(values)
    state = checkpoint._state = ModelState()
    state.adding, state.db = False, alias
    return checkpoint


@transaction.atomic
def _save_in_transaction(*, action_id, correlation_id, **fields) -> ExecutionCheckpoint:
    """The steps of hitl_checkpoint_save, for SQLite."""
    action = Action.objects.select_for_update().only("action_id", "correlation_id").filter(pk=action_id).first()
    if action is None:
        raise NotFound(f"No action {action_id}.")
    # One statement, as in the function: the existing numbers and the floor from one snapshot.
    floor = SequenceFloor.objects.filter(pk=action_id).values("next_number")
    sequence_number = ExecutionCheckpoint.objects.filter(action_id=action_id).aggregate(
        next=Greatest(Coalesce(Max("sequence_number") + 1, 0), Coalesce(Subquery(floor), 0))
    )["next"]
    return ExecutionCheckpoint.objects.create(
        action_id=action_id,
        correlation_id=correlation_id or action.correlation,
        sequence_number=sequence_number,
        status=CheckpointStatus.ACTIVE,
        **fields,
    )


def _not_active_conflict(checkpoint: ExecutionCheckpoint, verb: str, now) -> Conflict:
    status = checkpoint.status
    if status == CheckpointStatus.ACTIVE:  # overdue, the sweep has not marked it yet
        status = CheckpointStatus.EXPIRED
    extra = {"checkpoint_id": str(checkpoint.id), "status": status}
    detail = f"Checkpoint {checkpoint.id} is {status}, it can not be {verb}"
    if checkpoint.status == CheckpointStatus.RESUMED:
        extra.update(resumed_by=str(checkpoint.resumed_by) if checkpoint.resumed_by else None, resumed_at=checkpoint.resumed_at)
        detail += f": resumed by {checkpoint.resumed_by} at {checkpoint.resumed_at:%Y-%m-%d %H:%M:%S} UTC"
    elif status == CheckpointStatus.EXPIRED and checkpoint.expires_at:
        detail += f": it expired at {checkpoint.expires_at:%Y-%m-%d %H:%M:%S} UTC"
    return Conflict(detail + ".", **extra)


def checkpoint_resume(*, action_id: str, checkpoint_id: uuid.UUID, resumed_by: uuid.UUID) -> ExecutionCheckpoint:
    """Mark an active checkpoint resumed. Exactly one caller wins; the others get 409."""
    now = timezone.now()
    won = ExecutionCheckpoint.objects.filter(active_q(now), pk=checkpoint_id, action_id=action_id).update(
        status=CheckpointStatus.RESUMED, resumed_at=now, resumed_by=resumed_by
    )
    checkpoint = checkpoint_for_action(action_id=action_id, checkpoint_id=checkpoint_id)
    if not won:
        raise _not_active_conflict(checkpoint, "resumed", now)
    transaction.on_commit(metrics.CHECKPOINT_RESUMES.inc)
    return checkpoint


def checkpoint_cancel(*, action_id: str, checkpoint_id: uuid.UUID) -> ExecutionCheckpoint:
    now = timezone.now()
    won = ExecutionCheckpoint.objects.filter(active_q(now), pk=checkpoint_id, action_id=action_id).update(
        status=CheckpointStatus.CANCELLED
    )
    checkpoint = checkpoint_for_action(action_id=action_id, checkpoint_id=checkpoint_id)
    if not won:
        raise _not_active_conflict(checkpoint, "cancelled", now)
    return checkpoint


def checkpoints_cancel_for_action(*, action_id: str) -> int:
    """Cancel every active checkpoint of an action (the action will not run)."""
    return ExecutionCheckpoint.objects.filter(action_id=action_id, status=CheckpointStatus.ACTIVE).update(
        status=CheckpointStatus.CANCELLED
    )


def checkpoints_expire(*, now=None) -> int:
    """Mark active checkpoints past `expires_at` expired. One UPDATE: safe to run from
    several machines at once; a second run finds nothing left."""
    now = now or timezone.now()
    return ExecutionCheckpoint.objects.filter(status=CheckpointStatus.ACTIVE, expires_at__lte=now).update(
        status=CheckpointStatus.EXPIRED
    )


# One statement, so the deletes and the raised floors commit together and a save sees
# both or neither. Rows are locked in id order and floors written in action order, so
# sweeps running at once queue rather than deadlock; a row another sweep deleted first is
# skipped. The floors come from exactly the rows this statement deleted (RETURNING), not
# from a separate read that could see another set, and they only ever rise (GREATEST).
_DELETE_OLD_RAISING_FLOORS = """
WITH doomed AS (
    SELECT id FROM execution_checkpoints
     WHERE (status IS NULL OR status <> 'active') AND created_at < %s
     ORDER BY id
       FOR UPDATE
), deleted AS (
    DELETE FROM execution_checkpoints c USING doomed WHERE c.id = doomed.id
    RETURNING c.action_id, c.sequence_number
), floors AS (
    INSERT INTO checkpoints_sequence_floor AS f (action_id, next_number)
    SELECT action_id, MAX(sequence_number) + 1 FROM deleted
     WHERE action_id IS NOT NULL
     GROUP BY action_id ORDER BY action_id
    ON CONFLICT (action_id) DO UPDATE SET next_number = GREATEST(f.next_number, EXCLUDED.next_number)
)
SELECT count(*) FROM deleted
"""


def checkpoints_delete_old(*, days: int, now=None) -> int:
    """Delete resumed, expired and cancelled checkpoints created more than `days` ago.

    Their sequence numbers stay taken: in the same transaction each affected action's
    SequenceFloor is raised to its highest deleted number + 1. On PostgreSQL that is one
    statement; safe with several sweeps at once and with saves racing it.
    """
    cutoff = (now or timezone.now()) - timedelta(days=days)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_DELETE_OLD_RAISING_FLOORS, [cutoff])
            return cursor.fetchone()[0]
    return _delete_old_in_transaction(cutoff=cutoff)


@transaction.atomic
def _delete_old_in_transaction(*, cutoff) -> int:
    """The steps of _DELETE_OLD_RAISING_FLOORS, for SQLite: the transaction holds the write
    lock from its start, so no save, resume or sweep runs between them."""
    old = ExecutionCheckpoint.objects.exclude(status=CheckpointStatus.ACTIVE).filter(created_at__lt=cutoff)
    taken = old.filter(action_id__isnull=False).values_list("action_id").annotate(next_number=Max("sequence_number") + 1)
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO checkpoints_sequence_floor (action_id, next_number) VALUES (%s, %s)"
            " ON CONFLICT (action_id) DO UPDATE SET next_number = MAX(next_number, excluded.next_number)",
            list(taken),
        )
    deleted, _ = old.delete()
    return deleted
