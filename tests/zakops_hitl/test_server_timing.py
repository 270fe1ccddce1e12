"""Every page answers with Server-Timing: the time in the database and in all, in
milliseconds, as the browser's developer tools read it. The engine's bearer calls do not
carry it (they take the engine path, without that middleware)."""

import re

import pytest
from django.core.management import call_command

from tests.conftest import PASSWORD
from tests.zakops_hitl.wsgi_calls import call, server_environ

pytestmark = pytest.mark.django_db

# `name;dur=<ms>[;desc="…"]`, comma-separated (the Server-Timing header's grammar).
METRIC = re.compile(r'^(?P<name>[a-z]+);dur=(?P<dur>[^;,]+)(?:;desc="(?P<desc>[^"]*)")?$')


def timings(response) -> dict[str, float]:
    found = {}
    for metric in response["Server-Timing"].split(", "):
        match = METRIC.match(metric)
        assert match, metric
        found[match["name"]] = float(match["dur"])  # a number, or ValueError
    assert set(found) == {"db", "total"}
    assert 0 <= found["db"] <= found["total"]
    return found


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=open("/dev/null", "w"))


@pytest.fixture
def admin_client(client, make_reviewer):
    client.force_login(make_reviewer("admin", "ada@example.com"))
    return client


def test_the_sign_in_page_says_its_time_with_no_database_time_to_speak_of(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert timings(response)["total"] > 0


def test_a_sign_in_counts_the_database_time_of_its_queries(client, make_reviewer):
    make_reviewer("operator", "olu@example.com")
    response = client.post("/login/", {"username": "olu@example.com", "password": PASSWORD})
    assert response.status_code == 302
    timings(response)
    queries = int(re.search(r'desc="(\d+) queries"', response["Server-Timing"])[1])
    assert queries >= 2  # the user, then the session


@pytest.mark.parametrize("path", ["/", "/?tab=decided", "/actions/ACT-DEMO-0001/", "/admin/", "/admin/risk/riskrule/"])
def test_the_queue_the_detail_page_and_the_admin_say_their_database_and_total_time(demo, admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == 200
    assert timings(response)["db"] > 0


def test_the_engines_bearer_calls_take_their_path_without_it(service_token):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {service_token}", "CONTENT_TYPE": "application/json"}
    answer = call(server_environ("POST", "/api/hitl/assess-risk", body=b'{"action_type": "DEAL.GET_DETAILS"}', **headers))
    assert answer.status == 200
    assert "Server-Timing" not in answer.headers
    page = call(server_environ("GET", "/login/"))  # the same WSGI application, a page
    assert page.status == 200 and "Server-Timing" in page.headers
