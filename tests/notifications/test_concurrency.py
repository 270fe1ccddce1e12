"""Several workers at once, under real concurrency (threads on their own connections, or
`manage.py hitl_notify` processes): every notification is delivered exactly once, a
worker killed mid-send costs at most the one message in hand, and each reminder is
written once."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.db import connection, connections

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


def test_a_slow_receiver_gets_each_notification_once_from_two_workers(receiver, make_channel, request_approval, settings):
    """Each post takes most of the timeout: a worker holds only the notification it is
    sending, so a long run of them never outlives its hold and is never taken twice."""
    settings.HITL_NOTIFY_TIMEOUT_SECONDS = 1
    receiver.delay = 0.6
    make_channel("webhook", receiver.url())
    for _ in range(8):
        request_approval("high")
    assert Notification.objects.count() == 8

    held, sampling = [], threading.Event()

    def sample():  # how many notifications are held while the workers run
        try:
            while not sampling.is_set():
                held.append(Notification.objects.filter(status=NotificationStatus.SENDING).count())
                time.sleep(0.05)
        finally:
            connections.close_all()

    def worker(_):  # a worker's loop, with a short interval, until nothing is left to send
        handled, until = 0, time.monotonic() + 30
        while Notification.objects.exclude(status=NotificationStatus.SENT).exists() and time.monotonic() < until:
            handled += notifications_work()[1].handled
            time.sleep(0.1)
        return handled

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        results = run_at_once(2, worker)
    finally:
        sampling.set()
        sampler.join()
    assert not [r for r in results if isinstance(r, Exception)], results
    posts = Counter(int(call["headers"]["X-ZakOps-Notification"]) for call in receiver.calls)
    assert len(posts) == 8 and set(posts.values()) == {1}, posts
    assert set(Notification.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert all(results) and sum(results) == 8  # both workers sent some
    assert max(held) <= 2  # one in hand per worker, never a batch


ROOT = Path(__file__).resolve().parents[2]


def worker_env(**extra) -> dict:
    """The environment of a `manage.py hitl_notify` process on this test's database."""
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        url = f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    else:
        url = f"sqlite:///{s['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "HITL_BASE_URL": "https://hitl.example.com", **extra}


def test_a_worker_killed_mid_send_costs_at_most_the_message_in_hand(receiver, make_channel, request_approval):
    receiver.delay = 0.6
    make_channel("webhook", receiver.url())
    for _ in range(6):
        request_approval("high")
    ids = set(Notification.objects.values_list("pk", flat=True))
    env = worker_env(HITL_NOTIFY_TIMEOUT_SECONDS="1", HITL_WEBHOOK_ALLOWED_HOSTS="127.0.0.1")
    start = lambda: subprocess.Popen(  # noqa: E731
        [sys.executable, "manage.py", "hitl_notify", "--interval", "0.5"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    first = start()
    second = None
    try:
        deadline = time.monotonic() + 60
        while not receiver.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receiver.calls, "the first worker never posted"
        first.send_signal(signal.SIGKILL)  # mid-send: the receiver is still answering
        first.wait(timeout=10)
        killed_at = time.monotonic()
        in_hand = int(receiver.calls[0]["headers"]["X-ZakOps-Notification"])

        second = start()
        deadline = time.monotonic() + 60
        while Notification.objects.filter(pk__in=ids).exclude(status="sent").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        for worker in (first, second):
            if worker and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=10)

    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    posts = Counter(int(call["headers"]["X-ZakOps-Notification"]) for call in receiver.calls)
    assert set(posts) == ids and posts[in_hand] <= 2 and {posts[pk] for pk in ids - {in_hand}} == {1}, posts
    # The rest went out in the second worker's first pass: none waited for a hold to run out.
    rest = [call["at"] - killed_at for call in receiver.calls if int(call["headers"]["X-ZakOps-Notification"]) != in_hand]
    assert max(rest) < 15, rest
    retried = [call["at"] for call in receiver.calls[1:] if int(call["headers"]["X-ZakOps-Notification"]) == in_hand]
    assert retried and all(call_at > max(rest) + killed_at for call_at in retried)
