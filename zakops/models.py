"""The tables the ZakOps backend owns, mapped column for column (schema/existing-tables.md).

Django does not manage them (`managed = False`): migration 0001 creates them only where
they are absent, from the DDL in `zakops/ddl.py`, and never alters them. On PostgreSQL
they live in schema `zakops` and are found through the connection's search_path.
"""

import uuid

from django.db import models
from django.db.models import Expression
from django.utils import timezone


class RiskLevel(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class ActionStatus(models.TextChoices):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    QUEUED = "QUEUED"
    READY = "READY"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"


class OperatorRole(models.TextChoices):
    ADMIN = "admin", "Admin"
    OPERATOR = "operator", "Operator"
    VIEWER = "viewer", "Viewer"


class NextDealEventSequence(Expression):
    """The column default of deal_events.sequence_number, for inserts made by the ORM.

    PostgreSQL inserts `DEFAULT` (the backend's sequence); SQLite has no sequences and
    compiles this instead, which is race-free there because SQLite serialises writers.
    """

    allowed_default = True
    output_field = models.BigIntegerField()

    def as_sql(self, compiler, connection):
        return "nextval('zakops.deal_events_sequence_seq')", []

    def as_sqlite(self, compiler, connection):
        return "(SELECT COALESCE(MAX(sequence_number), 0) + 1 FROM deal_events)", []


class Deal(models.Model):
    deal_id = models.CharField(max_length=20, primary_key=True)
    canonical_name = models.CharField(max_length=255)
    display_name = models.CharField(max_length=255, null=True, blank=True)
    stage = models.CharField(max_length=50, null=True, blank=True, default="inbound")
    status = models.CharField(max_length=50, null=True, blank=True, default="active")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        managed = False
        db_table = "deals"
        ordering = ["deal_id"]

    def __str__(self):
        return f"{self.deal_id} {self.display_name or self.canonical_name}"


# Correlation ids derived from an action id, for actions that have none of their own.
CORRELATION_NAMESPACE = uuid.UUID("5b0f6c1e-7a43-4c1d-9a55-2f3e8d1c0b7a")


def derived_correlation(action_id: str) -> uuid.UUID:
    """The correlation id of an action that has none of its own (stable)."""
    return uuid.uuid5(CORRELATION_NAMESPACE, action_id)


class Action(models.Model):
    action_id = models.CharField(max_length=50, primary_key=True)
    deal = models.ForeignKey(
        Deal,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_column="deal_id",
        related_name="actions",
    )
    capability_id = models.CharField(max_length=100, null=True, blank=True)
    action_type = models.CharField(max_length=100)
    title = models.CharField(max_length=255, null=True, blank=True)
    summary = models.TextField(null=True, blank=True)
    status = models.CharField(max_length=50, null=True, blank=True, choices=ActionStatus.choices)
    created_by = models.CharField(max_length=255, null=True, blank=True)
    source = models.CharField(max_length=50, null=True, blank=True)
    risk_level = models.CharField(max_length=20, null=True, blank=True, choices=RiskLevel.choices)
    requires_human_review = models.BooleanField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)
    inputs = models.JSONField(null=True, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    retry_count = models.IntegerField(null=True, blank=True)
    max_retries = models.IntegerField(null=True, blank=True)
    audit_trail = models.JSONField(null=True, blank=True)
    correlation_id = models.UUIDField(null=True, blank=True)
    causation_id = models.UUIDField(null=True, blank=True)
    trace_id = models.UUIDField(null=True, blank=True)
    run_id = models.UUIDField(null=True, blank=True)
    approved_by = models.UUIDField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    operator_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        managed = False
        db_table = "actions"

    def __str__(self):
        return f"{self.action_id} {self.action_type}"

    @property
    def correlation(self) -> uuid.UUID:
        """The action's correlation id, or one derived from its id (stable)."""
        return self.correlation_id or derived_correlation(self.action_id)


class DealEvent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deal = models.ForeignKey(
        Deal,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_column="deal_id",
        related_name="events",
    )
    event_type = models.CharField(max_length=100)
    source = models.CharField(max_length=100, null=True, blank=True)
    actor = models.CharField(max_length=255, null=True, blank=True)
    actor_id = models.CharField(max_length=64, null=True, blank=True)
    actor_type = models.CharField(max_length=32, null=True, blank=True)
    details = models.JSONField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)
    sequence_number = models.BigIntegerField(null=True, blank=True, db_default=NextDealEventSequence())
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        managed = False
        db_table = "deal_events"

    def __str__(self):
        return f"{self.event_type} {self.created_at:%Y-%m-%d %H:%M}"


class CheckpointStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RESUMED = "resumed", "Resumed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class CheckpointType(models.TextChoices):
    STATE = "state", "State"
    APPROVAL_GATE = "approval_gate", "Approval gate"
    EXTERNAL_CALL = "external_call", "External call"
    TIMER = "timer", "Timer"
    ERROR_RECOVERY = "error_recovery", "Error recovery"


class ExecutionCheckpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    correlation_id = models.UUIDField()
    action = models.ForeignKey(
        Action,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        db_column="action_id",
        related_name="checkpoints",
    )
    run_id = models.UUIDField(null=True, blank=True)
    checkpoint_name = models.CharField(max_length=255)
    checkpoint_type = models.CharField(
        max_length=50, null=True, blank=True, default="state", choices=CheckpointType.choices
    )
    checkpoint_data = models.JSONField()
    sequence_number = models.IntegerField()
    status = models.CharField(
        max_length=50, null=True, blank=True, default="active", choices=CheckpointStatus.choices
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_by = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        managed = False
        db_table = "execution_checkpoints"

    def __str__(self):
        return f"{self.checkpoint_name} #{self.sequence_number}"


class Operator(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255, null=True, blank=True)
    role = models.CharField(max_length=50, null=True, blank=True, choices=OperatorRole.choices)
    preferences = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        managed = False
        db_table = "operators"

    def __str__(self):
        return f"{self.email} ({self.role})"


class OutboxStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead"


class OutboxEvent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    correlation_id = models.UUIDField()
    aggregate_type = models.CharField(max_length=50)
    aggregate_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=100)
    schema_version = models.IntegerField(default=1)
    event_data = models.JSONField()
    trace_id = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=50, default="pending", choices=OutboxStatus.choices)
    attempts = models.IntegerField(null=True, blank=True, default=0)
    max_attempts = models.IntegerField(null=True, blank=True, default=5)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        managed = False
        db_table = "outbox"

    def __str__(self):
        return f"{self.event_type} {self.aggregate_id}"
