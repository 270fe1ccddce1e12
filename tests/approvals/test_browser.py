"""The reviewer pages in a real browser: what a reviewer sees and does, and that the
database agrees. Other people's decisions and the engine's new requests are made through
the services from the test while the page is open, as they happen in production."""

import io
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from approvals.models import ApprovalRequest, Claim
from approvals.services.claims import claim_take
from approvals.services.decisions import approval_decide
from approvals.services.requests import approval_request
from operations.demo import demo_password
from tests.approvals.conftest import TYPE_FOR_LEVEL
from tests.browser import (
    DESKTOP,
    PHONE,
    TIMEOUT_MS,
    PageProblems,
    chromium,
    close_page,
    new_page,
    sign_in,
    sign_in_by_keyboard,
)
from tests.conftest import PASSWORD
from zakops.models import Action, DealEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# The queue refreshes itself every 4 s; a change shows within one period, plus slack.
REFRESH_MS = 9_000


@pytest.fixture(scope="module")
def _chromium(django_db_setup):
    with chromium() as browser:  # one per module: starting Playwright costs a second or two
        yield browser


@pytest.fixture
def browser(_chromium, live_server):
    return _chromium


@pytest.fixture
def page(browser):
    """A desktop page; whatever test uses it, it must end with no console error, no
    uncaught exception and no CSP violation."""
    page = new_page(browser)
    problems = PageProblems(page)
    yield page
    close_page(page)
    assert problems.all() == []


@pytest.fixture
def open_request(engine):
    """open_request("ACT-…", "medium", title=…, inputs=…, requested_by=…) -> a pending request."""

    def make(action_id, level="medium", *, title=None, inputs=None, requested_by=""):
        action_type, default_inputs = TYPE_FOR_LEVEL[level]
        request, created = approval_request(
            action_id=action_id, action_type=action_type, requester=engine, requested_by=requested_by,
            title=title or f"A {level} action", inputs={**default_inputs, **(inputs or {})},
        )
        assert created and request.state == "pending" and request.risk_level == level
        return request

    return make


def rows(page):
    return page.locator("#results tbody tr.row[data-action-id]")


def row(page, action_id):
    return page.locator(f'#results tr.row[data-action-id="{action_id}"]')


def current_row(page):
    return page.locator("#results tr.row.current")


def dialog(page):
    return page.locator("#decide-dialog")


def hold_refresh(page):
    """Answer the queue's own refresh with "unchanged" (204), as when a reviewer acts
    within the seconds before the next refresh would have shown someone else's decision."""

    def is_refresh(url: str) -> bool:
        parts = urlparse(url)
        return parts.path == "/" and "v" in parse_qs(parts.query)

    page.route(is_refresh, lambda route: route.fulfill(status=204))


def latest(action_id) -> ApprovalRequest:
    return ApprovalRequest.objects.filter(action_id=action_id).order_by("-round").first()


def events(action_id, event_type) -> list[DealEvent]:
    return list(DealEvent.objects.filter(details__action_id=action_id, event_type=event_type))


def second_admin_votes_on_critical(make_reviewer):
    """Critical requests need two admins: another admin casts the first vote on each, so
    that the signed-in admin's approval is the one that completes it."""
    from accounts.selectors import actor_of

    other = actor_of(make_reviewer("admin", "second-admin@example.com"))
    for action_id in ApprovalRequest.objects.filter(state="pending", risk_level="critical").values_list("action_id", flat=True):
        assert approval_decide(action_id=action_id, actor=other, decision="approve", reason="Recipient checked.").state == "pending"


def demo_admin_signs_in(page, base_url, *, by_keyboard=False):
    call_command("seed_demo", stdout=io.StringIO())
    email = "admin@operations.demo"
    (sign_in_by_keyboard if by_keyboard else sign_in)(page, base_url, email, demo_password(email))


# --- signing in -----------------------------------------------------------------------


