"""`manage.py hitl_notify`: the notification worker (cron or systemd with --once, or a
long-running loop). Several may run at once, on several machines."""

import logging
import signal
import threading

from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections, connections

from notifications.services import notifications_work

logger = logging.getLogger("notifications.worker")


class Command(BaseCommand):
    help = (
        "Send the notifications that are due (e-mail and webhooks) and write the reminders that fell due. "
        "Runs in a loop (every --interval seconds) until stopped, or once with --once. "
        "Safe to run on several machines at once: each notification is sent by one of them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One pass, then exit (for cron or a systemd timer).")
        parser.add_argument("--interval", type=float, default=10.0, help="Seconds between passes in the loop (default 10).")
        parser.add_argument(
            "--batch", type=int, default=50,
            help="Due notifications looked up at a time (default 50); each is claimed just before it is sent.",
        )

    def handle(self, *args, once, interval, batch, **options):
        if batch < 1 or interval <= 0:
            self.stderr.write("--batch must be at least 1 and --interval more than 0")
            raise SystemExit(2)
        if once:
            self._report(*notifications_work(batch=batch))
            return
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        logger.info("hitl_notify: sending every %s s until stopped", interval)
        while not stopping.is_set():
            close_old_connections()
            try:
                reminders, counts = notifications_work(batch=batch, stop=stopping.is_set)
            except DatabaseError as exc:  # e.g. the database restarting: try again next pass
                logger.error("hitl_notify: database error, trying again in %s s: %s", interval, type(exc).__name__)
                connections.close_all()
            else:
                if reminders or counts.handled:
                    self._report(reminders, counts)
            stopping.wait(interval)
        logger.info("hitl_notify: stopped")

    def _report(self, reminders, counts):
        self.stdout.write(
            f"reminders: {reminders} written; notifications: {counts.sent} sent, {counts.retrying} to retry, "
            f"{counts.failed} failed for good, {counts.skipped} skipped"
        )
