"""Every /api/hitl/ endpoint refuses anonymous calls with 401 JSON."""

import time

import psycopg
import pytest
from django.db import connection

from accounts.models import ApiToken
from accounts.services import TOKENS_CHANNEL, api_tokens_revoke
from common.changes import feed

pytestmark = pytest.mark.django_db
SCHEMA = "/api/hitl/schema/"


@pytest.mark.parametrize("path", [SCHEMA, "/api/hitl/approval-queue", "/api/hitl/no-such-thing"])
def test_anonymous_calls_get_401_json(api, path):
    response = api.get(path)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_bearer_token_authenticates_and_its_use_is_recorded(engine_api):
    response = engine_api.get(SCHEMA)
    assert response.status_code == 200
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer", "Bearer a b", "Token abc"])
def test_a_wrong_or_malformed_token_is_401(api, service_token, header):
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get(SCHEMA)
    assert response.status_code == 401
    assert response.json()["detail"]


def test_a_revoked_token_stops_working_at_once(api, service_token):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {service_token}")
    assert api.get(SCHEMA).status_code == 200  # now cached
    assert api_tokens_revoke(tokens=ApiToken.objects.all()) == 1
    assert api.get(SCHEMA).status_code == 401


def test_revoking_in_admin_stops_the_token(client, api, service_token, make_reviewer):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {service_token}")
    assert api.get(SCHEMA).status_code == 200
    client.force_login(make_reviewer("admin"))
    client.post("/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [ApiToken.objects.get().pk]})
    assert ApiToken.objects.get().revoked_at is not None
    assert api.get(SCHEMA).status_code == 401


def test_deactivating_a_person_in_admin_stops_their_tokens(client, api, make_reviewer):
    from accounts.services import api_token_create

    person = make_reviewer("operator")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=person, name='laptop')[1]}")
    assert api.get(SCHEMA).status_code == 200
    client.force_login(make_reviewer("admin"))
    page = client.get(f"/admin/auth/user/{person.pk}/change/")
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if k in form.fields and v is not None and k not in ("groups", "user_permissions", "password", "is_active", "is_staff", "is_superuser", "last_login", "date_joined")}
    data.update({"date_joined_0": "2026-01-01", "date_joined_1": "10:00:00", "role": "operator"})
    response = client.post(f"/admin/auth/user/{person.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    person.refresh_from_db()
    assert not person.is_active
    assert api.get(SCHEMA).status_code == 401


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_token_revoked_by_another_process_stops_working_here(api, service_token):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {service_token}")
    assert api.get(SCHEMA).status_code == 200
    deadline = time.monotonic() + 10
    while not feed.listening(TOKENS_CHANNEL) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.get(SCHEMA).status_code == 200
    s = connection.settings_dict
    with psycopg.connect(
        dbname=s["NAME"], host=s["HOST"] or None, port=s["PORT"] or None, user=s["USER"] or None, autocommit=True
    ) as other:
        other.execute("UPDATE accounts_apitoken SET revoked_at = now()")
    deadline = time.monotonic() + 10
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status = api.get(SCHEMA).status_code
        time.sleep(0.01)
    assert status == 401


def test_tokens_are_stored_only_as_hashes(service_token):
    token = ApiToken.objects.get()
    assert service_token not in (token.key_hash, token.prefix)
    assert service_token.startswith(token.prefix)


def test_a_signed_in_reviewer_reads_the_api_with_the_session(api, make_reviewer):
    api.force_login(make_reviewer("viewer"))
    assert api.get(SCHEMA).status_code == 200


def test_unknown_api_paths_are_json_404_once_authenticated(engine_api):
    response = engine_api.post("/api/hitl/no-such-thing", {}, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such endpoint."}


def test_every_operation_in_the_schema_refuses_anonymous_calls(api, engine_api):
    schema = engine_api.get("/api/hitl/schema/").json()
    checked = 0
    for template, operations in schema["paths"].items():
        path = (
            template.replace("{action_id}", "ACT-1")
            .replace("{checkpoint_id}", "00000000-0000-4000-8000-000000000000")
            .replace("{checkpoint_name}", "step")
        )
        assert "{" not in path, f"unfilled parameter in {template}"
        for method in operations:
            response = getattr(api, method)(path, {}, format="json")
            assert response.status_code == 401, f"{method.upper()} {template} answered {response.status_code}"
            checked += 1
    assert checked >= 8


@pytest.mark.django_db
def test_each_call_gets_its_own_user_object_so_nothing_set_on_one_leaks_into_the_next(service_token):
    from rest_framework.test import APIRequestFactory

    from accounts.authentication import BearerTokenAuthentication

    factory = APIRequestFactory()
    def call():  # each call is its own request (a request keeps what authenticated it)
        return factory.get("/api/hitl/approval-queue", HTTP_AUTHORIZATION=f"Bearer {service_token}")

    first, token = BearerTokenAuthentication().authenticate(call())
    first.first_name = "set by a view"
    first._state.fields_cache["account"] = "changed"
    second, same_token = BearerTokenAuthentication().authenticate(call())
    assert same_token is token and second is not first
    assert second.first_name == "" and second.pk == first.pk and second.is_authenticated
    assert second._state.fields_cache.get("account") != "changed" and second._state.db == "default"