def test_sign_in_through_the_login_form_lands_on_the_queue(live_server, page, make_reviewer):
    user = make_reviewer("operator", "olu@example.com")
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))  # every page needs a signed-in user

    page.fill("#id_username", "olu@example.com")
    page.fill("#id_password", "not the password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("Wrong e-mail or password")
    expect(page).to_have_url(re.compile(r"/login/"))

    page.fill("#id_username", "OLU@example.com")  # an email in any case
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("h1")).to_have_text("Approval queue")
    expect(page.locator(".topnav .who")).to_have_text("olu@example.com · operator")
    expect(page.locator("#results .empty")).to_have_text("Nothing is waiting for a decision.")
    user.refresh_from_db()
    assert user.last_login is not None


# --- filters --------------------------------------------------------------------------


def test_filters_change_the_rows_and_stay_in_the_url(live_server, page, people, open_request):
    open_request("ACT-FILTER-1", "critical")
    open_request("ACT-FILTER-2", "medium")
    open_request("ACT-FILTER-3", "medium")
    sign_in(page, live_server.url, "ada@example.com")
    expect(rows(page)).to_have_count(3)
    expect(page.locator("#results .count.all")).to_have_text("3 waiting")

    page.select_option("#id_risk_level", "medium")
    expect(rows(page)).to_have_count(2)
    expect(row(page, "ACT-FILTER-1")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"[?&]risk_level=medium(&|$)"))

    page.fill("#id_q", "filter-3")  # free text, any case
    expect(rows(page)).to_have_count(1)
    expect(row(page, "ACT-FILTER-3")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]q=filter-3(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]risk_level=medium(&|$)"))

    page.reload()  # the URL alone reproduces the view
    expect(rows(page)).to_have_count(1)
    expect(row(page, "ACT-FILTER-3")).to_be_visible()
    expect(page.locator("#id_risk_level")).to_have_value("medium")
    expect(page.locator("#id_q")).to_have_value("filter-3")
    expect(page.locator("#results .count.all")).to_have_text("1 waiting")

    page.fill("#id_q", "no such request")
    expect(page.locator("#results .empty")).to_have_text("Nothing is waiting for a decision with these filters.")
    assert ApprovalRequest.objects.filter(state="pending").count() == 3  # filtering decides nothing


# --- the detail page ------------------------------------------------------------------


def test_open_a_detail_page_by_click_and_by_enter_on_the_selected_row(live_server, page, people, open_request):
    open_request("ACT-OPEN-1", "high", title="Generate the LOI for Acme")
    open_request("ACT-OPEN-2", "medium", title="Draft a note to Borealis")
    sign_in(page, live_server.url, "olu@example.com")

    row(page, "ACT-OPEN-1").get_by_role("link", name="Generate the LOI for Acme").click()
    expect(page).to_have_url(f"{live_server.url}/actions/ACT-OPEN-1/")
    expect(page.locator("h1")).to_have_text("Generate the LOI for Acme")
    stored = latest("ACT-OPEN-1")
    expect(page.locator("#risk-title")).to_have_text(f"Risk: {stored.risk_level} score {stored.score:.2f}")
    expect(page.locator("ol.history")).to_contain_text("hitl.approval_requested")

    page.go_back()
    expect(rows(page)).to_have_count(2)
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(current_row(page)).to_have_attribute("data-action-id", "ACT-OPEN-2")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/actions/ACT-OPEN-2/")
    expect(page.locator("h1")).to_have_text("Draft a note to Borealis")


# --- decisions from the queue ---------------------------------------------------------


def test_approve_from_the_queue_removes_the_row_and_the_database_agrees(live_server, page, people, open_request):
    open_request("ACT-APPROVE-1", "medium")
    open_request("ACT-APPROVE-2", "medium")
    sign_in(page, live_server.url, "olu@example.com")

    row(page, "ACT-APPROVE-1").get_by_role("button", name="Approve").click()
    expect(dialog(page)).to_be_visible()
    expect(page.locator("#decide-title")).to_have_text("Approve: A medium action")
    page.fill("#decide-reason", "Draft reads fine.")
    page.locator("#decide-confirm").click()

    expect(row(page, "ACT-APPROVE-1")).to_have_count(0)
    expect(dialog(page)).to_be_hidden()
    expect(page.locator("#outcomes")).to_contain_text("Approved: A medium action (ACT-APPROVE-1).")
    expect(row(page, "ACT-APPROVE-2")).to_be_visible()

    request = latest("ACT-APPROVE-1")
    assert (request.state, request.decided_by_name, request.reason) == ("approved", "olu@example.com", "Draft reads fine.")
    assert Action.objects.get(pk="ACT-APPROVE-1").status == "QUEUED"
    assert len(events("ACT-APPROVE-1", "hitl.approved")) == 1
    assert latest("ACT-APPROVE-2").state == "pending"


