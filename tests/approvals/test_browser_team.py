"""Team review in real browsers: a claim shown live to a second reviewer, and
edit-and-approve on the detail page; no console error and no CSP violation."""

import time

import pytest
from playwright.sync_api import expect

from approvals.models import ApprovalRequest, Claim
from approvals.services.requests import approval_request
from tests.browser import PageProblems, chromium, close_page, new_page, sign_in
from zakops.models import Action, DealEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
REFRESH_MS = 9_000  # the queue refreshes every 4 s


@pytest.fixture(scope="module")
def _chromium(django_db_setup):
    with chromium() as browser:
        yield browser


@pytest.fixture
def pages(_chromium, live_server):
    """pages() -> a new desktop page in its own context; each ends without problems."""
    made = []

    def make():
        page = new_page(_chromium)
        made.append((page, PageProblems(page)))
        return page

    yield make
    for page, problems in made:
        close_page(page)
        assert problems.all() == []


def _open(engine, action_id, action_type="COMMUNICATION.DRAFT_EMAIL", inputs=None):
    request, _ = approval_request(action_id=action_id, action_type=action_type, requester=engine, inputs=inputs or {}, title=f"Draft {action_id}")
    return request


def test_a_claim_shows_live_on_another_reviewers_queue_and_next_skips_it(live_server, pages, people, engine):
    _open(engine, "ACT-CLAIM-1")
    _open(engine, "ACT-CLAIM-2")
    bob = pages()
    sign_in(bob, live_server.url, "oona@example.com")
    first = bob.locator('#results tr.row[data-action-id="ACT-CLAIM-1"]')
    expect(first).to_be_visible()
    expect(first.locator(".claimed")).to_have_count(0)

    ana = pages()
    sign_in(ana, live_server.url, "olu@example.com")
    ana.goto(f"{live_server.url}/actions/ACT-CLAIM-1/")
    expect(ana.locator("#decision-panel button.approve")).to_be_visible()
    _wait_for(lambda: Claim.objects.filter(reviewer_name="olu@example.com").exists())  # the page's POST as it opens

    expect(first.locator(".claimed")).to_contain_text("olu@example.com is reviewing", timeout=REFRESH_MS)
    bob.keyboard.press("j")  # "next" skips the row Ana is reviewing
    expect(bob.locator("#results tr.row.current")).to_have_attribute("data-action-id", "ACT-CLAIM-2")

    # On the detail page Bob sees who is reviewing, and takes over only when he confirms.
    bob.goto(f"{live_server.url}/actions/ACT-CLAIM-1/")
    expect(bob.locator("#decision-panel .claimed")).to_contain_text("olu@example.com is reviewing")
    expect(bob.locator("#decision-panel button.approve")).to_have_count(0)
    bob.check("input[name=confirm]")
    bob.click("#takeover")
    expect(bob.locator("#decision-panel")).to_contain_text("You are reviewing this request now.")
    expect(bob.locator("#decision-panel button.approve")).to_be_visible()
    assert Claim.objects.get().reviewer_name == "oona@example.com"
    assert DealEvent.objects.filter(event_type="hitl.claim_taken_over", details__action_id="ACT-CLAIM-1").count() == 1

    # Leaving the page releases the claim.
    bob.goto(f"{live_server.url}/")
    expect(bob.locator("h1")).to_have_text("Approval queue")
    deadline = time.monotonic() + 10
    while Claim.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Claim.objects.exists()


