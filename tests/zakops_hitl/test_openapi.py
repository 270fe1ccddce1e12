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


def served_schema(engine_api) -> dict:
    schema = engine_api.get("/api/hitl/schema/").json()
    validate(schema)
    return schema


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", method, operation


IDEMPOTENT = {
    "POST /api/hitl/approval-requests",
    "POST /api/hitl/actions/{action_id}/approve",
    "POST /api/hitl/actions/{action_id}/reject",
    "POST /api/hitl/actions/{action_id}/quarantine",
    "POST /api/hitl/actions/{action_id}/cancel",
    "POST /api/hitl/actions/{action_id}/claim",
    "POST /api/hitl/actions/{action_id}/release",
    "POST /api/hitl/decisions",
    "POST /api/hitl/actions/{action_id}/checkpoints",
    "POST /api/hitl/actions/{action_id}/checkpoints/{checkpoint_id}/resume",
    "POST /api/hitl/actions/{action_id}/checkpoints/{checkpoint_id}/cancel",
}


def test_every_operation_documents_the_errors_every_view_can_answer(engine_api):
    schema = served_schema(engine_api)
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"] and error["properties"]["detail"] == {
        "type": "string", "description": error["properties"]["detail"]["description"],
    }
    seen = set()
    for name, method, operation in operations(schema):
        seen.add(name)
        codes = set(operation["responses"])
        assert {"400", "401", "406", "503"} <= codes, name
        if method == "post":
            assert {"403", "413", "415"} <= codes, name
        assert ("422" in codes) == (name in IDEMPOTENT), name
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert ("Idempotency-Key" in headers) == (name in IDEMPOTENT), name
        for code, response in operation["responses"].items():
            if int(code) >= 400:
                bodies = response["content"].values()
                assert bodies and all(body["schema"] == {"$ref": "#/components/schemas/Error"} for body in bodies), (name, code)
    assert IDEMPOTENT <= seen


def test_views_keep_their_own_not_found_and_conflict_answers(engine_api):
    paths = served_schema(engine_api)["paths"]
    approve = paths["/api/hitl/actions/{action_id}/approve"]["post"]["responses"]
    assert {"403", "404", "409"} <= set(approve)
    assert "rule refused" in approve["403"]["description"]
    assert "409" in paths["/api/hitl/approval-requests"]["post"]["responses"]
    assert "404" in paths["/api/hitl/actions/{action_id}/checkpoints/latest"]["get"]["responses"]
    assert "404" not in paths["/api/hitl/approval-queue"]["get"]["responses"]


def test_json_lists_say_what_they_hold(engine_api):
    components = served_schema(engine_api)["components"]["schemas"]
    for component in ("ApprovalRequest", "Assessment"):
        for field in ("reasons", "recommendations", "matched_rules"):
            assert components[component]["properties"][field]["items"] == {"type": "string"}, (component, field)
    rule = components["RiskRule"]["properties"]
    assert rule["action_types"]["items"] == rule["action_type_patterns"]["items"] == {"type": "string"}
    assert rule["input_patterns"]["additionalProperties"] == {"type": "string"}
