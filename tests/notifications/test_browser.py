"""The profile page in a real browser, under the Content-Security-Policy."""

import pytest

from tests.browser import browser_page, sign_in
from zakops.models import Operator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_reviewer_opts_out_from_the_profile_page(live_server, make_reviewer):
    make_reviewer("operator", "olu@example.com")
    problems = []
    with browser_page() as page:
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        sign_in(page, live_server.url, "olu@example.com")
        page.click("header >> text=Profile")
        page.wait_for_url(f"{live_server.url}/profile/")
        page.uncheck("#id_requested")
        page.click("button[type=submit] >> text=Save")
        page.locator(".messages >> text=Saved").wait_for()
        assert not page.is_checked("#id_requested") and page.is_checked("#id_reminder")
    assert problems == []  # a CSP violation would be reported here
    assert Operator.objects.get(email="olu@example.com").preferences == {
        "notifications": {"requested": False, "reminder": True}
    }