def test_reject_needs_a_reason_in_the_dialog_then_succeeds(live_server, page, people, open_request):
    open_request("ACT-REJECT-1", "high")
    sign_in(page, live_server.url, "olu@example.com")

    row(page, "ACT-REJECT-1").get_by_role("button", name="Reject").click()
    expect(page.locator("#decide-title")).to_have_text("Reject: A high action")
    expect(page.locator("#decide-required")).to_have_text("(required)")
    page.locator("#decide-confirm").click()
    expect(page.locator("#decide-error")).to_have_text("A reason is required to reject or quarantine.")
    expect(dialog(page)).to_be_visible()
    expect(page.locator("#decide-reason")).to_be_focused()
    page.fill("#decide-reason", "   ")  # blank is no reason either, by Enter too
    page.keyboard.press("Enter")
    expect(page.locator("#decide-error")).to_be_visible()
    expect(dialog(page)).to_be_visible()
    assert latest("ACT-REJECT-1").state == "pending"
    assert events("ACT-REJECT-1", "hitl.rejected") == []

    page.fill("#decide-reason", "Wrong counterparty on the LOI.")
    page.locator("#decide-confirm").click()
    expect(row(page, "ACT-REJECT-1")).to_have_count(0)
    expect(page.locator("#outcomes")).to_contain_text("Rejected: A high action (ACT-REJECT-1).")
    request = latest("ACT-REJECT-1")
    assert (request.state, request.reason) == ("rejected", "Wrong counterparty on the LOI.")
    assert Action.objects.get(pk="ACT-REJECT-1").status == "REJECTED"
    assert len(events("ACT-REJECT-1", "hitl.rejected")) == 1


# --- someone else decided first -------------------------------------------------------


def test_a_conflict_shows_in_place_who_decided_what_and_when(live_server, page, people, open_request, monkeypatch):
    from approvals import views

    monkeypatch.setattr(views, "CLAIM_RENEW_SECONDS", 600)  # the panel changes only by the reviewer's click here
    open_request("ACT-RACE-1", "medium")
    open_request("ACT-RACE-2", "medium")
    sign_in(page, live_server.url, "olu@example.com")
    expect(rows(page)).to_have_count(2)
    hold_refresh(page)

    approval_decide(action_id="ACT-RACE-1", actor=people["admin2"], decision="approve", reason="Checked with the deal lead.")
    decided = latest("ACT-RACE-1")
    row(page, "ACT-RACE-1").get_by_role("button", name="Approve").click()
    page.locator("#decide-confirm").click()

    conflict = page.locator('#results tr.conflict[data-action-id="ACT-RACE-1"]')
    expect(conflict).to_contain_text(
        f"Not decided: Already approved by abe@example.com at {decided.decided_at:%Y-%m-%d %H:%M:%S} UTC."
    )
    expect(conflict).to_contain_text("Reason: “Checked with the deal lead.”")
    expect(conflict.get_by_role("button")).to_have_count(0)
    expect(page.locator("#outcomes")).to_contain_text("ACT-RACE-1: Already approved by abe@example.com")
    expect(page.locator("h1")).to_have_text("Approval queue")  # no error page
    expect(row(page, "ACT-RACE-2")).to_be_visible()
    expect(current_row(page)).to_have_attribute("data-action-id", "ACT-RACE-2")  # the next row, not the notice

    # The same on the detail page: the panel tells who decided first. The page claimed the
    # request as it opened, so the other reviewer takes it over before deciding.
    with page.expect_response(lambda response: response.url.endswith("/actions/ACT-RACE-2/claim")) as claimed:
        page.goto(f"{live_server.url}/actions/ACT-RACE-2/")
    assert claimed.value.status == 204
    assert Claim.objects.get(request__action_id="ACT-RACE-2").reviewer_name == "olu@example.com"
    claim_take(action_id="ACT-RACE-2", actor=people["operator2"], takeover=True)
    approval_decide(action_id="ACT-RACE-2", actor=people["operator2"], decision="reject", reason="Duplicate of another draft.")
    decided_2 = latest("ACT-RACE-2")
    page.get_by_role("button", name="Approve").click()
    panel = page.locator("#decision-panel")
    expect(panel.get_by_role("alert")).to_have_text(
        f"Not decided: Already rejected by oona@example.com at {decided_2.decided_at:%Y-%m-%d %H:%M:%S} UTC."
    )
    expect(panel).to_contain_text("by oona@example.com")
    expect(panel).to_contain_text("“Duplicate of another draft.”")
    expect(panel.get_by_role("button", name="Approve")).to_have_count(0)

    # One decision each, the first; the late reviewer wrote nothing.
    assert (latest("ACT-RACE-1").state, latest("ACT-RACE-1").decided_by_name) == ("approved", "abe@example.com")
    assert latest("ACT-RACE-2").state == "rejected"
    assert len(events("ACT-RACE-1", "hitl.approved")) == 1
    assert not DealEvent.objects.filter(actor="olu@example.com").exists()


