"""Several workers at once, under real concurrency (threads on their own connections):
every notification is delivered exactly once, and each reminder written once."""

from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail

from notifications.models import Notification, NotificationEvent, NotificationStatus
from notifications.services import notifications_remind, notifications_work
from tests.conftest import run_at_once

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
WORKERS = 4


def test_workers_racing_deliver_each_notification_once(receiver, make_channel, email_channel, people, request_approval):
    make_channel("webhook", receiver.url())
    make_channel("slack", receiver.url("/slack"))
    receiver.delay = 0.01  # a receiver that takes a moment widens every window
    for level in ("medium", "high", "critical") * 4:
        request_approval(level)
    rows = Notification.objects.count()
    emails = Notification.objects.filter(channel__kind="email").count()
    assert rows == emails + 24 and emails > 24

    def worker(_):
        totals = 0
        for _ in range(5):
            totals += notifications_work(batch=3)[1].handled
        return totals

    results = run_at_once(WORKERS, worker)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == rows

    assert set(Notification.objects.values_list("status", flat=True)) == {NotificationStatus.SENT}
    assert set(Notification.objects.values_list("attempts", flat=True)) == {1}
    sent_emails = Counter(int(email.extra_headers["X-ZakOps-Notification"]) for email in mail.outbox)
    assert len(sent_emails) == emails and set(sent_emails.values()) == {1}
    posts = Counter(int(call["headers"]["X-ZakOps-Notification"]) for call in receiver.calls if call["path"] != "/slack")
    assert len(posts) == 12 and set(posts.values()) == {1}
    slack = Counter(call["json"]["text"].rsplit("|Open ", 1)[1] for call in receiver.calls if call["path"] == "/slack")
    assert len(slack) == 12 and set(slack.values()) == {1}  # one post per request


def test_workers_racing_write_each_reminder_once(email_channel, people, request_approval):
    requests = [request_approval("critical") for _ in range(6)]
    due = max(request.expires_at for request in requests) - timedelta(minutes=30)
    results = run_at_once(WORKERS, lambda _: notifications_remind(now=due))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 6
    assert Counter(NotificationEvent.objects.filter(kind="reminder").values_list("request_id", flat=True)) == Counter(
        {request.pk: 1 for request in requests}
    )
    assert Notification.objects.filter(event__kind="reminder").count() == 6 * 2  # the two admins
