"""Playwright on Debian's Chromium, for the browser tests (see the `browser` marker)."""

import os
import time
from contextlib import contextmanager

from tests.conftest import CHROMIUM, PASSWORD

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests
# make around it are synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 15_000  # generous: the suite runs on slow two-core machines too
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


@contextmanager
def chromium():
    """A headless Chromium for several pages, or a module's tests (a new context per
    page keeps them apart).

    While Playwright's event loop runs, Django's connections in this thread are other
    objects than before (asgiref's thread-critical local keeps them per context when a
    loop runs). The test database's serialized contents, which `serialized_rollback`
    restores from, are handed to them, and they are closed when the browser stops."""
    from django.db import connections
    from playwright.sync_api import sync_playwright

    serialized = {
        connection.alias: connection._test_serialized_contents
        for connection in connections.all(initialized_only=True)
        if hasattr(connection, "_test_serialized_contents")
    }
    with sync_playwright() as playwright:
        for alias, contents in serialized.items():
            connections[alias]._test_serialized_contents = contents
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            connections.close_all()
            browser.close()


def new_page(browser, *, viewport=None, bypass_csp=False):
    """A page in a fresh context (own cookies and storage), with the generous timeouts."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport=viewport or DESKTOP, bypass_csp=bypass_csp)
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def close_page(page) -> None:
    """Close the page's context, then wait until the live server has answered what the
    page sent as it went (the detail page releases its claim with a beacon on pagehide):
    a request still writing while the test's tables are flushed deadlocks the flush."""
    from django.db import connection

    page.context.close()
    if connection.vendor != "postgresql":
        return
    time.sleep(0.1)  # the beacon reaches the server
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.05)


@contextmanager
def browser_page(**options):
    with chromium() as browser:
        yield new_page(browser, **options)


def sign_in(page, base_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def sign_in_by_keyboard(page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Sign in as a keyboard user does: the email field has focus, Tab, Enter."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}/login/")
    expect(page.locator("#id_username")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    expect(page.locator("#id_password")).to_be_focused()
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base_url}/")


# Reports each Content-Security-Policy violation to the test as it happens, whatever page
# the tab is on by then. Playwright adds it through the DevTools protocol, which the
# page's CSP does not govern, so the listener is there before the page's own scripts.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber} ${event.sample}`);
});
"""


class PageProblems:
    """What a careful reviewer with the developer tools open would see go wrong on a page:
    console errors (failed loads, htmx errors, script errors), uncaught exceptions and CSP
    violations. Attach before the first navigation."""

    def __init__(self, page):
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.csp_violations: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.expose_function("__reportCspViolation", self._csp_violation)
        page.add_init_script(_CSP_LISTENER)

    def _csp_violation(self, description: str) -> None:
        self.csp_violations.append(description)

    def _console(self, message):
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url')})")

    def all(self) -> list[str]:
        return [*self.console_errors, *self.page_errors, *(f"CSP: {v}" for v in self.csp_violations)]
