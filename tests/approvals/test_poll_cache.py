"""The poll from memory (approvals.selectors.approval_polled): each action's latest request
kept per process, dropped when the change feed says the action's request changed, and
bypassed while the feed can not hear every change. A decision is never polled stale: not
in the process that made it, not (past the notification's few milliseconds) in another."""

import time

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.services import api_token_create, service_account_ensure
from approvals import selectors
from approvals.models import QUEUE_CHANNEL, ApprovalRequest
from approvals.services.decisions import approval_decide
from common.changes import ChangeFeed, feed
from common.keyed_cache import KeyedCache
from tests.servers import Client, app_server, eventually, production_env
from tests.zakops_hitl.conftest import static_root  # noqa: F401  (a fixture)

ON_POSTGRESQL = connection.vendor == "postgresql"


def wait_for_listener():
    deadline = time.monotonic() + 10
    while not feed.instant(QUEUE_CHANNEL) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert feed.instant(QUEUE_CHANNEL), "the change listener did not connect"


def other_process():
    """A connection of its own, as another process has: its writes tell this process only
    through the table's trigger."""
    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"], host=s["HOST"] or None, port=s["PORT"] or None, user=s["USER"] or None,
        password=s["PASSWORD"] or None, autocommit=True,
    )


def state_of(action_id: str) -> str:
    return selectors.approval_polled(action_id=action_id).as_seen().state


def kept(action_id: str) -> None:
    """Until the action's request is kept: the notifications of the commits that made it
    arrive a few milliseconds later, and each drops it once more."""

    def asks_nothing():
        state_of(action_id)
        with CaptureQueriesContext(connection) as asked:
            state_of(action_id)
        return not asked.captured_queries

    eventually(asks_nothing, within=10)


@pytest.mark.django_db
def test_a_repeated_poll_asks_the_database_nothing(request_approval, django_assert_num_queries):
    request = request_approval("medium")
    if ON_POSTGRESQL:
        wait_for_listener()
    state_of(request.action_id)
    with django_assert_num_queries(0):
        assert [state_of(request.action_id) for _ in range(20)] == ["pending"] * 20


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_poll_right_after_a_decision_in_the_same_process_is_never_stale(request_approval, people):
    if ON_POSTGRESQL:
        wait_for_listener()  # the cache in use: the decision must drop the kept request
    requests = [request_approval("medium") for _ in range(5)]
    for request, decision in zip(requests, ["approve", "reject", "quarantine", "approve", "reject"]):
        assert state_of(request.action_id) == state_of(request.action_id) == "pending"
        approval_decide(action_id=request.action_id, decision=decision, actor=people["operator"], reason="checked")
        assert state_of(request.action_id) == {"approve": "approved", "reject": "rejected"}.get(decision, "quarantined")


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_change_made_by_another_process_is_seen_through_the_notification(request_approval):
    kept, other = request_approval("medium"), request_approval("medium")
    wait_for_listener()
    assert state_of(kept.action_id) == state_of(other.action_id) == "pending"
    with other_process() as conn:
        conn.execute("UPDATE approvals_approvalrequest SET state = 'rejected' WHERE action_id = %s", [other.action_id])
    eventually(lambda: state_of(other.action_id) == "rejected", within=10)
    assert state_of(kept.action_id) == "pending"


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_notification_names_the_action_and_a_large_statement_names_the_table(request_approval):
    requests = [request_approval("medium") for _ in range(3)]
    with other_process() as listener, other_process() as writer:
        listener.execute(f"LISTEN {QUEUE_CHANNEL}")
        writer.execute("UPDATE approvals_approvalrequest SET reason = 'x' WHERE action_id = ANY(%s)",
                       [[r.action_id for r in requests[:2]]])
        writer.execute("DELETE FROM notifications_notificationevent WHERE request_id = %s", [requests[2].id])
        writer.execute("DELETE FROM approvals_approvalrequest WHERE action_id = %s", [requests[2].action_id])
        writer.execute("UPDATE approvals_approvalrequest SET reason = 'y' WHERE action_id = ANY(%s)",
                       [[f"ACT-NONE-{n}" for n in range(5)]])  # no row: nothing to tell
        many = [f"ACT-MANY-{n:03d}" for n in range(101)]
        writer.execute(
            f"INSERT INTO approvals_approvalrequest (id, action_id, round, {', '.join(_other_columns())})"
            " SELECT (md5(random()::text || a))::uuid, a, r.round + 1, "
            + ", ".join(f"r.{c}" for c in _other_columns()) + " FROM approvals_approvalrequest r, unnest(%s::text[]) a"
            " WHERE r.action_id = %s", [many, requests[0].action_id],
        )
        payloads = [n.payload for n in listener.notifies(timeout=1)]
    assert sorted(payloads) == sorted([f"key:{r.action_id}" for r in requests] + ["approvals_approvalrequest"])


