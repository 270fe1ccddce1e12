"""The admin's dry run and rule preview, used in a real browser."""

import pytest
from django.core.management import call_command

from risk.models import RiskRule
from tests.browser import browser_page, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_dry_run_and_rule_preview_in_the_browser(live_server, make_reviewer, tmp_path):
    make_reviewer("admin", "ada@example.com")
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    rule = RiskRule.objects.get(name="read_only")
    # No ORM call inside the browser block: it runs in Playwright's event loop context.
    with browser_page() as page:
        sign_in(page, live_server.url, "ada@example.com")

        page.goto(f"{live_server.url}/admin/risk/riskrule/")
        page.click("text=Dry run")
        page.fill("#id_action_type", "COMMUNICATION.SEND_EMAIL")
        page.fill("#id_inputs", '{"to": "cfo@seller.example", "amount": 50000}')
        page.fill("#id_context", '{"deal_stage": "diligence"}')
        page.click("input[type=submit][value=Assess]")
        result = page.locator("#assessment")
        result.wait_for()
        assert "critical" in result.inner_text()
        assert "Matched rule external_email: Sending external emails requires approval" in result.inner_text()
        assert "Financial data: inputs include amount (+0.15)" in result.inner_text()
        page.screenshot(path=str(tmp_path / "dry-run.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/risk/riskrule/{rule.pk}/change/")
        page.fill("#id_action_type_patterns", "*GET*\n*LIST*")
        page.click("#rule-preview-button")
        summary = page.locator(".preview-summary")
        summary.wait_for()
        assert "Would match 4 of the last" in summary.inner_text()  # GET_DETAILS and LIST_FILES, two of each
    rule.refresh_from_db()
    assert rule.action_type_patterns == ["*.GET", "*.GET_*", "*.LIST", "*.LIST_*", "*.READ", "*.READ_*", "*.FETCH", "*.FETCH_*"]  # a preview saves nothing


def test_axe_finds_no_violation_on_the_rule_list_and_its_boxes_and_breadcrumb_read_as_such(live_server, make_reviewer):
    from axe_playwright_python.sync_playwright import Axe

    make_reviewer("admin", "ada@example.com")
    rules = list(RiskRule.objects.order_by("name").values_list("name", flat=True))
    with browser_page() as page:
        sign_in(page, live_server.url, "ada@example.com")
        page.goto(f"{live_server.url}/admin/risk/riskrule/")
        results = Axe().run(page).response
        assert results["testEngine"]["name"] == "axe-core"
        assert [(v["id"], [n["target"] for n in v["nodes"]]) for v in results["violations"]] == []
        assert [v["id"] for v in results["incomplete"] if v["id"] == "link-in-text-block"] == []
        # Each "enabled" box is named by its rule, for a screen reader and for Playwright alike.
        for name in rules:
            assert page.get_by_label(f"Enabled: {name}", exact=True).count() == 1
        home = page.locator("div.breadcrumbs a").first
        assert "underline" in home.evaluate("link => getComputedStyle(link).textDecorationLine")
        # And axe does find what it looks for: a box nobody labelled.
        page.evaluate("() => document.querySelector('#changelist-form').append(Object.assign(document.createElement('input'), {type: 'checkbox'}))")
        assert "label" in [v["id"] for v in Axe().run(page).response["violations"]]
