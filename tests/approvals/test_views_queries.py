"""The reviewer pages run a fixed number of SQL queries, whatever the number of rows on a
page, the length of an action's history or its precedent; and the queue's refresh every
4 s, when nothing changed, costs no query beyond the session and its user."""

import time

import pytest
from django.utils import timezone

from approvals import selectors
from approvals.models import QUEUE_CHANNEL
from approvals.services.decisions import approval_decide
from checkpoints.services import checkpoint_save
from common.changes import feed
from zakops.models import Deal, DealEvent

pytestmark = pytest.mark.django_db

# The queue page (and its htmx partial): the session, its user, the user's account and
# role (groups), then review_queue's two: the counts per risk level and the page's rows
# with their actions and deals.
QUEUE_QUERIES = 6
# The detail page: the session, its user, the action with its deal, the account and role,
# the latest request with its claim (a join; its action is the one already read), the
# checkpoints (without their data, which loads on demand), the history, and the
# precedent's counts and latest few (with their actions), and the requests before and
# after it in the queue it was opened from, and the page of that queue it is on. Reading
# the page writes nothing: the page claims its request by a POST of its own.
DETAIL_QUERIES = 13
# An unchanged queue answers 204 before the view reads anything: the session and its user.
UNCHANGED_REFRESH_MAX_QUERIES = 2

LEVELS = ("medium", "high", "critical")


def queue_version_warm() -> str:
    """The queue's version, computed once, so that the next asks cost no query. On
    PostgreSQL that needs the change listener connected: until it listens, every ask
    recomputes (a missed notification must not leave the version stale)."""
    deadline = time.monotonic() + 10
    while not feed.listening(QUEUE_CHANNEL) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed.listening(QUEUE_CHANNEL), "the change listener did not connect"
    version = selectors.queue_version()
    assert selectors.queue_version() == version
    return version


@pytest.fixture
def operator_client(client, make_reviewer):
    client.force_login(make_reviewer("operator", "reviewer@example.com"))
    return client


@pytest.fixture
def add_requests(request_approval):
    """add_requests(n): n more open requests of mixed levels, every other one on a deal
    of its own, so that each row shows an action and, for half of them, a deal."""
    made = []

    def add(count: int):
        for _ in range(count):
            n = len(made)
            deal_id = None
            if n % 2:
                deal_id = f"DL-{n:04d}"
                Deal.objects.create(deal_id=deal_id, canonical_name=f"Deal {n}", display_name=f"Deal {n}")
            made.append(request_approval(LEVELS[n % len(LEVELS)], deal_id=deal_id, requested_by=f"rita{n}@example.com"))
        return made

    return add


def rows_shown(response) -> int:
    return len(response.context["rows"])


def test_the_queue_page_runs_the_same_queries_for_3_rows_and_30(operator_client, add_requests, django_assert_num_queries):
    add_requests(3)
    queue_version_warm()
    with django_assert_num_queries(QUEUE_QUERIES):
        few = operator_client.get("/")
    assert few.status_code == 200 and rows_shown(few) == 3

    add_requests(27)
    queue_version_warm()
    with django_assert_num_queries(QUEUE_QUERIES):
        many = operator_client.get("/")
    assert many.status_code == 200 and rows_shown(many) == selectors.PAGE_SIZE  # 25 of 30, page 1 of 2
    assert many.context["page"].total == 30


def test_every_filter_at_once_costs_no_query_more(operator_client, add_requests, django_assert_num_queries):
    add_requests(30)
    queue_version_warm()
    filters = {"decidable": "1", "claim": "unclaimed", "sort": "deadline", "deal": "deal", "action_type": "COMM",
               "q": "action", "risk_level": "medium"}
    with django_assert_num_queries(QUEUE_QUERIES):
        filtered = operator_client.get("/", filters)
    assert filtered.status_code == 200 and rows_shown(filtered) == 5  # the medium ones on a deal


def test_the_queue_partial_after_a_change_runs_the_same_queries_for_3_rows_and_30(
    operator_client, add_requests, django_assert_num_queries
):
    """A refresh showing a version that is no longer current gets the results partial."""
    add_requests(3)
    queue_version_warm()
    with django_assert_num_queries(QUEUE_QUERIES):
        few = operator_client.get("/?v=0000000000000000", HTTP_HX_REQUEST="true")
    assert few.status_code == 200 and rows_shown(few) == 3
    assert b'id="results"' in few.content and b"<html" not in few.content

    add_requests(27)
    queue_version_warm()
    with django_assert_num_queries(QUEUE_QUERIES):
        many = operator_client.get("/?v=0000000000000000", HTTP_HX_REQUEST="true")
    assert many.status_code == 200 and rows_shown(many) == selectors.PAGE_SIZE