# --- the live queue -------------------------------------------------------------------


def test_a_new_request_appears_on_the_open_queue_without_a_reload(live_server, page, people, open_request):
    sign_in(page, live_server.url, "olu@example.com")
    page.goto(f"{live_server.url}/?risk_level=high")
    expect(page.locator("#results .empty")).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    open_request("ACT-LIVE-1", "medium")
    open_request("ACT-LIVE-2", "high", title="Generate an NDA for Cobalt")
    expect(row(page, "ACT-LIVE-2")).to_be_visible(timeout=REFRESH_MS)
    expect(row(page, "ACT-LIVE-2")).to_contain_text("Generate an NDA for Cobalt")
    expect(row(page, "ACT-LIVE-1")).to_have_count(0)  # the filter is kept across refreshes
    expect(page.locator("#results .count.all")).to_have_text("1 waiting")
    expect(page.locator("#results .count.risk-medium")).to_have_text("medium 1")
    assert page.evaluate("window.__sameDocument") is True  # no reload
    expect(page).to_have_url(f"{live_server.url}/?risk_level=high")


# --- bulk decisions -------------------------------------------------------------------


def test_bulk_approve_reports_each_rows_outcome(live_server, page, people, open_request):
    open_request("ACT-BULK-1", "medium")
    open_request("ACT-BULK-2", "medium")
    open_request("ACT-BULK-3", "critical")
    open_request("ACT-BULK-4", "medium", requested_by="olu@example.com")
    sign_in(page, live_server.url, "olu@example.com")
    expect(rows(page)).to_have_count(4)
    # What an operator may not decide can not be selected, and says why.
    expect(row(page, "ACT-BULK-3").locator("input[type=checkbox]")).to_have_count(0)
    expect(row(page, "ACT-BULK-3")).to_contain_text("Only an admin can decide a critical request.")
    expect(row(page, "ACT-BULK-4").locator("input[type=checkbox]")).to_have_count(0)
    expect(row(page, "ACT-BULK-4")).to_contain_text("someone else must decide it (four-eyes)")

    row(page, "ACT-BULK-1").get_by_role("checkbox").check()
    row(page, "ACT-BULK-2").get_by_role("checkbox").check()
    expect(page.locator("#bulk-count")).to_have_text("2 rows selected")

    page.get_by_role("button", name="Reject selected").click()  # a reject needs a reason
    expect(page.locator("#bulk-result")).to_contain_text("A reject needs a reason")
    assert ApprovalRequest.objects.filter(state="pending").count() == 4

    hold_refresh(page)
    approval_decide(action_id="ACT-BULK-2", actor=people["operator2"], decision="approve")
    page.fill("#bulk-reason", "Standard drafts.")
    page.get_by_role("button", name="Approve selected").click()

    result = page.locator("#bulk-result .bulk-outcomes")
    expect(result).to_contain_text("Approve selected: 2 rows.")
    expect(result.locator('li[data-action-id="ACT-BULK-1"]')).to_have_text("ACT-BULK-1: approved.")
    expect(result.locator('li[data-action-id="ACT-BULK-1"]')).to_have_attribute("data-outcome", "decided")
    expect(result.locator('li[data-action-id="ACT-BULK-2"]')).to_contain_text("Already approved by oona@example.com at ")
    expect(result.locator('li[data-action-id="ACT-BULK-2"]')).to_have_attribute("data-outcome", "conflict")
    expect(row(page, "ACT-BULK-1")).to_have_count(0)
    expect(row(page, "ACT-BULK-2")).to_have_count(0)
    expect(rows(page)).to_have_count(2)
    expect(page.locator("#bulk-count")).to_have_text("No rows selected (x selects)")

    assert (latest("ACT-BULK-1").decided_by_name, latest("ACT-BULK-1").reason) == ("olu@example.com", "Standard drafts.")
    assert (latest("ACT-BULK-2").decided_by_name, latest("ACT-BULK-2").reason) == ("oona@example.com", "")
    assert [latest(f"ACT-BULK-{n}").state for n in (3, 4)] == ["pending", "pending"]
    assert len(events("ACT-BULK-2", "hitl.approved")) == 1


