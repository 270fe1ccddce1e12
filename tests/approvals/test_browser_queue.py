"""The queue in a real browser, second pass: filters typed as a reviewer types them, a
two-admin approval seen as a vote across two sessions, moving on after a decision past a
row another reviewer holds, the queue's keys (range and page selection, search, tabs,
back from a detail page), and axe on what these add."""

import re

import pytest
from playwright.sync_api import expect

from approvals.models import ApprovalRequest
from approvals.services.claims import claim_take
from approvals.services.requests import approval_request
from tests.approvals.conftest import TYPE_FOR_LEVEL
from tests.browser import PageProblems, chromium, close_page, new_page, sign_in
from zakops.models import Deal

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
REFRESH_MS = 9_000  # the queue refreshes every 4 s


@pytest.fixture(scope="module")
def _chromium(django_db_setup):
    with chromium() as browser:
        yield browser


@pytest.fixture
def pages(_chromium, live_server):
    """pages() -> a new desktop page in its own context; each ends without console
    errors, uncaught exceptions or CSP violations."""
    made = []

    def make():
        page = new_page(_chromium)
        made.append((page, PageProblems(page)))
        return page

    yield make
    for page, problems in made:
        close_page(page)
        assert problems.all() == []


def _open(engine, action_id, level="medium", *, deal_id=None, title=None):
    action_type, inputs = TYPE_FOR_LEVEL[level]
    request, created = approval_request(
        action_id=action_id, action_type=action_type, requester=engine, inputs=inputs, deal_id=deal_id,
        title=title or f"A {level} action",
    )
    assert created and request.risk_level == level
    return request


def rows(page):
    return page.locator("#results tbody tr.row[data-action-id]")


def row(page, action_id):
    return page.locator(f'#results tr.row[data-action-id="{action_id}"]')


def current(page):
    return page.locator("#results tr.row.current")


def ids(page) -> list[str]:
    return [each.get_attribute("data-action-id") for each in rows(page).all()]


# --- filters --------------------------------------------------------------------------


def test_typing_into_every_filter_narrows_the_list(live_server, pages, people, engine):
    Deal.objects.create(deal_id="DEMO-0002", canonical_name="Borealis Holdings", display_name="Borealis")
    Deal.objects.create(deal_id="DEMO-0003", canonical_name="Cobalt Mining")
    _open(engine, "ACT-F-LOI", "high", deal_id="DEMO-0002", title="LOI for Borealis")
    _open(engine, "ACT-F-DRAFT", "medium", deal_id="DEMO-0003", title="Draft to Cobalt")
    _open(engine, "ACT-F-SEND", "critical", title="Send to the CFO")
    held = _open(engine, "ACT-F-HELD", "medium", title="Draft held by Oona")
    claim_take(action_id=held.action_id, actor=people["operator2"])
    page = pages()
    sign_in(page, live_server.url, "olu@example.com")
    expect(rows(page)).to_have_count(4)

    page.locator("#id_deal").press_sequentially("demo-0002")  # an id, in any case
    expect(rows(page)).to_have_count(1)
    expect(row(page, "ACT-F-LOI")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]deal=demo-0002(&|$)"))
    page.locator("#id_deal").fill("")
    page.locator("#id_deal").press_sequentially("cobalt")  # part of a name
    expect(rows(page)).to_have_count(1)
    expect(row(page, "ACT-F-DRAFT")).to_be_visible()
    page.locator("#id_deal").fill("")
    expect(rows(page)).to_have_count(4)

    page.locator("#id_action_type").press_sequentially("DOCUMENT")  # a prefix
    expect(rows(page)).to_have_count(1)
    expect(row(page, "ACT-F-LOI")).to_be_visible()
    page.locator("#id_action_type").fill("communication")
    expect(rows(page)).to_have_count(3)
    page.locator("#id_action_type").fill("")

    page.locator("#id_q").press_sequentially("held by")
    expect(rows(page)).to_have_count(1)
    expect(row(page, "ACT-F-HELD")).to_be_visible()
    page.locator("#id_q").fill("")
    expect(rows(page)).to_have_count(4)

    page.select_option("#id_risk_level", "critical")
    expect(rows(page)).to_have_count(1)
    page.select_option("#id_risk_level", "")

    page.check("#id_decidable")  # not the critical one, not the one Oona holds
    expect(rows(page)).to_have_count(2)
    assert sorted(ids(page)) == ["ACT-F-DRAFT", "ACT-F-LOI"]
    expect(page).to_have_url(re.compile(r"[?&]decidable=1(&|$)"))
    page.uncheck("#id_decidable")
    expect(rows(page)).to_have_count(4)

    page.select_option("#id_claim", "unclaimed")
    expect(rows(page)).to_have_count(3)
    expect(row(page, "ACT-F-HELD")).to_have_count(0)
    page.select_option("#id_claim", "mine")
    expect(page.locator("#results .empty")).to_have_text("Nothing is waiting for a decision with these filters.")
    page.select_option("#id_claim", "")

    page.select_option("#id_sort", "age")
    expect(page).to_have_url(re.compile(r"[?&]sort=age(&|$)"))
    expect(rows(page).first).to_have_attribute("data-action-id", "ACT-F-LOI")  # the oldest
    page.go_back()  # the back button undoes a filter
    expect(page).not_to_have_url(re.compile(r"sort=age"))
    expect(rows(page).first).to_have_attribute("data-action-id", "ACT-F-SEND")  # critical first
    assert ApprovalRequest.objects.filter(state="pending").count() == 4  # filtering decides nothing


