from django.conf import settings
from django.core.management.base import BaseCommand

from checkpoints.services import checkpoints_delete_old, checkpoints_expire


class Command(BaseCommand):
    help = (
        "Expire overdue checkpoints and delete old non-active ones "
        "(HITL_CHECKPOINT_RETENTION_DAYS), once, then exit. Safe to run on several machines at once."
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
        expired = checkpoints_expire()
        deleted = checkpoints_delete_old(days=days)
        self.stdout.write(f"checkpoints: {expired} expired, {deleted} older than {days} days deleted")
