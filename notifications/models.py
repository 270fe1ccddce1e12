"""Notifications: who is told what about an approval request, through which channel, and
whether it arrived.

A `NotificationEvent` is one thing worth telling about one request (opened, quarantined,
nearing expiry, expired undecided; for engine webhooks, decided): at most one of each
kind per request. Each event
has one `Notification` per channel and recipient (an e-mail to each reviewer, one post
to each webhook), written in the same transaction as the event and delivered afterwards
by `manage.py hitl_notify`.
"""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from approvals.models import ApprovalRequest
from notifications.addresses import AddressRefused, url_check
from zakops.models import RiskLevel


class NotificationKind(models.TextChoices):
    REQUESTED = "requested", "A request waits for a decision"
    QUARANTINED = "quarantined", "A request was quarantined"
    REMINDER = "reminder", "A request is close to expiring undecided"
    EXPIRED = "expired", "A request expired undecided"


# What engine webhooks are told, and only they: a request reached its end (approved,
# rejected, expired or cancelled). Not a kind people are sent, so not a NotificationKind.
DECIDED = "decided"
EVENT_KINDS = [*NotificationKind.choices, (DECIDED, "A request was decided, expired or cancelled (engine webhooks)")]


class ChannelKind(models.TextChoices):
    EMAIL = "email", "E-mail to each reviewer"
    SLACK = "slack", "Slack-compatible incoming webhook"
    WEBHOOK = "webhook", "Signed JSON webhook"
    ENGINE = "engine", "Engine webhook: every decision, expiry and cancellation, signed"


SIGNED_KINDS = (ChannelKind.WEBHOOK, ChannelKind.ENGINE)  # channels with a signing secret


LEVEL_ORDER = [level for level, _ in RiskLevel.choices]  # low … critical


def url_masked(url: str) -> str:
    """A webhook address as it may be shown: scheme and host only. The path of an incoming
    webhook is its secret (Slack's holds the token)."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"


class Channel(models.Model):
    """Where notifications go: e-mail to each reviewer, or a chat or webhook address."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=ChannelKind.choices)
    url = models.URLField(
        max_length=2000, blank=True,
        help_text="The webhook address (kept secret: shown masked). Empty for e-mail.",
    )
    signing_secret = models.CharField(
        max_length=200, blank=True,
        help_text=(
            "Signed JSON and engine webhooks: the key of the signature's HMAC (X-ZakOps-Signature, "
            "X-Hitl-Signature). Generated when left empty."
        ),
    )
    enabled = models.BooleanField(default=True)
    on_requested = models.BooleanField("requested", default=True, help_text=NotificationKind.REQUESTED.label)
    on_quarantined = models.BooleanField("quarantined", default=True, help_text=NotificationKind.QUARANTINED.label)
    on_reminder = models.BooleanField("reminder", default=True, help_text=NotificationKind.REMINDER.label)
    on_expired = models.BooleanField("expired", default=True, help_text=NotificationKind.EXPIRED.label)
    min_risk_level = models.CharField(
        "lowest risk level", max_length=20, choices=RiskLevel.choices, default=RiskLevel.LOW,
        help_text="Requests below this level are not sent here.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Two e-mail channels would send every reviewer each message twice.
            models.UniqueConstraint(fields=["kind"], condition=Q(kind="email"), name="notifications_one_email_channel"),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if self.kind == ChannelKind.EMAIL and self.url:
            raise ValidationError({"url": "An e-mail channel has no address: it writes to each reviewer."})
        if self.kind != ChannelKind.EMAIL and not self.url:
            raise ValidationError({"url": "A webhook channel needs the address to post to."})
        if self.url:
            try:
                url_check(self.url)
            except AddressRefused as exc:
                raise ValidationError({"url": str(exc)}) from None

    def takes(self, *, kind: str, risk_level: str) -> bool:
        """Whether this channel is sent `kind` about a request at `risk_level`. An engine
        webhook is sent every decision and nothing else; the others never a decision."""
        if self.kind == ChannelKind.ENGINE or kind == DECIDED:
            return self.enabled and self.kind == ChannelKind.ENGINE and kind == DECIDED
        return (
            self.enabled and getattr(self, f"on_{kind}")
            and LEVEL_ORDER.index(risk_level) >= LEVEL_ORDER.index(self.min_risk_level)
        )

    @property
    def destination(self) -> str:
        return "each reviewer's e-mail" if self.kind == ChannelKind.EMAIL else url_masked(self.url)


class NotificationEvent(models.Model):
    """One thing to tell about one request; at most one of each kind per request."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="notification_events")
    kind = models.CharField(max_length=20, choices=EVENT_KINDS)
    actor_name = models.CharField(max_length=255, blank=True, help_text="Who caused it (who quarantined, …).")
    reason = models.TextField(blank=True)
    remind_at = models.DateTimeField(
        null=True, blank=True, help_text="For an opened request: when its reminder falls due, if nobody decided."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["request", "kind"], name="notifications_one_event_per_kind")]
        indexes = [
            models.Index(fields=["remind_at"], condition=Q(remind_at__isnull=False), name="notifications_remind_at"),
        ]

    def __str__(self):
        return f"{self.kind} {self.request.action_id}"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its (next) attempt
    SENDING = "sending", "Sending"  # claimed by a worker until `claimed_until`
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # gave up after max_attempts
    SKIPPED = "skipped", "Skipped"  # no longer worth sending (decided meanwhile, channel off)


class Notification(models.Model):
    """One message of one event to one channel (and, for e-mail, one recipient)."""

    event = models.ForeignKey(NotificationEvent, on_delete=models.CASCADE, related_name="notifications")
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="notifications",
        help_text="A channel with notifications is kept for their record: disable it instead.",
    )
    recipient = models.CharField(max_length=255, blank=True, help_text="The e-mail address; empty for a webhook.")
    status = models.CharField(max_length=20, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField()
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claim = models.UUIDField(null=True, blank=True, editable=False, help_text="The worker pass that holds it.")
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="What went wrong last, or why it was skipped.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["event", "channel", "recipient"], name="notifications_once_per_recipient"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notifications_due")]

    def __str__(self):
        return f"{self.event.kind} → {self.recipient or self.channel.name}"