def _wait_for(condition, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert condition()


def test_a_takeover_is_shown_in_place_and_refuses_the_old_reviewers_decision(live_server, pages, people, engine, monkeypatch):
    from approvals import views

    monkeypatch.setattr(views, "CLAIM_RENEW_SECONDS", 2)
    _open(engine, "ACT-TAKE-1")
    _open(engine, "ACT-TAKE-2")
    ana = pages()
    sign_in(ana, live_server.url, "olu@example.com")
    bob = pages()
    sign_in(bob, live_server.url, "oona@example.com")

    # Ana opens the first request: her page claims it; Bob takes it over.
    ana.goto(f"{live_server.url}/actions/ACT-TAKE-1/")
    _wait_for(lambda: Claim.objects.filter(reviewer_name="olu@example.com").exists())
    bob.goto(f"{live_server.url}/actions/ACT-TAKE-1/")
    expect(bob.locator("#decision-panel .claimed")).to_contain_text("olu@example.com is reviewing")
    bob.check("input[name=confirm]")
    bob.click("#takeover")
    expect(bob.locator("#decision-panel")).to_contain_text("You are reviewing this request now.")

    # Within the renewal interval Ana's panel says so, in place, and offers her no decision.
    panel = ana.locator("#decision-panel")
    expect(panel).to_contain_text("oona@example.com took over this review at", timeout=REFRESH_MS)
    expect(panel.locator(".claimed")).to_contain_text("oona@example.com is reviewing")
    expect(panel.locator("button.approve")).to_have_count(0)
    expect(ana.locator("h1")).to_have_text("Draft ACT-TAKE-1")  # the same page, not a reload
    assert Claim.objects.get(request__action_id="ACT-TAKE-1").reviewer_name == "oona@example.com"

    # On the second request Bob takes over while Ana's page still offers Approve (her
    # renewal has not run yet): her click is refused and says who holds the review.
    monkeypatch.setattr(views, "CLAIM_RENEW_SECONDS", 600)
    ana.goto(f"{live_server.url}/actions/ACT-TAKE-2/")
    _wait_for(lambda: Claim.objects.filter(request__action_id="ACT-TAKE-2", reviewer_name="olu@example.com").exists())
    bob.goto(f"{live_server.url}/actions/ACT-TAKE-2/")
    bob.check("input[name=confirm]")
    bob.click("#takeover")
    expect(bob.locator("#decision-panel")).to_contain_text("You are reviewing this request now.")
    ana.locator("#decision-panel button.approve").click()
    expect(panel).to_contain_text("Not decided: Claimed by oona@example.com since")
    expect(panel.locator("button.approve")).to_have_count(0)
    assert ApprovalRequest.objects.get(action_id="ACT-TAKE-2").state == "pending"
    assert Action.objects.get(pk="ACT-TAKE-2").status == "PENDING_APPROVAL"

    # Bob, who holds it, decides.
    bob.locator("#decision-panel button.approve").click()
    expect(bob.locator("#decision-panel")).to_contain_text("Done: Approved.")
    assert ApprovalRequest.objects.get(action_id="ACT-TAKE-2").decided_by_name == "oona@example.com"


def test_edit_and_approve_on_the_detail_page(live_server, pages, people, engine):
    _open(engine, "ACT-EDIT-B", inputs={"subject": "Nxt steps", "body": "Hello"})
    page = pages()
    sign_in(page, live_server.url, "olu@example.com")
    page.goto(f"{live_server.url}/actions/ACT-EDIT-B/")
    page.locator("details.edit-inputs > summary").click()
    page.locator("details.edit-json > summary").click()
    page.fill("#edit-inputs-json", '{"subject": "Next steps", ')
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator("#decision-panel")).to_contain_text("inputs: not valid JSON")
    expect(page.locator("#edit-inputs-json")).to_have_value('{"subject": "Next steps", ')  # kept, to fix it
    assert ApprovalRequest.objects.get(action_id="ACT-EDIT-B").state == "pending"

    page.fill("#edit-inputs-json", '{"subject": "Next steps", "body": "Hello"}')
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator("table.diff")).to_contain_text("Nxt steps")  # the diff first
    page.get_by_role("button", name="Approve with these changes").click()
    expect(page.locator("#decision-panel")).to_contain_text("Done: Approved.")
    assert Action.objects.get(pk="ACT-EDIT-B").inputs == {"subject": "Next steps", "body": "Hello"}
    edit = DealEvent.objects.get(event_type="hitl.inputs_edited", details__action_id="ACT-EDIT-B")
    assert edit.details["diff"]["changed"] == {"subject": {"from": "Nxt steps", "to": "Next steps"}}
    page.reload()
    expect(page.locator("ol.history")).to_contain_text("hitl.inputs_edited")
    expect(page.locator("section pre.json").first).to_contain_text('"subject": "Next steps"')
