"""Every /api/hitl/ endpoint refuses anonymous calls with 401 JSON."""

import pytest
from django.utils import timezone

from accounts.models import ApiToken

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


def test_a_revoked_token_stops_working(api, service_token):
    ApiToken.objects.update(revoked_at=timezone.now())
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {service_token}")
    assert api.get(SCHEMA).status_code == 401


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