def test_the_decided_tab_runs_the_same_queries_for_3_rows_and_30(
    operator_client, add_requests, people, django_assert_num_queries
):
    made = add_requests(30)
    for request in made[:3]:
        # Critical requests need two admins' approvals.
        decided = approval_decide(action_id=request.action_id, actor=people["admin"], decision="approve", reason="ok")
        if decided.state == "pending":
            approval_decide(action_id=request.action_id, actor=people["admin2"], decision="approve", reason="ok")
    queue_version_warm()
    with django_assert_num_queries(QUEUE_QUERIES):
        few = operator_client.get("/?tab=decided")
    assert few.status_code == 200 and rows_shown(few) == 3

    for request in made[3:]:
        approval_decide(action_id=request.action_id, actor=people["admin"], decision="reject", reason="no")
    queue_version_warm()
    with django_assert_num_queries(QUEUE_QUERIES):
        many = operator_client.get("/?tab=decided")
    assert many.status_code == 200 and rows_shown(many) == selectors.PAGE_SIZE


def test_the_refresh_of_an_unchanged_queue_is_a_204_with_at_most_two_queries(
    operator_client, add_requests, django_assert_max_num_queries
):
    add_requests(30)
    version = queue_version_warm()
    for _ in range(3):  # every refresh, not only the first
        with django_assert_max_num_queries(UNCHANGED_REFRESH_MAX_QUERIES):
            response = operator_client.get(f"/?v={version}", HTTP_HX_REQUEST="true")
        assert response.status_code == 204
        assert response.content == b""


def test_the_refresh_after_a_change_gets_the_new_results(operator_client, add_requests, people):
    made = add_requests(3)
    version = queue_version_warm()
    approval_decide(action_id=made[0].action_id, actor=people["admin"], decision="approve", reason="ok")
    response = operator_client.get(f"/?v={version}", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and rows_shown(response) == 2
    assert response.context["version"] != version


def _history(action_id: str, events: int) -> None:
    now = timezone.now()
    DealEvent.objects.bulk_create(
        DealEvent(event_type="action.note", source="tests", actor="engine", details={"action_id": action_id, "n": n},
                  created_at=now, sequence_number=n)
        for n in range(events)
    )


def test_the_detail_page_runs_the_same_queries_whatever_the_history(
    operator_client, request_approval, people, django_assert_num_queries
):
    """First an action with one event, no checkpoint and no precedent; then one with 41
    events, 5 checkpoints and 7 earlier decisions of its type."""
    short = request_approval("high", requested_by="rita@example.com")
    queue_version_warm()
    with django_assert_num_queries(DETAIL_QUERIES):
        response = operator_client.get(f"/actions/{short.action_id}/")
    assert response.status_code == 200 and response.context["row"].can_decide
    assert len(response.context["history"]) == 1
    assert response.context["checkpoints"] == [] and response.context["precedent"].latest == []

    Deal.objects.create(deal_id="DL-LONG", canonical_name="Long history", display_name="Long history")
    long = request_approval("high", requested_by="rita@example.com", deal_id="DL-LONG")
    _history(long.action_id, 40)
    for n in range(5):
        checkpoint_save(action_id=long.action_id, checkpoint_name=f"step-{n}", checkpoint_data={"n": n})
    for n in range(7):  # earlier requests of the same type, decided by people: the precedent
        earlier = request_approval("high", requested_by="rita@example.com")
        approval_decide(action_id=earlier.action_id, actor=people["admin"], decision="approve" if n % 2 else "reject",
                        reason=f"reason {n}")
    queue_version_warm()
    with django_assert_num_queries(DETAIL_QUERIES):
        response = operator_client.get(f"/actions/{long.action_id}/")
    assert response.status_code == 200 and response.context["row"].can_decide
    assert len(response.context["history"]) == 41
    assert len(response.context["checkpoints"]) == 5
    precedent = response.context["precedent"]
    assert (precedent.approved, precedent.rejected, len(precedent.latest)) == (3, 4, selectors.PRECEDENT_SHOWN)


def test_a_queue_version_that_could_not_be_read_is_read_again(request_approval, monkeypatch):
    """A change seen while the database is down must not leave the old version in force."""
    from django.db import OperationalError, connection

    version = queue_version_warm()
    request_approval("medium")
    feed.mark(QUEUE_CHANNEL)  # as the notification of the new request does

    def down():
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(connection, "ensure_connection", down)
        with pytest.raises(OperationalError):
            selectors.queue_version()
    assert selectors.queue_version() != version
