"""The kit's one table: the answers kept for `Idempotency-Key` (common.idempotency)."""

from django.conf import settings
from django.db import models


class IdempotencyRecord(models.Model):
    """The first response to a POST sent with an `Idempotency-Key`, replayed for a repeat."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "approvals_idempotencyrecord"  # where it was made, before it served checkpoints too
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="approvals_idempotency_key_per_user")]

    def __str__(self):
        return self.key