# --- the keyboard ---------------------------------------------------------------------


def test_keyboard_approve_moves_the_selection_to_the_next_row(live_server, page, people, open_request):
    for n in (1, 2, 3):
        open_request(f"ACT-KEYS-{n}", "medium")
    sign_in(page, live_server.url, "ada@example.com")
    expect(rows(page)).to_have_count(3)

    page.keyboard.press("j")
    expect(current_row(page)).to_have_attribute("data-action-id", "ACT-KEYS-1")
    expect(row(page, "ACT-KEYS-1")).to_be_focused()
    page.keyboard.press("r")
    expect(dialog(page)).to_be_visible()
    page.keyboard.press("Escape")  # Esc cancels, and focus goes back to the row
    expect(dialog(page)).to_be_hidden()
    expect(row(page, "ACT-KEYS-1")).to_be_focused()

    page.keyboard.press("a")
    expect(page.locator("#decide-title")).to_have_text("Approve: A medium action")
    expect(page.locator("#decide-reason")).to_be_focused()
    page.keyboard.press("Enter")
    expect(row(page, "ACT-KEYS-1")).to_have_count(0)
    expect(current_row(page)).to_have_attribute("data-action-id", "ACT-KEYS-2")
    expect(row(page, "ACT-KEYS-2")).to_be_focused()

    assert latest("ACT-KEYS-1").state == "approved"
    assert latest("ACT-KEYS-1").decided_by_name == "ada@example.com"
    assert [latest(f"ACT-KEYS-{n}").state for n in (2, 3)] == ["pending", "pending"]


def test_the_demo_queue_is_worked_to_empty_with_the_keyboard_alone(live_server, page, make_reviewer):
    demo_admin_signs_in(page, live_server.url, by_keyboard=True)
    second_admin_votes_on_critical(make_reviewer)
    page.reload()
    waiting = list(ApprovalRequest.objects.filter(state="pending").values_list("action_id", flat=True))
    assert len(waiting) >= 3
    expect(rows(page)).to_have_count(len(waiting))
    order = [row.get_attribute("data-action-id") for row in rows(page).all()]

    page.keyboard.press("j")
    for position, action_id in enumerate(order):
        expect(current_row(page)).to_have_attribute("data-action-id", action_id)
        expect(row(page, action_id)).to_be_focused()
        page.keyboard.press("a")
        expect(dialog(page)).to_be_visible()
        if row(page, action_id).get_attribute("data-approve-reason"):  # critical: a reason, as for a reject
            page.keyboard.press("Enter")
            expect(page.locator("#decide-error")).to_contain_text("A reason is required to approve a critical request")
            page.keyboard.type("Recipient confirmed.")
        page.keyboard.press("Enter")
        expect(row(page, action_id)).to_have_count(0)
        expect(rows(page)).to_have_count(len(order) - position - 1)
    expect(page.locator("#results .empty")).to_have_text("Nothing is waiting for a decision.")
    expect(page.locator("#results")).to_be_focused()  # the keyboard user's place, not lost to <body>

    decided = ApprovalRequest.objects.filter(action_id__in=waiting)
    assert {(r.state, r.decided_by_name) for r in decided} == {("approved", "admin@operations.demo")}
    assert Action.objects.filter(pk__in=waiting, status="QUEUED").count() == len(waiting)


