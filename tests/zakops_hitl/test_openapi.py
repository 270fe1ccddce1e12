from io import StringIO

import pytest
from django.core.management import call_command
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def test_served_schema_is_valid_openapi_3_with_bearer_auth(engine_api):
    response = engine_api.get("/api/hitl/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert operations
    for operation in operations:  # every operation needs a token or a session, none is open
        assert {"bearerAuth": []} in operation["security"]
        assert {} not in operation["security"]


def test_schema_is_json_by_default_and_yaml_on_request(engine_api):
    assert engine_api.get("/api/hitl/schema/").json()["info"]["title"] == "ZakOps HITL API"
    assert engine_api.get("/api/hitl/schema/?format=yaml").content.startswith(b"openapi: 3")


def test_schema_generation_has_no_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=StringIO())
