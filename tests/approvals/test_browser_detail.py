"""The detail page in a real browser: its keys, the edit of the inputs as a form with its
diff, the History refreshed in place, axe on each of its states, and its screenshots."""

import os
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from approvals.models import ApprovalRequest
from approvals.services.requests import approval_request
from operations.demo import demo_password
from tests.approvals.conftest import TYPE_FOR_LEVEL
from tests.browser import DESKTOP, PageProblems, chromium, close_page, new_page, sign_in
from zakops.models import Action, DealEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(scope="module")
def _chromium(django_db_setup):
    with chromium() as browser:
        yield browser


@pytest.fixture
def browser(_chromium, live_server):
    return _chromium


@pytest.fixture
def page(browser):
    """A desktop page that must end with no console error, uncaught exception or CSP violation."""
    page = new_page(browser)
    problems = PageProblems(page)
    yield page
    close_page(page)
    assert problems.all() == []


@pytest.fixture
def open_request(engine):
    def make(action_id, level="medium", *, title=None, inputs=None, action_type=None):
        default_type, default_inputs = TYPE_FOR_LEVEL[level]
        request, created = approval_request(
            action_id=action_id, action_type=action_type or default_type, requester=engine,
            title=title or f"A {level} action {action_id}", inputs=inputs if inputs is not None else default_inputs,
        )
        assert created and request.state == "pending"
        return request

    return make


def latest(action_id) -> ApprovalRequest:
    return ApprovalRequest.objects.filter(action_id=action_id).order_by("-round").first()


def _serious(results) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {[node['target'] for node in v['nodes']]}"
        for v in results.response["violations"] if v["impact"] in ("serious", "critical")
    ]


# --- keys --------------------------------------------------------------------------------


def test_the_detail_page_s_keys(live_server, page, people, open_request):
    _, second, _ = (open_request(f"ACT-KEYS-{n}", "medium", inputs={"subject": "Hello"}) for n in (1, 2, 3))
    open_request("ACT-KEYS-HIGH", "high")  # not in the filtered queue
    sign_in(page, live_server.url, "olu@example.com")
    page.goto(f"{live_server.url}/?risk_level=medium")
    page.locator('#results tr.row[data-action-id="ACT-KEYS-1"] a.title').click()
    expect(page).to_have_url(f"{live_server.url}/actions/ACT-KEYS-1/?risk_level=medium")

    # ? lists the keys in a dialog named by its heading; Esc closes it and stays here.
    page.keyboard.press("?")
    keys = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(keys).to_be_visible()
    expect(keys).to_contain_text("next / previous request of the queue, as filtered")
    page.keyboard.press("Escape")
    expect(keys).to_be_hidden()
    expect(page).to_have_url(f"{live_server.url}/actions/ACT-KEYS-1/?risk_level=medium")

    # j and k: the next and previous request of the queue as filtered.
    page.keyboard.press("j")
    expect(page).to_have_url(f"{live_server.url}/actions/ACT-KEYS-2/?risk_level=medium")
    expect(page.locator("h1")).to_have_text("A medium action ACT-KEYS-2")
    page.keyboard.press("j")
    expect(page).to_have_url(f"{live_server.url}/actions/ACT-KEYS-3/?risk_level=medium")
    page.keyboard.press("j")  # the last one: it stays, and says why
    expect(page.locator("#detail-keys-status")).to_have_text("This is the last request of the queue.")
    page.keyboard.press("k")
    expect(page).to_have_url(f"{live_server.url}/actions/ACT-KEYS-2/?risk_level=medium")

    # a: the approve reason, focused; keys typed there are text, not keys.
    page.keyboard.press("a")
    expect(page.locator("#approve-reason")).to_be_focused()
    page.keyboard.type("jk u?")
    expect(page.locator("#approve-reason")).to_have_value("jk u?")
    expect(page).to_have_url(f"{live_server.url}/actions/ACT-KEYS-2/?risk_level=medium")
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.fill("#approve-reason", "")
    page.keyboard.press("Escape")  # out of the field
    expect(page.locator("#approve-reason")).not_to_be_focused()

    # e: the edit of the inputs, its first field focused.
    page.keyboard.press("e")
    expect(page.locator("details#edit-inputs")).to_have_attribute("open", "")
    expect(page.locator(".input-fields input, .input-fields textarea").first).to_be_focused()
    page.keyboard.press("Escape")

    # r: the reject reason, focused; Enter rejects, and the History says so in place.
    page.keyboard.press("r")
    expect(page.locator("#reject-reason")).to_be_focused()
    page.keyboard.type("Wrong deal.")
    page.keyboard.press("Enter")
    expect(page.locator("#decision-panel")).to_contain_text("Done: Rejected.")
    expect(page.locator("#history ol.history li").first).to_contain_text("hitl.rejected by olu@example.com: “Wrong deal.”")
    assert (latest("ACT-KEYS-2").state, latest("ACT-KEYS-2").reason) == ("rejected", "Wrong deal.")

    # u: back to the queue as filtered, with this request's row asked for.
    page.keyboard.press("u")
    expect(page).to_have_url(f"{live_server.url}/?risk_level=medium&selected={second.action_id}")
    expect(page.locator("h1")).to_have_text("Approval queue")
    # The request is decided, so its row is in the Decided tab, not here; the queue stays usable.
    page.go_back()
    expect(page).to_have_url(f"{live_server.url}/actions/ACT-KEYS-2/?risk_level=medium")
    page.keyboard.press("Escape")  # Esc, as u
    expect(page).to_have_url(f"{live_server.url}/?risk_level=medium&selected={second.action_id}")
    assert [latest(f"ACT-KEYS-{n}").state for n in (1, 3)] == ["pending", "pending"]