# --- viewers --------------------------------------------------------------------------


def test_a_viewer_sees_no_decision_buttons(live_server, page, people, open_request):
    open_request("ACT-VIEW-1", "medium")
    sign_in(page, live_server.url, "vic@example.com")
    expect(row(page, "ACT-VIEW-1")).to_be_visible()
    expect(page.locator("main")).to_contain_text("You can follow the queue as a viewer")
    expect(page.locator("#results button")).to_have_count(0)
    expect(page.locator("#results input[type=checkbox]")).to_have_count(0)
    expect(page.locator("#bulk-form")).to_have_count(0)
    expect(row(page, "ACT-VIEW-1")).to_contain_text("Viewers can not decide approvals")
    page.keyboard.press("j")
    page.keyboard.press("a")
    expect(page.locator("#outcomes")).to_contain_text("Approve is not offered for ACT-VIEW-1.")
    expect(dialog(page)).to_be_hidden()

    page.goto(f"{live_server.url}/actions/ACT-VIEW-1/")
    expect(page.locator("#decision-panel")).to_contain_text("pending")
    expect(page.locator("#decision-panel button")).to_have_count(0)
    expect(page.locator("#decision-panel form")).to_have_count(0)
    assert latest("ACT-VIEW-1").state == "pending"


# --- phones ---------------------------------------------------------------------------


def test_on_a_375px_phone_nothing_scrolls_sideways(live_server, browser, make_reviewer, engine):
    call_command("seed_demo", stdout=io.StringIO())
    long_word = "Counterparty" * 12  # no place to break a line but where the page makes one
    approval_request(
        action_id="ACT-LONG-" + "9" * 40, action_type="DOCUMENT.GENERATE_LOI", requester=engine,
        title=f"Generate the LOI for {long_word}", summary=long_word, inputs={"note": long_word * 2},
        requested_by=f"{long_word.lower()}@example.com",
    )
    make_reviewer("admin", "ada@example.com")
    page = new_page(browser, viewport=PHONE)
    try:
        sign_in(page, live_server.url, "ada@example.com")
        expect(rows(page)).to_have_count(6)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.keyboard.press("j")
        page.keyboard.press("r")
        expect(dialog(page)).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        box = dialog(page).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375

        for action_id in ("ACT-DEMO-0001", "ACT-LONG-" + "9" * 40):
            page.goto(f"{live_server.url}/actions/{action_id}/")
            expect(page.locator("h1")).to_be_visible()
            for details in page.locator("table.checkpoints details").all():
                details.locator("summary").click()
                expect(details.locator("pre.json")).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= 375, action_id
    finally:
        close_page(page)


# --- escaping -------------------------------------------------------------------------

TITLE = 'Q3 <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>'
PAYLOAD = {"body": "<script>window.__pwned=3</script>", "html": "<img src=x onerror=window.__pwned=4>"}


def test_markup_in_inputs_and_title_is_shown_as_text_and_runs_nothing(live_server, page, people, open_request):
    open_request("ACT-XSS-1", "medium", title=TITLE, inputs=PAYLOAD)
    sign_in(page, live_server.url, "olu@example.com")

    title_link = row(page, "ACT-XSS-1").locator("a.title")
    expect(title_link).to_have_text(TITLE)
    expect(page.locator("#results img")).to_have_count(0)
    row(page, "ACT-XSS-1").get_by_role("button", name="Approve").click()
    expect(page.locator("#decide-title")).to_have_text(f"Approve: {TITLE}")
    page.keyboard.press("Escape")
    assert page.evaluate("window.__pwned") is None

    title_link.click()
    expect(page.locator("h1")).to_have_text(TITLE)
    assert page.title().startswith(TITLE)
    inputs = page.locator("pre.json").first
    expect(inputs).to_contain_text('"body": "<script>window.__pwned=3</script>"')
    expect(inputs).to_contain_text('"html": "<img src=x onerror=window.__pwned=4>"')
    expect(page.locator("main img")).to_have_count(0)
    expect(page.locator("main script")).to_have_count(0)

    page.get_by_role("button", name="Approve").click()  # the panel's answer, swapped in by htmx
    expect(page.locator("#decision-panel")).to_contain_text("Done: Approved.")
    page.goto(f"{live_server.url}/?tab=decided")
    expect(page.locator('#results tr[data-action-id="ACT-XSS-1"] a.title')).to_have_text(TITLE)
    expect(page.locator("main img")).to_have_count(0)
    assert page.evaluate("window.__pwned") is None
    assert latest("ACT-XSS-1").state == "approved"


