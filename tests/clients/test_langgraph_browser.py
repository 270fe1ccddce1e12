"""The LangGraph agent paused by the approval gate, decided by a reviewer in Chromium on
the detail page (inputs edited, then approved): the resumer resumes the graph and the
tool runs once, with the edited args."""

import threading
import time

import pytest
from django.db import connection
from playwright.sync_api import expect
from zakops_hitl_client.resumer import run_resumer

from tests.browser import PageProblems, chromium, close_page, new_page, sign_in
from tests.clients.agent import ToolLog, build_agent, call, thread

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def browser(django_db_setup, live_server):
    with chromium() as browser:
        yield browser


def test_a_reviewer_edits_and_approves_in_the_browser_and_the_agent_runs_the_tool_once(browser, live_server, hitl, admins):
    tools = ToolLog()
    agent = build_agent(hitl, tools)
    config = thread("t-browser")
    agent.invoke({"proposed": [call("ACT-LG-WEB", "DOCUMENT.GENERATE_LOI", template="standard", buyer="Acme")]}, config)
    assert agent.get_state(config).interrupts

    stop = threading.Event()

    def resumer():
        try:
            run_resumer(agent, hitl, interval=0.1, stop=stop)
        finally:
            connection.close()

    worker = threading.Thread(target=resumer)
    worker.start()
    page = new_page(browser)
    problems = PageProblems(page)
    try:
        sign_in(page, live_server.url, "olu@example.com")
        page.goto(f"{live_server.url}/actions/ACT-LG-WEB/")
        page.locator("#edit-inputs > summary").click()
        page.locator("details.edit-json > summary").click()
        page.fill("#edit-inputs-json", '{"template": "short", "buyer": "Acme"}')
        page.get_by_role("button", name="Approve", exact=True).click()
        expect(page.locator("#decision-panel")).to_contain_text("short")  # the edit's diff, before it is sent
        page.locator("#confirm-approve").click()
        expect(page.locator("#decision-panel")).to_contain_text("Done: Approved.")
        deadline = time.monotonic() + 20
        while not tools.runs and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a second pass of the resumer, which must not run it again
    finally:
        stop.set()
        worker.join(timeout=10)
        close_page(page)
    assert problems.all() == []
    assert tools.runs == [("ACT-LG-WEB", {"template": "short", "buyer": "Acme"})]
    assert agent.get_state(config).values["outcomes"] == ["ran ACT-LG-WEB"]