def test_q_opens_the_quarantine_and_enter_quarantines(live_server, page, people, open_request):
    open_request("ACT-KEYS-Q", "high")
    sign_in(page, live_server.url, "olu@example.com")
    page.goto(f"{live_server.url}/actions/ACT-KEYS-Q/")
    page.keyboard.press("q")
    expect(page.locator("#reject-reason")).to_be_focused()
    page.keyboard.type("Legal must look.")
    page.keyboard.press("Enter")
    expect(page.locator("#decision-panel")).to_contain_text("Done: Quarantined.")
    expect(page.locator("#history")).to_contain_text("hitl.escalated by olu@example.com: “Legal must look.”")
    assert latest("ACT-KEYS-Q").state == "quarantined"


def test_a_viewer_s_keys_say_what_is_not_offered_and_still_move(live_server, page, people, open_request):
    first = open_request("ACT-KEYS-V1", "medium")
    open_request("ACT-KEYS-V2", "medium")
    sign_in(page, live_server.url, "vic@example.com")
    page.goto(f"{live_server.url}/actions/ACT-KEYS-V1/")
    page.keyboard.press("a")
    expect(page.locator("#detail-keys-status")).to_have_text("Approve is not offered here.")
    page.keyboard.press("e")
    expect(page.locator("#detail-keys-status")).to_have_text("No edit is offered here.")
    page.keyboard.press("j")
    expect(page).to_have_url(f"{live_server.url}/actions/ACT-KEYS-V2/")
    page.keyboard.press("k")
    expect(page).to_have_url(f"{live_server.url}/actions/ACT-KEYS-V1/")
    page.keyboard.press("u")
    expect(page).to_have_url(f"{live_server.url}/?selected={first.action_id}")
    expect(page.locator('tr.current[data-action-id="ACT-KEYS-V1"]')).to_be_visible()  # the row it came from
    assert latest("ACT-KEYS-V1").state == "pending"


def test_the_history_refreshes_when_a_take_over_comes_in_place(live_server, page, people, open_request):
    from approvals.services.claims import claim_take

    open_request("ACT-KEYS-TAKE", "medium")
    claim_take(action_id="ACT-KEYS-TAKE", actor=people["operator2"])
    sign_in(page, live_server.url, "olu@example.com")
    page.goto(f"{live_server.url}/actions/ACT-KEYS-TAKE/")
    events_before = page.locator("#history ol.history li").count()
    page.check("input[name=confirm]")
    page.click("#takeover")
    expect(page.locator("#decision-panel")).to_contain_text("You are reviewing this request now.")
    stored = DealEvent.objects.filter(details__action_id="ACT-KEYS-TAKE").count()
    expect(page.locator("#history ol.history li")).to_have_count(stored)
    assert stored >= events_before


# --- the edit as a form, with its diff ---------------------------------------------------


LOI = {"amount": 100, "buyer": "Acme", "binding": False, "tags": ["loi", "draft"], "terms": {"days": 30}}


def field(page, key):
    return page.locator(".input-field").filter(has=page.locator(f"code:text-is('{key}')")).locator("input, textarea").first