# --- console and Content-Security-Policy ----------------------------------------------


def _csp_of(response) -> str:
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "style-src 'self'" in policy, policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, policy
    return policy


def test_no_console_error_and_no_csp_violation_on_the_queue_and_the_detail_page(live_server, browser, make_reviewer):
    page = new_page(browser)
    problems = PageProblems(page)
    try:
        demo_admin_signs_in(page, live_server.url)
        second_admin_votes_on_critical(make_reviewer)
        _csp_of(page.goto(f"{live_server.url}/"))
        page.select_option("#id_risk_level", "high")
        expect(rows(page)).to_have_count(2)
        page.keyboard.press("j")
        page.keyboard.press("x")
        page.keyboard.press("?")
        expect(page.locator("#keys-dialog")).to_be_visible()
        page.keyboard.press("Escape")
        page.keyboard.press("a")
        expect(dialog(page)).to_be_visible()
        page.keyboard.press("Escape")

        _csp_of(page.goto(f"{live_server.url}/actions/ACT-DEMO-0001/"))
        page.locator("table.checkpoints summary").first.click()
        expect(page.locator("table.checkpoints pre.json").first).to_contain_text('"subject": "Next steps"')
        page.fill("#approve-reason", "Reviewed the draft.")
        page.get_by_role("button", name="Approve").click()
        expect(page.locator("#decision-panel")).to_contain_text("Done: Approved.")
        assert problems.all() == []

        # The listeners do hear a violation: an inline script is one.
        page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1'; document.body.append(s); }")
        _wait_until(page, lambda: problems.csp_violations)
        assert "script-src" in problems.csp_violations[0]
        assert page.evaluate("window.__ran") is None
    finally:
        close_page(page)


def _wait_until(page, condition, timeout_ms=TIMEOUT_MS):
    """Wait for something the page reports to the test (not a page condition, which an
    `expect` assertion waits for)."""
    for _ in range(timeout_ms // 50):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError("the page did not report it in time")


# --- accessibility --------------------------------------------------------------------


def _serious(results) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {[node['target'] for node in v['nodes']]}"
        for v in results.response["violations"] if v["impact"] in ("serious", "critical")
    ]


def test_axe_finds_no_serious_violation_on_the_queue_and_the_detail_page(live_server, page):
    from axe_playwright_python.sync_playwright import Axe

    # Axe is injected with page.evaluate, which the DevTools protocol runs outside the
    # page's Content-Security-Policy: the pages are checked under their real CSP.
    axe = Axe()
    demo_admin_signs_in(page, live_server.url)
    expect(rows(page)).to_have_count(5)
    results = axe.run(page)
    assert results.response["testEngine"]["name"] == "axe-core"
    assert _serious(results) == []

    page.keyboard.press("j")
    page.keyboard.press("r")
    expect(dialog(page)).to_be_visible()
    assert _serious(axe.run(page)) == []
    page.keyboard.press("Escape")

    page.goto(f"{live_server.url}/?tab=decided")
    expect(page.locator("#results table.decided")).to_be_visible()
    assert _serious(axe.run(page)) == []

    page.goto(f"{live_server.url}/actions/ACT-DEMO-0001/")
    page.locator("table.checkpoints summary").first.click()
    expect(page.locator("table.checkpoints pre.json").first).to_be_visible()
    assert _serious(axe.run(page)) == []

    # And it does find one: a text field nobody labelled.
    page.evaluate("() => document.querySelector('main').append(document.createElement('input'))")
    assert any(found.startswith("label (critical)") for found in _serious(axe.run(page)))


# --- refreshes keep what the reviewer was doing ---------------------------------------


