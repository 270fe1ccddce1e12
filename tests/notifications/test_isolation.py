"""A dead or hanging webhook never slows or fails the engine's request or a reviewer's
decision: they only write rows; the worker alone talks to the receivers."""

import json
import socket
import threading
import time

import pytest

from approvals.services.decisions import approval_decide
from approvals.services.requests import approval_request
from notifications.models import Notification
from notifications.services import notifications_work
from tests.notifications.conftest import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def bad_channels(receiver, make_channel):
    receiver.delay = 3.0  # hangs longer than any request may take
    receiver.fail_first = 100
    make_channel("webhook", receiver.url(), name="hanging")
    make_channel("slack", f"http://127.0.0.1:{free_port()}/dead", name="dead")
    return receiver


def test_requests_and_decisions_only_write_rows_however_bad_the_receivers(bad_channels, engine, people):
    started = time.monotonic()
    request, created = approval_request(
        action_id="ACT-ISO-1", action_type="DOCUMENT.GENERATE_LOI", requester=engine, title="LOI for Acme",
    )
    approval_decide(action_id="ACT-ISO-1", actor=people["operator"], decision="quarantine", reason="Check the price.")
    approval_decide(action_id="ACT-ISO-1", actor=people["admin"], decision="approve", reason="Price checked.")
    assert time.monotonic() - started < 2.0  # the receiver alone would take 3 s
    assert created and request.state == "pending"

    posts = Notification.objects.filter(channel__kind__in=("webhook", "slack"))
    assert posts.count() == 4  # requested and quarantined, to each channel
    assert set(posts.values_list("status", "attempts")) == {("pending", 0)}
    assert bad_channels.calls == []


def test_the_api_answers_at_once_while_the_receiver_hangs(bad_channels, engine_api, people, api, make_reviewer):
    started = time.monotonic()
    response = engine_api.post(
        "/api/hitl/approval-requests",
        json.dumps({"action_id": "ACT-ISO-2", "action_type": "DOCUMENT.GENERATE_LOI", "title": "LOI"}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    api.force_authenticate(make_reviewer("operator"))
    response = api.post("/api/hitl/actions/ACT-ISO-2/approve", {}, format="json")
    assert response.status_code == 200, response.content
    assert time.monotonic() - started < 2.0  # the receiver alone would take 3 s
    assert bad_channels.calls == []


def test_the_worker_gives_a_hanging_receiver_its_timeout_and_moves_on(bad_channels, engine, settings):
    settings.HITL_NOTIFY_TIMEOUT_SECONDS = 1
    approval_request(action_id="ACT-ISO-3", action_type="DOCUMENT.GENERATE_LOI", requester=engine)
    started = time.monotonic()
    _, counts = notifications_work()
    assert time.monotonic() - started < 2.5  # one timeout, one refused connection
    assert counts.retrying == 2
    errors = dict(Notification.objects.filter(channel__kind__in=("webhook", "slack")).values_list("channel__name", "last_error"))
    assert errors["hanging"] == "no answer within 1 s"
    assert errors["dead"].startswith("could not connect")


def test_a_dead_receiver_costs_a_pass_one_timeout_however_many_messages_wait_for_it(
    receiver, make_channel, engine, people, settings
):
    settings.HITL_NOTIFY_TIMEOUT_SECONDS = 1
    receiver.delay = 3.0
    make_channel("webhook", receiver.url(), name="hanging")
    for number in range(4):
        approval_request(action_id=f"ACT-BACKLOG-{number}", action_type="DOCUMENT.GENERATE_LOI", requester=engine)
    started = time.monotonic()
    _, counts = notifications_work()
    assert time.monotonic() - started < 1.9  # one timeout, not four
    assert counts.sent == 16  # every e-mail went out in the same pass
    posts = Notification.objects.filter(channel__name="hanging").order_by("pk")
    assert [row.attempts for row in posts] == [1, 0, 0, 0]
    assert {row.next_attempt_at for row in posts} == {posts[0].next_attempt_at}  # all wait for the channel's next try
    assert posts[1].last_error == "Not tried: the channel did not answer just before (no answer within 1 s)."


@pytest.fixture
def dripping_receiver():
    """A receiver on 127.0.0.1 that reads the post, then answers one byte every 0.3 s: each
    wait is shorter than any timeout, the whole answer takes many seconds."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 40:
                if stop.wait(0.3):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def test_a_receiver_answering_a_byte_at_a_time_gets_one_timeout_in_all(dripping_receiver, make_channel, engine, settings):
    settings.HITL_NOTIFY_TIMEOUT_SECONDS = 1
    make_channel("slack", f"http://127.0.0.1:{dripping_receiver}/slow", name="dripping")
    approval_request(action_id="ACT-DRIP-1", action_type="DOCUMENT.GENERATE_LOI", requester=engine)
    started = time.monotonic()
    _, counts = notifications_work()
    assert time.monotonic() - started < 1.9  # not the 15 s the answer would take
    row = Notification.objects.get(channel__name="dripping")
    assert (row.status, row.last_error, counts.retrying) == ("pending", "no answer within 1 s", 1)
