"""An action id that is not plain ASCII is the same action on every path a poll can take:
the engine path and DRF, through the test client and through the WSGI application with
the environ a server builds."""

import pytest

from tests.zakops_hitl.wsgi_calls import call, server_environ

pytestmark = pytest.mark.django_db

IDS = ["a\N{GRINNING FACE}b", "probe-café-1", "ACT-Ã©"]
# (query string, headers): the usual call, and calls the engine path leaves to the view
VARIANTS = [("", {}), ("x=1", {}), ("", {"HTTP_ACCEPT": "application/json;q=0.9"}), ("format=json", {})]


@pytest.fixture
def requested(engine_api):
    for action_id in IDS:
        response = engine_api.post(
            "/api/hitl/approval-requests", {"action_id": action_id, "action_type": "DOCUMENT.GENERATE_LOI"}, format="json"
        )
        assert response.status_code == 201, response.content
    return IDS


@pytest.mark.parametrize(("query", "headers"), VARIANTS)
def test_the_test_client_polls_a_unicode_action_id(requested, engine_api, query, headers):
    for action_id in requested:
        response = engine_api.get(f"/api/hitl/actions/{action_id}/approval", query and dict([query.split("=")]), **headers)
        assert response.status_code == 200, (action_id, response.content)
        assert (response.json()["action_id"], response.json()["state"]) == (action_id, "pending")


@pytest.mark.parametrize(("query", "headers"), VARIANTS)
def test_a_server_environ_polls_a_unicode_action_id(requested, service_token, query, headers):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {service_token}"}
    for action_id in requested:
        answer = call(server_environ("GET", f"/api/hitl/actions/{action_id}/approval", query=query, **auth, **headers))
        assert answer.status == 200, (action_id, answer.body[:300])
        assert answer.headers["Content-Type"] == "application/json"
        assert (answer.json()["action_id"], answer.json()["state"]) == (action_id, "pending")


def test_the_wsgi_module_application_polls_a_unicode_action_id(requested, service_token):
    from zakops_hitl.wsgi import application

    auth = {"HTTP_AUTHORIZATION": f"Bearer {service_token}"}
    answer = call(server_environ("GET", "/api/hitl/actions/a\N{GRINNING FACE}b/approval", query="x=1", **auth), application)
    assert (answer.status, answer.json()["action_id"]) == (200, "a\N{GRINNING FACE}b")


@pytest.mark.parametrize("prefix", ["/hitl", "/h\N{LATIN SMALL LETTER E WITH ACUTE}"])
def test_a_unicode_script_name_is_read_once_too(requested, service_token, prefix):
    """Behind a proxy that mounts the app under a path (SCRIPT_NAME, also latin-1 text)."""
    from django.urls import clear_script_prefix

    auth = {"HTTP_AUTHORIZATION": f"Bearer {service_token}"}
    environ = server_environ("GET", "/api/hitl/actions/probe-café-1/approval", query="x=1", **auth)
    environ["SCRIPT_NAME"] = prefix.encode().decode("latin-1")
    try:
        answer = call(environ)
    finally:
        clear_script_prefix()
    assert (answer.status, answer.json()["action_id"]) == (200, "probe-café-1")


def test_an_unknown_unicode_action_is_a_404_json(requested, service_token):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {service_token}"}
    for query in ("", "x=1"):
        answer = call(server_environ("GET", "/api/hitl/actions/nope-\N{GRINNING FACE}/approval", query=query, **auth))
        assert answer.status == 404 and "nope-\N{GRINNING FACE}" in answer.json()["detail"]