def test_the_inputs_edit_as_a_form_with_the_diff_before_the_approval(live_server, page, people, open_request):
    open_request("ACT-FORM-B", "high", action_type="DOCUMENT.GENERATE_LOI", inputs=LOI, title="LOI for Acme")
    sign_in(page, live_server.url, "olu@example.com")
    page.goto(f"{live_server.url}/actions/ACT-FORM-B/")
    page.keyboard.press("e")
    expect(field(page, "amount")).to_be_focused()
    expect(field(page, "amount")).to_have_value("100")

    # A bad number is named and kept, and nothing is sent.
    field(page, "amount").fill("ten")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator("#decision-panel .problem")).to_have_text("Not decided: amount: enter a number.")
    expect(field(page, "amount")).to_have_value("ten")
    expect(page.locator("#decision-panel .field-error")).to_have_text("amount: enter a number")
    assert Action.objects.get(pk="ACT-FORM-B").inputs == LOI

    field(page, "amount").fill("250")
    field(page, "buyer").fill("Acme Holdings")
    field(page, "binding").check()
    field(page, "tags").fill("loi\nfinal")
    page.fill("#approve-reason", "Agreed on the call.")
    page.get_by_role("button", name="Approve", exact=True).click()

    # The diff, field by field, before anything is sent.
    diff = page.locator("table.diff tbody tr")
    expect(diff).to_have_count(4)
    expect(diff.nth(0)).to_have_text(re.compile(r"amount\s*100\s*250"))
    expect(diff.nth(1)).to_have_text(re.compile(r"binding\s*false\s*true"))
    expect(diff.nth(2)).to_have_text(re.compile(r'buyer\s*"Acme"\s*"Acme Holdings"'))
    expect(diff.nth(3)).to_have_text(re.compile(r'tags\s*\["loi", "draft"\]\s*\["loi", "final"\]'))
    assert latest("ACT-FORM-B").state == "pending"

    # Change the edit: back to the fields, as left.
    page.get_by_role("button", name="Change the edit").click()
    expect(field(page, "amount")).to_have_value("250")
    expect(page.locator("#approve-reason")).to_have_value("Agreed on the call.")
    field(page, "amount").fill("300")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator("table.diff tbody tr").nth(0)).to_have_text(re.compile(r"amount\s*100\s*300"))
    page.get_by_role("button", name="Approve with these changes").click()
    expect(page.locator("#decision-panel")).to_contain_text("Done: Approved.")

    # The History says so without a reload; the action runs the edit, types kept.
    expect(page.locator("#history")).to_contain_text("hitl.inputs_edited")
    expect(page.locator("#history")).to_contain_text("hitl.approved")
    inputs = Action.objects.get(pk="ACT-FORM-B").inputs
    assert inputs == {"amount": 300, "buyer": "Acme Holdings", "binding": True, "tags": ["loi", "final"], "terms": {"days": 30}}
    assert isinstance(inputs["amount"], int)
    assert latest("ACT-FORM-B").reason == "Agreed on the call."


def test_edit_as_json_still_works_and_shows_the_same_diff(live_server, page, people, open_request):
    open_request("ACT-FORM-J", "high", action_type="DOCUMENT.GENERATE_LOI", inputs=LOI, title="LOI for Acme")
    sign_in(page, live_server.url, "olu@example.com")
    page.goto(f"{live_server.url}/actions/ACT-FORM-J/")
    page.locator("details#edit-inputs > summary").click()
    page.locator("details.edit-json > summary").click()
    page.fill("#edit-inputs-json", '{"amount": 100, "buyer": "Acme", "binding": false, "tags": ["loi"], "note": "x"}')
    page.get_by_role("button", name="Approve", exact=True).click()
    rows = page.locator("table.diff tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_have_text(re.compile(r'note\s*\(not there\)\s*"x"'))
    expect(rows.nth(2)).to_have_text(re.compile(r"terms\s*\{\"days\": 30\}\s*\(removed\)"))
    page.get_by_role("button", name="Approve with these changes").click()
    expect(page.locator("#decision-panel")).to_contain_text("Done: Approved.")
    assert Action.objects.get(pk="ACT-FORM-J").inputs == {"amount": 100, "buyer": "Acme", "binding": False, "tags": ["loi"], "note": "x"}


def test_a_critical_request_s_approve_reason_is_required_on_the_page(live_server, page, people, open_request):
    open_request("ACT-KEYS-CRIT", "critical")
    sign_in(page, live_server.url, "ada@example.com")
    page.goto(f"{live_server.url}/actions/ACT-KEYS-CRIT/")
    expect(page.locator("label[for=approve-reason]")).to_contain_text("required")
    expect(page.locator("#approve-reason")).to_have_attribute("required", "")
    page.get_by_role("button", name="Approve", exact=True).click()
    assert page.evaluate("document.querySelector('#approve-reason').validity.valueMissing")
    assert latest("ACT-KEYS-CRIT").votes == []


def test_on_a_375px_phone_the_form_edit_and_its_diff_do_not_scroll_sideways(live_server, browser, people, open_request):
    from tests.browser import PHONE

    long_word = "Counterparty" * 12
    open_request("ACT-FORM-PHONE", "high", action_type="DOCUMENT.GENERATE_LOI", title="LOI",
                 inputs={**LOI, f"note_{long_word}": long_word, "parties": [long_word, "b"]})
    page = new_page(browser, viewport=PHONE)
    try:
        sign_in(page, live_server.url, "olu@example.com")
        page.goto(f"{live_server.url}/actions/ACT-FORM-PHONE/")
        page.keyboard.press("e")
        page.locator("details.edit-json > summary").click()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        field(page, f"note_{long_word}").fill(long_word + " and more")
        page.get_by_role("button", name="Approve", exact=True).click()
        expect(page.locator("table.diff")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        close_page(page)


# --- accessibility -----------------------------------------------------------------------


def test_axe_finds_nothing_on_the_detail_page_in_each_state(live_server, page, people, open_request):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    open_request("ACT-AXE-1", "high", action_type="DOCUMENT.GENERATE_LOI", inputs=LOI, title="LOI for Acme")
    open_request("ACT-AXE-2", "high")
    sign_in(page, live_server.url, "olu@example.com")
    page.goto(f"{live_server.url}/actions/ACT-AXE-1/?risk_level=high")
    assert _serious(axe.run(page)) == []

    page.keyboard.press("?")  # the keys dialog
    expect(page.locator("#detail-keys-dialog")).to_be_visible()
    assert _serious(axe.run(page)) == []
    page.keyboard.press("Escape")

    page.keyboard.press("e")  # the form edit, with an error
    field(page, "amount").fill("ten")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator("#decision-panel .field-error")).to_be_visible()
    assert _serious(axe.run(page)) == []

    field(page, "amount").fill("250")  # the diff to confirm
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator("table.diff")).to_be_visible()
    assert _serious(axe.run(page)) == []

    page.get_by_role("button", name="Approve with these changes").click()  # decided
    expect(page.locator("#decision-panel")).to_contain_text("Done: Approved.")
    assert _serious(axe.run(page)) == []


