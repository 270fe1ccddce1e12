"""The change feed behind a transaction pooler: with DATABASE_LISTEN_URL it LISTENs on that
direct connection; without one it reads the version rows, at most once a second."""

import time

import psycopg
import pytest
from django.db import connection

from common.changes import ChangeFeed
from risk.rulebook import CHANNEL as RULES

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db]


def bump_rules() -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE risk_riskrule SET description = description || '' WHERE name = 'read_only'")


@pytest.fixture
def polling(settings):
    settings.DATABASE_TRANSACTION_POOLING = True
    settings.HITL_LISTEN_DATABASE = None
    feed = ChangeFeed()
    yield feed
    feed.stop()


def test_behind_a_pooler_without_a_direct_connection_the_feed_polls(polling):
    assert polling.ready() == "polling"
    assert polling._listener is None  # no LISTEN through the pooler: it would hear nothing


def test_polling_reads_the_version_rows_at_most_once_a_second(polling, django_assert_num_queries, monkeypatch):
    rules = polling.subscribe(RULES)
    queue = polling.subscribe("hitl_approvals")  # a channel with no version row
    assert rules.changed() and queue.changed()  # first use loads
    with django_assert_num_queries(0):
        for _ in range(200):
            assert not rules.changed()
            assert not queue.changed()

    bump_rules()  # a rule edit: the trigger counts it in hitl_change_version
    assert not rules.changed(), "seen only at the next read of the version rows"
    monkeypatch.setattr(polling, "_next_poll", time.monotonic())  # a second has passed
    with django_assert_num_queries(3):  # SAVEPOINT, the read, RELEASE
        assert rules.changed()
    assert queue.changed(), "a channel without a version row counts as changed once a second"
    assert not rules.changed()


def test_the_version_row_counts_every_change_of_rules_and_tokens():
    with connection.cursor() as cursor:
        cursor.execute("SELECT channel, version FROM hitl_change_version ORDER BY channel")
        before = dict(cursor.fetchall())
        cursor.execute("UPDATE risk_risksettings SET bulk_threshold = bulk_threshold")
        cursor.execute("UPDATE accounts_apitoken SET revoked_at = now()")  # no rows: a statement all the same
        cursor.execute("SELECT channel, version FROM hitl_change_version ORDER BY channel")
        after = dict(cursor.fetchall())
    assert set(before) == {"hitl_api_tokens", "hitl_risk_rules"}
    assert after == {channel: version + 1 for channel, version in before.items()}


def test_a_failed_read_leaves_the_callers_transaction_usable(polling, monkeypatch):
    from django.db import transaction

    rules = polling.subscribe(RULES)
    monkeypatch.setattr("common.changes.VERSION_TABLE", "no_such_table")
    with transaction.atomic():
        assert rules.changed()  # unreadable: the cache reloads rather than trusting itself
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")


def test_with_a_direct_connection_the_feed_listens_on_it(settings):
    s = connection.settings_dict
    settings.DATABASE_TRANSACTION_POOLING = True
    settings.HITL_LISTEN_DATABASE = {
        "NAME": s["NAME"], "HOST": s["HOST"], "PORT": s["PORT"], "USER": s["USER"], "PASSWORD": s["PASSWORD"], "OPTIONS": {},
    }
    feed = ChangeFeed()
    rules = feed.subscribe(RULES)
    try:
        assert feed.ready(timeout=10) == "listening"
        assert rules.changed()
        assert not rules.changed()
        with psycopg.connect(
            dbname=s["NAME"], host=s["HOST"] or None, port=s["PORT"] or None, user=s["USER"] or None,
            password=s["PASSWORD"] or None, autocommit=True,
        ) as other:
            other.execute("UPDATE risk_riskrule SET description = description WHERE name = 'read_only'")
        deadline = time.monotonic() + 5
        while not rules.changed():
            assert time.monotonic() < deadline, "the NOTIFY did not arrive on the direct connection"
            time.sleep(0.01)
    finally:
        feed.stop()
