"""The engine webhook reaches the client's own decision receiver (the one the resumer
runs with --listen): the server's signature is accepted, the event handed on once, and a
receiver that could not take it gets it again on the server's retry."""

import threading

import pytest
from zakops_hitl_client.receiver import serve_decisions

from approvals.services.decisions import approval_decide
from notifications.models import Notification
from notifications.services import notifications_work

pytestmark = pytest.mark.django_db


class Wake:
    def __init__(self):
        self.events, self.fail, self.event = [], False, threading.Event()

    def __call__(self, event):
        if self.fail:
            raise RuntimeError("not now")
        self.events.append(event)
        self.event.set()


@pytest.fixture
def wake_on(make_channel):
    """An engine webhook channel posting to a decision receiver on loopback, and what the
    receiver handed on."""
    made = []

    def start():
        wake = Wake()
        channel = make_channel("engine", "http://127.0.0.1:9/", name="engine")  # the secret, before the port
        server = serve_decisions(channel.signing_secret, on_event=wake)
        made.append(server)
        channel.url = f"http://127.0.0.1:{server.server_address[1]}/hitl/events"
        channel.save(update_fields=["url"])
        return wake

    yield start
    for server in made:
        server.shutdown()
        server.server_close()


def test_a_decision_wakes_the_receiver_once_with_the_approved_inputs(wake_on, request_approval, people):
    wake = wake_on()
    approval = request_approval("medium")
    approval_decide(action_id=approval.action_id, actor=people["operator"], decision="approve", inputs={"subject": "Final"})
    notifications_work()
    notifications_work()
    assert wake.event.is_set()
    [event] = wake.events
    assert (event["action_id"], event["state"], event["approved_inputs"]) == (approval.action_id, "approved", {"subject": "Final"})


def test_a_receiver_that_could_not_take_the_event_gets_it_on_the_retry(wake_on, request_approval, people, settings):
    settings.HITL_NOTIFY_RETRY_SECONDS = 0
    wake = wake_on()
    wake.fail = True
    approval = request_approval("medium")
    approval_decide(action_id=approval.action_id, actor=people["operator"], decision="reject", reason="Wrong deal.")
    notifications_work()
    assert wake.events == [] and Notification.objects.get(channel__kind="engine").status != "sent"
    wake.fail = False
    notifications_work()
    assert [event["state"] for event in wake.events] == ["rejected"]
    assert Notification.objects.get(channel__kind="engine").status == "sent"