def _other_columns() -> list[str]:
    names = [f.column for f in ApprovalRequest._meta.concrete_fields if not getattr(f, "generated", False)]
    return [name for name in names if name not in ("id", "action_id", "round")]


@pytest.fixture
def listener_down(monkeypatch):
    """The change listener's connection dropped (a database restart): it waits to reconnect."""
    from common import changes

    wait_for_listener()
    monkeypatch.setattr(changes._Listener, "RETRY_SECONDS", 60.0)  # stays down while the test runs
    with other_process() as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'zakops-hitl listener'"
                     " AND datname = current_database()")
    eventually(lambda: not feed.instant(QUEUE_CHANNEL), within=10)
    yield
    feed.stop()  # ends the waiting listener; the next use starts a new one


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_while_the_listener_is_down_the_poll_reads_the_database(request_approval, django_assert_num_queries, request):
    pending = request_approval("medium")
    wait_for_listener()
    kept(pending.action_id)
    with django_assert_num_queries(0):
        assert state_of(pending.action_id) == "pending"  # kept
    request.getfixturevalue("listener_down")
    with other_process() as conn:  # a change whose notification nobody hears
        conn.execute("UPDATE approvals_approvalrequest SET state = 'rejected' WHERE action_id = %s", [pending.action_id])
    with django_assert_num_queries(3):
        assert [state_of(pending.action_id) for _ in range(3)] == ["rejected"] * 3


@pytest.mark.postgresql
@pytest.mark.django_db
def test_behind_a_pooler_without_a_direct_connection_the_cache_is_bypassed(settings, request_approval):
    settings.DATABASE_TRANSACTION_POOLING = True
    settings.HITL_LISTEN_DATABASE = None
    polling = ChangeFeed()
    loads = []
    cache = KeyedCache(QUEUE_CHANNEL, size=10, changes=polling)
    try:
        for _ in range(3):
            cache.get("ACT-1", loads.append)
        assert len(loads) == 3 and len(cache) == 0  # a change elsewhere is seen only within a second there
    finally:
        polling.stop()


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_decision_in_this_process_is_seen_by_the_polls_of_a_server(tmp_path, static_root, request_approval, people):  # noqa: F811
    requests = [request_approval("medium") for _ in range(3)]
    token = api_token_create(user=service_account_ensure(name="action-engine"), name="engine")[1]
    with app_server(production_env(static_root), tmp_path / "server.log") as server:
        engine = Client(server.base_url, token=token)
        assert Client(server.base_url).get("/readyz").json()["checks"]["change_feed"] == "listening"

        def polled(action_id):
            return engine.get(f"/api/hitl/actions/{action_id}/approval").json()["state"]

        for request, decision in zip(requests, ["approve", "reject", "quarantine"]):
            assert polled(request.action_id) == polled(request.action_id) == "pending"  # the server keeps it
            approval_decide(action_id=request.action_id, decision=decision, actor=people["operator"], reason="checked")
            expected = {"approve": "approved", "reject": "rejected"}.get(decision, "quarantined")
            eventually(lambda: polled(request.action_id) == expected, within=10)  # noqa: B023
        assert polled(requests[0].action_id) == "approved"