# --- a vote reads as a vote -----------------------------------------------------------


def test_a_first_approval_of_a_critical_request_stays_as_one_of_two_across_two_admins(live_server, pages, people, engine):
    _open(engine, "ACT-VOTE-1", "critical", title="Send the SPA to the CFO")
    _open(engine, "ACT-VOTE-2", "medium")
    ada = pages()
    sign_in(ada, live_server.url, "ada@example.com")
    abe = pages()
    sign_in(abe, live_server.url, "abe@example.com")

    row(ada, "ACT-VOTE-1").get_by_role("button", name="Approve").click()
    votes = ada.locator("#decide-votes")
    expect(votes).to_have_text(
        "This request needs 2 approvals by different admins. Nobody has approved it yet. "
        "Your approval is 1 of 2: the request stays pending until another of the admins approves."
    )
    expect(ada.locator("#decide-required")).to_have_text("(required to approve a critical request)")
    ada.locator("#decide-confirm").click()
    expect(ada.locator("#decide-error")).to_have_text(
        "A reason is required to approve a critical request: it is recorded with the approval."
    )
    expect(ada.locator("#decide-reason")).to_be_focused()
    ada.locator("#decide-reason").fill("CFO confirmed by phone.")
    ada.locator("#decide-confirm").click()

    vote_row = row(ada, "ACT-VOTE-1")
    expect(vote_row.locator(".votes")).to_contain_text("1 of 2 approvals, waiting for another admin · approved by you")
    expect(ada.locator("#outcomes")).to_contain_text("Your approval is recorded: 1 of 2 approvals for Send the SPA to the CFO")
    expect(vote_row.get_by_role("button", name="Approve")).to_have_count(0)
    expect(vote_row.get_by_role("button", name="Reject")).to_be_visible()
    ada.wait_for_timeout(5_000)  # a refresh later the row is still there, still a vote
    expect(vote_row).to_be_visible()
    expect(vote_row.locator(".votes")).to_contain_text("1 of 2 approvals")
    expect(vote_row.get_by_role("button", name="Approve")).to_have_count(0)
    vote_row.click()
    ada.keyboard.press("a")  # nor by the keyboard
    expect(ada.locator("#outcomes")).to_contain_text("You already approved ACT-VOTE-1: it waits for another admin.")
    expect(ada.locator("#decide-dialog")).to_be_hidden()
    assert ApprovalRequest.objects.get(action_id="ACT-VOTE-1").state == "pending"

    # The other admin sees the vote on the queue and in the dialog, and completes it.
    other_row = row(abe, "ACT-VOTE-1")
    expect(other_row.locator(".votes")).to_contain_text("approved by ada@example.com", timeout=REFRESH_MS)
    other_row.get_by_role("button", name="Approve").click()
    expect(abe.locator("#decide-votes")).to_have_text(
        "This request needs 2 approvals by different admins. Approved so far by ada@example.com (1 of 2). "
        "Your approval completes it."
    )
    abe.locator("#decide-reason").fill("Agreed with Ada.")
    abe.locator("#decide-confirm").click()
    expect(other_row).to_have_count(0)
    expect(abe.locator("#outcomes")).to_contain_text("Approved: Send the SPA to the CFO (ACT-VOTE-1).")
    expect(row(ada, "ACT-VOTE-1")).to_have_count(0, timeout=REFRESH_MS)
    request = ApprovalRequest.objects.get(action_id="ACT-VOTE-1")
    assert (request.state, request.decided_by_name, request.reason) == ("approved", "abe@example.com", "Agreed with Ada.")