def test_a_refresh_keeps_the_selection_the_checks_and_a_half_typed_reason(live_server, page, people, open_request):
    for n in (1, 2, 3):
        open_request(f"ACT-KEEP-{n}", "medium")
    sign_in(page, live_server.url, "olu@example.com")
    expect(rows(page)).to_have_count(3)
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(current_row(page)).to_have_attribute("data-action-id", "ACT-KEEP-2")
    expect(row(page, "ACT-KEEP-2").get_by_role("checkbox")).to_be_checked()

    # A refresh that changes the queue: a new row above the selected one.
    open_request("ACT-KEEP-0", "high")
    expect(row(page, "ACT-KEEP-0")).to_be_visible(timeout=REFRESH_MS)
    expect(current_row(page)).to_have_attribute("data-action-id", "ACT-KEEP-2")
    expect(row(page, "ACT-KEEP-2")).to_be_focused()
    expect(row(page, "ACT-KEEP-2").get_by_role("checkbox")).to_be_checked()
    expect(page.locator("#bulk-count")).to_have_text("1 row selected")

    # And one while the reviewer is typing a reason in the dialog.
    page.keyboard.press("r")
    page.keyboard.type("Counterparty not ver")
    open_request("ACT-KEEP-00", "high")
    expect(row(page, "ACT-KEEP-00")).to_be_visible(timeout=REFRESH_MS)
    expect(dialog(page)).to_be_visible()
    expect(page.locator("#decide-reason")).to_have_value("Counterparty not ver")
    expect(page.locator("#decide-reason")).to_be_focused()
    expect(current_row(page)).to_have_attribute("data-action-id", "ACT-KEEP-2")
    expect(row(page, "ACT-KEEP-2").get_by_role("checkbox")).to_be_checked()

    page.keyboard.type("ified.")
    page.keyboard.press("Enter")
    expect(row(page, "ACT-KEEP-2")).to_have_count(0)
    expect(current_row(page)).to_have_attribute("data-action-id", "ACT-KEEP-3")  # the row after it
    expect(page.locator("#bulk-count")).to_have_text("No rows selected (x selects)")
    request = latest("ACT-KEEP-2")
    assert (request.state, request.reason) == ("rejected", "Counterparty not verified.")
    assert [latest(f"ACT-KEEP-{n}").state for n in ("1", "3", "0", "00")] == ["pending"] * 4


# --- the README's screenshots ---------------------------------------------------------


def test_readme_screenshots(live_server, browser, tmp_path, make_reviewer):
    """docs/queue.png, docs/detail.png and docs/phone.png from the demo data when
    HITL_SCREENSHOTS_DIR is set (scripts/screenshots); otherwise into a scratch folder,
    so that the suite keeps them possible."""
    folder = Path(os.environ.get("HITL_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    desktop = new_page(browser, viewport=DESKTOP)
    phone = new_page(browser, viewport=PHONE)
    try:
        demo_admin_signs_in(desktop, live_server.url)
        second_admin_votes_on_critical(make_reviewer)  # the queue shows a vote: "1 of 2 approvals"
        desktop.reload()
        expect(rows(desktop)).to_have_count(5)
        expect(desktop.locator("#results .votes").first).to_contain_text("1 of 2 approvals, waiting for another admin")
        desktop.keyboard.press("j")
        expect(current_row(desktop)).to_be_visible()
        desktop.mouse.move(0, 0)
        desktop.screenshot(path=str(folder / "queue.png"), full_page=True)

        # ACT-DEMO-0001: a score with modifiers, a checkpoint, a history.
        desktop.goto(f"{live_server.url}/actions/ACT-DEMO-0001/")
        desktop.locator("table.checkpoints summary").first.click()
        expect(desktop.locator("table.checkpoints pre.json").first).to_be_visible()
        desktop.screenshot(path=str(folder / "detail.png"), full_page=True)

        email = "admin@operations.demo"
        sign_in(phone, live_server.url, email, demo_password(email))
        expect(rows(phone)).to_have_count(5)
        phone.screenshot(path=str(folder / "phone.png"), full_page=True, clip={"x": 0, "y": 0, "width": 375, "height": 1400})
    finally:
        close_page(desktop)
        close_page(phone)
    for name in ("queue.png", "detail.png", "phone.png"):
        assert (folder / name).stat().st_size > 10_000
