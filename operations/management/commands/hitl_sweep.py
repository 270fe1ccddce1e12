from django.conf import settings
from django.core.management.base import BaseCommand

from approvals.services.expiry import approvals_expire
from approvals.services.requests import approvals_adopt_pending
from checkpoints.services import checkpoints_delete_old, checkpoints_expire
from common.idempotency import idempotency_records_forget


class Command(BaseCommand):
    help = (
        "Open requests for actions the engine set to PENDING_APPROVAL by itself, expire overdue "
        "approval requests and checkpoints, delete old non-active checkpoints "
        "(HITL_CHECKPOINT_RETENTION_DAYS) and old idempotency keys, once, then exit. "
        "Safe to run on several machines at once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--retention-days", type=int, default=None,
            help="Delete resumed, expired and cancelled checkpoints older than this (default: HITL_CHECKPOINT_RETENTION_DAYS).",
        )

    def handle(self, *args, retention_days, **options):
        days = retention_days if retention_days is not None else settings.HITL_CHECKPOINT_RETENTION_DAYS
        if days < 1:
            self.stderr.write("--retention-days must be at least 1")
            raise SystemExit(2)
        adopted = approvals_adopt_pending()
        requests = approvals_expire()
        self.stdout.write(f"approval requests: {adopted} opened for actions the engine held by itself")
        self.stdout.write(f"approval requests: {requests} expired")
        expired = checkpoints_expire()
        deleted = checkpoints_delete_old(days=days)
        self.stdout.write(f"checkpoints: {expired} expired, {deleted} older than {days} days deleted")
        self.stdout.write(f"idempotency keys: {idempotency_records_forget()} older than 48 hours forgotten")