# --- moving on after a decision -------------------------------------------------------


def test_after_a_decision_the_selection_skips_a_row_another_reviewer_holds(live_server, pages, people, engine):
    for n in (1, 2, 3, 4):
        _open(engine, f"ACT-NEXT-{n}", "medium")
    _open(engine, "ACT-NEXT-0", "critical")  # first in the list, and an operator may not decide it
    page = pages()
    sign_in(page, live_server.url, "olu@example.com")
    expect(rows(page)).to_have_count(5)
    claim_take(action_id="ACT-NEXT-2", actor=people["operator2"])  # Oona opens the second one
    expect(row(page, "ACT-NEXT-2").locator(".claimed")).to_contain_text("oona@example.com is reviewing", timeout=REFRESH_MS)

    page.keyboard.press("j")  # j skips the critical row, which this operator may not decide
    expect(current(page)).to_have_attribute("data-action-id", "ACT-NEXT-1")
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    expect(row(page, "ACT-NEXT-1")).to_have_count(0)
    # Not the row under the decided one, which Oona holds: the next one this reviewer may decide.
    expect(current(page)).to_have_attribute("data-action-id", "ACT-NEXT-3")
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    expect(row(page, "ACT-NEXT-3")).to_have_count(0)
    expect(current(page)).to_have_attribute("data-action-id", "ACT-NEXT-4")
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    expect(row(page, "ACT-NEXT-4")).to_have_count(0)
    # Nothing after it to decide: back up past Oona's row and the critical one; nothing left.
    expect(current(page)).to_have_count(0)
    expect(page.locator("#results")).to_be_focused()
    page.keyboard.press("a")  # no row selected: nothing is decided
    expect(page.locator("#decide-dialog")).to_be_hidden()

    states = {r.action_id: r.state for r in ApprovalRequest.objects.all()}
    assert states == {"ACT-NEXT-0": "pending", "ACT-NEXT-1": "approved", "ACT-NEXT-2": "pending",
                      "ACT-NEXT-3": "approved", "ACT-NEXT-4": "approved"}


# --- the queue's keys -----------------------------------------------------------------


