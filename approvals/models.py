"""Approval requests (SPEC §3): one open request per action at a time, past rounds kept.

The request is this app's record of the workflow; the action's row in zakops.actions is
what the engine reads, and every transition updates both in one transaction
(approvals.services).
"""

import copy
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Case, Q, Value, When
from django.utils import timezone

from zakops.models import Action, RiskLevel


class RequestState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    QUARANTINED = "quarantined", "Quarantined"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATES = (RequestState.PENDING, RequestState.QUARANTINED)
EXPIRED_REASON = "No decision before the request expired."
# Announced on every change to a request, naming its action (approvals 0003 and 0008 have
# the PostgreSQL triggers): the reviewer pages' live queue asks it whether anything changed,
# and the poll's cache which action's request did (approvals.selectors).
QUEUE_CHANNEL = "hitl_approvals"


def approvals_needed(level: str) -> int:
    """How many approvals by different people a request of `level` needs (a setting)."""
    return settings.HITL_APPROVALS_NEEDED.get(level, 1)


class ApprovalRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No database constraint: the actions table is the backend's, and a foreign key from
    # here would stop the backend from deleting its own rows.
    action = models.ForeignKey(
        Action, on_delete=models.DO_NOTHING, db_constraint=False, db_column="action_id", related_name="approval_requests"
    )
    action_type = models.CharField(
        max_length=100, blank=True, help_text="The action's type when the request was opened (for precedent)."
    )
    round = models.PositiveIntegerField(default=1, help_text="1 for the first request of the action, then 2, 3, …")
    state = models.CharField(max_length=20, choices=RequestState.choices, default=RequestState.PENDING)
    risk_level = models.CharField(max_length=20, choices=RiskLevel.choices)
    # 3 for critical … 0 for low, kept by the database: the queue's order ("critical first,
    # then oldest") is then one index read, however many requests were ever decided.
    severity = models.GeneratedField(
        expression=Case(
            When(risk_level=RiskLevel.CRITICAL, then=Value(3)),
            When(risk_level=RiskLevel.HIGH, then=Value(2)),
            When(risk_level=RiskLevel.MEDIUM, then=Value(1)),
            default=Value(0),
        ),
        output_field=models.SmallIntegerField(),
        db_persist=True,
    )
    score = models.FloatField()
    reasons = models.JSONField(default=list)
    recommendations = models.JSONField(default=list)
    matched_rules = models.JSONField(default=list)
    score_breakdown = models.JSONField(default=list, help_text="The base of the rule level, then each modifier.")
    requires_approval = models.BooleanField(default=True)
    requested_by = models.CharField(
        max_length=255, blank=True, help_text="Who asked for the action (an email or operator id): they may not decide it."
    )
    requested_via = models.CharField(max_length=255, blank=True, help_text="The account that sent the request.")
    requested_via_id = models.UUIDField(
        null=True, blank=True, help_text="The sending account's id: like the requester, it may not decide."
    )
    expires_at = models.DateTimeField()
    escalated_by = models.UUIDField(null=True, blank=True)
    escalated_by_name = models.CharField(max_length=255, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_reason = models.TextField(blank=True)
    decided_by = models.UUIDField(null=True, blank=True, help_text="Operator id; empty for the system.")
    decided_by_name = models.CharField(max_length=255, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    votes = models.JSONField(
        default=list, blank=True,
        help_text="The approvals counted so far ({name, at}), as shown on the queue; ApprovalVote holds the rule.",
    )
    original_inputs = models.JSONField(
        null=True, blank=True, help_text="The action's inputs before a reviewer edited them; empty when never edited.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["action"], condition=Q(state__in=OPEN_STATES), name="approvals_one_open_request_per_action"
            ),
            models.UniqueConstraint(fields=["action", "round"], name="approvals_one_request_per_round"),
        ]
        indexes = [
            models.Index(fields=["state", "expires_at"], name="approvals_state_expiry"),
            models.Index(fields=["state", "-severity", "created_at"], name="approvals_queue_order"),
            models.Index(fields=["-decided_at"], name="approvals_decided_at"),  # the pages' "Decided" tab
            models.Index(fields=["action_type", "-decided_at"], name="approvals_precedent"),
        ]

    def __str__(self):
        return f"{self.action_id} round {self.round}: {self.state}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def vote_count(self) -> int:
        """The approvals counted so far, of a level that needs several."""
        return len(self.votes or ())

    @property
    def approvals_needed(self) -> int:
        return approvals_needed(self.risk_level)

    @property
    def is_overdue(self) -> bool:
        """Open but past its deadline: expired for everyone, whether or not the sweep ran."""
        return self.is_open and self.expires_at <= timezone.now()

    def as_seen(self) -> "ApprovalRequest":
        """The request as the engine and reviewers must see it now: an overdue open one
        reads as expired (by the system, at its deadline), as the sweep will record it."""
        if not self.is_overdue:
            return self
        seen = copy.copy(self)
        seen.state, seen.decided_by, seen.decided_by_name = RequestState.EXPIRED, None, "zakops-hitl"
        seen.decided_at, seen.reason = self.expires_at, EXPIRED_REASON
        return seen


class ApprovalVote(models.Model):
    """One person's approval of a request that needs more than one (SPEC §3, two-person
    approval). The request stays pending until the level's number of votes is reached;
    one vote per person and request, whatever the concurrency."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="votes_cast")
    voter_id = models.UUIDField(help_text="The voter's operator id.")
    voter_name = models.CharField(max_length=255)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["request", "voter_id"], name="approvals_one_vote_per_person")]

    def __str__(self):
        return f"{self.voter_name} on {self.request_id}"


class Claim(models.Model):
    """A reviewer's claim on an open request while they look at it: others see who is
    reviewing and their "next" skips it. At most one row per request (the database says
    so); a row past `expires_at` is no claim at all and is replaced by the next taker.
    Not an audit record: only a takeover is written to the request's history."""

    request = models.OneToOneField(ApprovalRequest, on_delete=models.CASCADE, related_name="claim")
    reviewer_id = models.UUIDField(help_text="The reviewer's operator id.")
    reviewer_name = models.CharField(max_length=255)
    taken_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    def __str__(self):
        return f"{self.reviewer_name} on {self.request_id}"

    def is_live(self, now=None) -> bool:
        return self.expires_at > (now or timezone.now())
