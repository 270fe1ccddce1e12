"""`hitl_notify` (the worker) and `create_notify_channel`, as scripts run them."""

import io
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from notifications.models import Channel, Notification

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> list[str]:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def test_hitl_notify_once_sends_what_is_due_and_says_what_it_did(people, request_approval, email_channel):
    request_approval("critical")
    assert run("hitl_notify", "--once") == [
        "reminders: 0 written; notifications: 2 sent, 0 to retry, 0 failed for good, 0 skipped"
    ]
    assert len(mail.outbox) == 2
    assert run("hitl_notify", "--once")[0].startswith("reminders: 0 written; notifications: 0 sent")
    assert len(mail.outbox) == 2


def test_create_notify_channel_prints_a_new_signing_secret_last_and_keeps_it_on_update(receiver):
    lines = run("create_notify_channel", "ops", "--kind", "webhook", "--url", receiver.url("/in/tok3n"), "--only", "requested,reminder", "--min-level", "high")
    channel = Channel.objects.get(name="ops")
    assert lines[-1] == channel.signing_secret and lines[-1].startswith("whsec_")
    assert f"posting to http://127.0.0.1:{receiver.port}/…" in lines[0] and "tok3n" not in lines[0]
    assert (channel.on_requested, channel.on_reminder, channel.on_quarantined, channel.min_risk_level) == (True, True, False, "high")

    lines = run("create_notify_channel", "ops", "--kind", "webhook", "--url", receiver.url("/in/other"))
    updated = Channel.objects.get(name="ops")
    assert updated.signing_secret == channel.signing_secret and updated.url.endswith("/in/other")
    assert not any(line.startswith("whsec_") for line in lines)


def test_create_notify_channel_refuses_what_is_not_valid():
    with pytest.raises(CommandError, match="unknown kinds nope"):
        call_command("create_notify_channel", "x", "--kind", "slack", "--url", "https://h.example/x", "--only", "nope")
    with pytest.raises(CommandError, match="url: Enter a valid URL"):
        call_command("create_notify_channel", "x", "--kind", "slack", "--url", "not a url")
    with pytest.raises(CommandError, match="e-mail channel"):
        call_command("create_notify_channel", "E-mail", "--kind", "slack", "--url", "https://h.example/x")
    assert not Notification.objects.exists()


def test_the_loop_stops_cleanly_on_sigterm(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'loop.sqlite3'}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "hitl_notify", "--interval", "0.2"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in worker.stderr], daemon=True)
    reader.start()
    try:
        while "until stopped" not in lines.get(timeout=60):
            pass
        time.sleep(0.5)  # a few passes
        assert worker.poll() is None  # looping
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    reader.join(timeout=10)  # the output up to the end
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert any("hitl_notify: stopped" in line for line in rest), rest