def test_range_and_page_selection_the_bulk_reason_and_the_other_keys(live_server, pages, people, engine):
    for n in range(1, 7):
        _open(engine, f"ACT-RANGE-{n}", "medium")
    page = pages()
    sign_in(page, live_server.url, "olu@example.com")
    expect(rows(page)).to_have_count(6)

    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("x")  # the range starts on the second row
    for _ in range(3):
        page.keyboard.press("j")
    page.keyboard.press("Shift+X")  # ... and ends on the fifth
    checked = [each.get_attribute("data-action-id") for each in rows(page).all() if each.locator("input[type=checkbox]").is_checked()]
    assert checked == ["ACT-RANGE-2", "ACT-RANGE-3", "ACT-RANGE-4", "ACT-RANGE-5"]
    expect(page.locator("#bulk-count")).to_have_text("4 rows selected")

    page.keyboard.press("*")  # all on the page
    expect(page.locator("#bulk-count")).to_have_text("6 rows selected")
    page.keyboard.press("*")  # again: none
    expect(page.locator("#bulk-count")).to_have_text("No rows selected (x selects)")
    page.keyboard.press("x")
    page.keyboard.press("k")
    page.keyboard.press("Shift+X")
    expect(page.locator("#bulk-count")).to_have_text("2 rows selected")
    page.keyboard.press("Shift+X")  # the same range again, all checked: unchecked
    expect(page.locator("#bulk-count")).to_have_text("No rows selected (x selects)")
    page.keyboard.press("Shift+X")
    expect(page.locator("#bulk-count")).to_have_text("2 rows selected")

    page.fill("#bulk-reason", "Routine drafts.")
    page.get_by_role("button", name="Approve selected").click()
    expect(page.locator("#bulk-result .bulk-outcomes")).to_contain_text("Approve selected: 2 rows.")
    expect(page.locator("#bulk-reason")).to_have_value("")  # the next batch needs its own reason
    expect(rows(page)).to_have_count(4)
    assert ApprovalRequest.objects.get(action_id="ACT-RANGE-4").reason == "Routine drafts."

    page.locator("#results").focus()
    page.keyboard.press("?")
    keys = page.locator("#keys-dialog")
    expect(keys).to_be_visible()
    for text in ("Shift+x", "select every row on the page", "search", "Pending / Quarantined (admins) / Decided"):
        expect(keys).to_contain_text(text)
    page.keyboard.press("Escape")

    page.keyboard.press("/")
    expect(page.locator("#id_q")).to_be_focused()
    page.keyboard.type("range-6")
    expect(rows(page)).to_have_count(1)
    page.locator("#results").focus()
    page.keyboard.press("3")
    expect(page).to_have_url(re.compile(r"[?&]tab=decided"))
    expect(page.locator("nav.tabs a[aria-current=page]")).to_have_text("Decided")
    page.keyboard.press("1")
    expect(page.locator("nav.tabs a[aria-current=page]")).to_have_text("Pending")


def test_back_from_a_detail_page_keeps_the_selected_row(live_server, pages, people, engine):
    for n in (1, 2, 3):
        _open(engine, f"ACT-BACK-{n}", "medium", title=f"Draft number {n}")
    page = pages()
    sign_in(page, live_server.url, "olu@example.com")
    expect(rows(page)).to_have_count(3)
    for _ in range(3):
        page.keyboard.press("j")
    expect(current(page)).to_have_attribute("data-action-id", "ACT-BACK-3")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/actions/ACT-BACK-3/")
    page.go_back()
    expect(current(page)).to_have_attribute("data-action-id", "ACT-BACK-3")
    page.keyboard.press("k")
    expect(current(page)).to_have_attribute("data-action-id", "ACT-BACK-2")

    # The detail page's own link back names the row: ?selected=<action id>.
    page.goto(f"{live_server.url}/?selected=ACT-BACK-2")
    expect(current(page)).to_have_attribute("data-action-id", "ACT-BACK-2")
    expect(row(page, "ACT-BACK-2")).to_be_focused()


# --- accessibility --------------------------------------------------------------------


def test_axe_finds_nothing_on_the_queue_with_its_filters_a_vote_and_the_keys_list(live_server, pages, people, engine):
    from axe_playwright_python.sync_playwright import Axe

    from approvals.services.decisions import approval_decide

    _open(engine, "ACT-AXE-1", "critical")
    _open(engine, "ACT-AXE-2", "medium")
    approval_decide(action_id="ACT-AXE-1", actor=people["admin2"], decision="approve", reason="Checked.")
    page = pages()
    sign_in(page, live_server.url, "ada@example.com")
    axe = Axe()
    page.goto(f"{live_server.url}/?decidable=1&claim=unclaimed&sort=deadline")
    expect(row(page, "ACT-AXE-1").locator(".votes")).to_be_visible()
    assert _violations(axe.run(page)) == []

    row(page, "ACT-AXE-1").get_by_role("button", name="Approve").click()
    expect(page.locator("#decide-votes")).to_be_visible()
    assert _violations(axe.run(page)) == []
    page.keyboard.press("Escape")
    page.keyboard.press("?")
    expect(page.locator("#keys-dialog")).to_be_visible()
    assert _violations(axe.run(page)) == []


def _violations(results) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {[node['target'] for node in v['nodes']]}" for v in results.response["violations"]]
