"""The compiled rule cache: no query while nothing changed, a change seen at once."""

import threading
import time

import psycopg
import pytest
from django.db import OperationalError, connection

from common.changes import ChangeFeed, feed
from risk import rulebook
from risk.models import RiskRule
from risk.rulebook import rulebook_changed
from risk.services import risk_assess


def wait_for_listener():
    """On PostgreSQL, until the NOTIFY listener is connected every assessment reloads."""
    deadline = time.monotonic() + 10
    while not feed.listening(rulebook.CHANNEL) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed.listening(rulebook.CHANNEL), "the change listener did not connect"


@pytest.mark.django_db
def test_assessments_make_no_query_while_nothing_changed(django_assert_num_queries):
    risk_assess(action_type="DEAL.GET_DETAILS")
    wait_for_listener()
    risk_assess(action_type="DEAL.GET_DETAILS")
    with django_assert_num_queries(0):
        for _ in range(50):
            risk_assess(action_type="COMMUNICATION.SEND_EMAIL", inputs={"to": "a@b.example"})


@pytest.mark.django_db
def test_a_rule_saved_through_a_service_is_seen_by_the_next_assessment():
    assert risk_assess(action_type="DEAL.GET_DETAILS").level == "low"
    RiskRule.objects.filter(name="read_only").update(risk_level="high")
    rulebook_changed()
    assert risk_assess(action_type="DEAL.GET_DETAILS").level == "high"


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's version triggers; PostgreSQL NOTIFYs (below)")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_on_an_sqlite_file_a_committed_edit_reaches_another_process():
    other = ChangeFeed()  # another process on the same machine, with its own view of the file
    seen = other.subscribe(rulebook.CHANNEL)
    assert seen.changed()  # first use loads
    assert not seen.changed()
    RiskRule.objects.create(name="new_rule", risk_level="high", action_types=["DEAL.GET_DETAILS"])  # no announce()
    assert seen.changed()
    assert not seen.changed()  # once per change
    other.stop()


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_edit_from_another_process_reaches_this_one_through_notify(django_assert_num_queries):
    risk_assess(action_type="DEAL.GET_DETAILS")
    wait_for_listener()
    risk_assess(action_type="DEAL.GET_DETAILS")
    with django_assert_num_queries(0):
        assert risk_assess(action_type="DEAL.GET_DETAILS").level == "low"

    # Another process (its own connection, no call into this one) edits the rule.
    s = connection.settings_dict
    with psycopg.connect(
        dbname=s["NAME"], host=s["HOST"] or None, port=s["PORT"] or None, user=s["USER"] or None,
        password=s["PASSWORD"] or None, autocommit=True,
    ) as other:
        other.execute("UPDATE risk_riskrule SET risk_level = 'high' WHERE name = 'read_only'")

    seen = threading.Event()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if risk_assess(action_type="DEAL.GET_DETAILS").level == "high":
            seen.set()
            break
        time.sleep(0.01)
    assert seen.is_set(), "the edit never reached this process"


@pytest.mark.django_db
def test_a_reload_that_failed_is_tried_again_on_the_next_assessment(monkeypatch):
    """A change seen while the database is down must not leave the old rules in force."""
    assert risk_assess(action_type="DEAL.GET_DETAILS", inputs={}, context={}).level == "low"
    RiskRule.objects.filter(name="read_only").update(risk_level="high")
    real_load = rulebook.rulebook_load

    def down():
        raise OperationalError("connection refused")

    monkeypatch.setattr(rulebook, "rulebook_load", down)
    feed.mark(rulebook.CHANNEL)  # as a notification from another process does
    with pytest.raises(OperationalError):
        risk_assess(action_type="DEAL.GET_DETAILS", inputs={}, context={})
    monkeypatch.setattr(rulebook, "rulebook_load", real_load)
    assert risk_assess(action_type="DEAL.GET_DETAILS", inputs={}, context={}).level == "high"
