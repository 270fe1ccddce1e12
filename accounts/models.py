"""Who acts in ZakOps HITL: reviewers (Django users in a role group) and service accounts.

A role is membership of the group `admin`, `operator` or `viewer`. Each reviewer is kept
in step with a `zakops.operators` row (same email and role); `Account.actor_id` is that
row's id, the UUID written into `approved_by` and `resumed_by`. A service account (the
action engine) has its own UUID and no role.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Account(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account")
    is_service = models.BooleanField(default=False)
    actor_id = models.UUIDField(
        unique=True,
        default=uuid.uuid4,
        help_text="zakops.operators.id for a person; the service account's own id otherwise.",
    )

    def __str__(self):
        kind = "service" if self.is_service else "person"
        return f"{self.user.get_username()} ({kind})"


class ApiToken(models.Model):
    """A bearer token. Only its SHA-256 is stored; the token itself is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the host that uses it.")
    prefix = models.CharField(max_length=12, editable=False, help_text="First characters, to recognise a token.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.prefix}… ({self.name})"