# --- the screenshots of docs/ ------------------------------------------------------------


def vote_state_screenshot(page, base_url: str, folder: Path, *, other_admin) -> Path:
    """docs/vote.png: a critical request's row in the queue after one admin's approval,
    waiting for a second (what the row says is the queue's)."""
    from approvals.services.decisions import approval_decide

    assert approval_decide(action_id="ACT-DEMO-0001", actor=other_admin, decision="approve",
                           reason="Recipient checked against the deal's contacts.").state == "pending"
    page.goto(f"{base_url}/")
    row = page.locator('#results tr.row[data-action-id="ACT-DEMO-0001"]')
    expect(row.locator(".votes")).to_be_visible()
    page.mouse.move(0, 0)
    path = folder / "vote.png"
    row.screenshot(path=str(path))
    return path


def test_readme_screenshots_of_the_detail_page(live_server, browser, tmp_path, make_reviewer):
    """docs/detail-keys.png (the detail page's keys, `?`), docs/detail-form.png (the inputs
    as a form), docs/detail-edit.png (the edit's diff, before the approval) and docs/vote.png
    (a first admin vote on a critical request, as the queue shows it) from the demo data, when HITL_SCREENSHOTS_DIR is
    set (scripts/screenshots); otherwise into a scratch folder."""
    import io

    from django.core.management import call_command

    folder = Path(os.environ.get("HITL_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    call_command("seed_demo", stdout=io.StringIO())
    page = new_page(browser, viewport=DESKTOP)
    try:
        email = "admin@operations.demo"
        sign_in(page, live_server.url, email, demo_password(email))
        page.goto(f"{live_server.url}/actions/ACT-DEMO-0001/")
        page.keyboard.press("?")
        expect(page.locator("#detail-keys-dialog")).to_be_visible()
        page.screenshot(path=str(folder / "detail-keys.png"))
        page.keyboard.press("Escape")

        # The quarantined escrow transfer: the amount halved, with the reason it needs.
        page.goto(f"{live_server.url}/actions/ACT-DEMO-0011/?tab=quarantined")
        page.keyboard.press("e")
        field(page, "amount").fill("125000")
        page.fill("#approve-reason", "Half now, half at closing, as agreed with the seller.")
        page.mouse.move(0, 0)
        page.locator("#decision-panel").screenshot(path=str(folder / "detail-form.png"))
        page.get_by_role("button", name="Approve", exact=True).click()
        expect(page.locator("table.diff")).to_be_visible()
        page.locator("#decision-panel").scroll_into_view_if_needed()
        page.mouse.move(0, 0)
        page.locator("#decision-panel").screenshot(path=str(folder / "detail-edit.png"))
        assert quote("ACT-DEMO-0011") in page.url

        from accounts.selectors import actor_of

        vote_state_screenshot(page, live_server.url, folder, other_admin=actor_of(make_reviewer("admin", "second-admin@operations.demo")))
    finally:
        close_page(page)
    for name in ("detail-keys.png", "detail-form.png", "detail-edit.png", "vote.png"):
        assert (folder / name).stat().st_size > 10_000
