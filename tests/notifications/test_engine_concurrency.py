"""The engine webhook under real concurrency (threads on their own connections): sweeps
expiring the same requests and workers sending at once, or a decision racing a
cancellation, still tell the engine of each request's end exactly once."""

from collections import Counter

import pytest

from approvals.models import ApprovalRequest
from approvals.services.cancel import approval_cancel
from approvals.services.decisions import approval_decide
from approvals.services.expiry import approvals_expire
from common.errors import HitlError
from notifications.models import Notification, NotificationStatus
from notifications.services import notifications_work
from tests.conftest import run_at_once
from tests.notifications.test_engine_webhook import events_received

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_sweeps_and_workers_racing_tell_the_engine_of_each_expiry_once(make_channel, receiver, request_approval):
    channel = make_channel("engine", receiver.url("/hitl/events"))
    receiver.delay = 0.01  # a receiver that takes a moment widens every window
    requests = [request_approval(level) for level in ("medium", "high", "critical") * 2]
    later = max(request.expires_at for request in requests)
    ApprovalRequest.objects.update(expires_at=later)

    def sweep_and_send(_):
        expired = approvals_expire(now=later, batch=2)
        return expired, notifications_work()[1].sent

    results = run_at_once(4, sweep_and_send)
    assert not [r for r in results if isinstance(r, Exception)], results
    notifications_work()  # what a worker may have found still held by another, or not yet written
    assert sum(expired for expired, _ in results) == 6

    events = events_received(receiver, channel.signing_secret)
    assert Counter(event["action_id"] for event in events) == Counter({request.action_id: 1 for request in requests})
    assert {event["state"] for event in events} == {"expired"}
    assert len(receiver.calls) == 6
    assert set(Notification.objects.values_list("status", "attempts")) == {(NotificationStatus.SENT, 1)}


def test_a_decision_racing_a_cancellation_tells_the_engine_of_the_winner_only(
    make_channel, receiver, request_approval, people, engine
):
    channel = make_channel("engine", receiver.url("/hitl/events"))
    requests = [request_approval("medium") for _ in range(4)]

    def race(i):
        request = requests[i // 2]
        try:
            if i % 2:
                return approval_cancel(action_id=request.action_id, actor=engine, reason="Withdrawn.").state
            return approval_decide(
                action_id=request.action_id, actor=people["operator"], decision="reject", reason="No."
            ).state
        except HitlError as exc:  # lost the race: a conflict
            return type(exc).__name__

    results = run_at_once(8, race)
    assert not [r for r in results if isinstance(r, Exception)], results
    for pair in zip(results[::2], results[1::2], strict=True):  # one winner of each race
        assert sorted(pair) in (["Conflict", "rejected"], ["Conflict", "cancelled"]), results
    run_at_once(2, lambda _: notifications_work())
    events = {event["action_id"]: event for event in events_received(receiver, channel.signing_secret)}
    assert len(receiver.calls) == 4 and set(events) == {request.action_id for request in requests}
    for request in requests:
        request.refresh_from_db()
        assert events[request.action_id]["state"] == request.state in ("rejected", "cancelled")
