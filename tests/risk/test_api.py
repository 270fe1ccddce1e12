import json

import pytest

pytestmark = pytest.mark.django_db
ASSESS = "/api/hitl/assess-risk"
RULES = "/api/hitl/risk-rules"


def post(client, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(ASSESS, data, content_type="application/json", **extra)


def test_assess_risk_answers_with_the_original_fields_and_score_and_rules(engine_api):
    response = post(engine_api, {"action_type": "COMMUNICATION.SEND_EMAIL", "action_data": {"to": "cfo@seller.example"}})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"level", "requires_approval", "requires_quarantine", "reasons", "recommendations", "score", "matched_rules", "breakdown"}
    assert body["level"] == "critical" and body["requires_quarantine"] is True
    assert body["matched_rules"] == ["external_email"]
    assert body["score"] == 1.0
    assert body["breakdown"] == [
        {"label": "Base for level critical", "points": 0.9},
        {"label": "External communication: to includes cfo@seller.example", "points": 0.1},
    ]


def test_assess_risk_takes_context(engine_api):
    body = post(engine_api, {"action_type": "DEAL.GET_DETAILS", "context": {"deal_stage": "closed"}}).json()
    assert body["level"] == "critical"
    assert "Deal is closed - all actions require approval" in body["reasons"]


def test_null_action_data_and_context_are_empty_objects(engine_api):
    response = post(engine_api, {"action_type": "DEAL.GET_DETAILS", "action_data": None, "context": None})
    assert response.status_code == 200
    assert response.json()["level"] == "low"


def test_assess_risk_works_for_a_signed_in_reviewer(api, make_reviewer):
    api.force_login(make_reviewer("viewer"))
    assert post(api, {"action_type": "DEAL.GET_DETAILS"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "action_type"),
        ({"action_type": ""}, "action_type"),
        ({"action_type": "   "}, "action_type"),
        ({"action_type": "X" * 101}, "action_type"),
        ({"action_type": 5}, "action_type"),
        ({"action_type": None}, "action_type"),
        ({"action_type": "X", "action_data": [1, 2]}, "action_data"),
        ({"action_type": "X", "action_data": "text"}, "action_data"),
        ({"action_type": "X", "context": 3}, "context"),
        ({"action_type": "X", "context": ["closed"]}, "context"),
    ],
)
def test_bad_fields_are_400_naming_the_field(engine_api, body, field):
    response = post(engine_api, body)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}:")
    assert field in response.json()["errors"]


def test_action_type_of_exactly_100_characters_is_accepted(engine_api):
    assert post(engine_api, {"action_type": "X" * 100}).status_code == 200


@pytest.mark.parametrize("body", ["{not json", "", "[1, 2]", "null"])
def test_malformed_or_non_object_json_is_400_with_detail(engine_api, body):
    response = post(engine_api, body)
    assert response.status_code == 400
    assert response.json()["detail"]


def test_a_body_over_one_mebibyte_is_413_json(engine_api):
    body = json.dumps({"action_type": "X", "action_data": {"blob": "x" * (1024 * 1024)}})
    response = post(engine_api, body)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_anonymous_is_401(api):
    assert post(api, {"action_type": "X"}).status_code == 401
    assert api.get(RULES).status_code == 401


def test_get_is_not_allowed_on_assess_risk(engine_api):
    response = engine_api.get(ASSESS)
    assert response.status_code == 405
    assert response.json()["detail"]


def test_risk_rules_lists_rules_with_the_original_fields_and_defaults(engine_api):
    body = engine_api.get(RULES).json()
    assert body["default_risk_level"] == "medium"
    assert body["default_requires_approval"] is True
    names = [rule["name"] for rule in body["rules"]]
    assert set(names) == {"external_email", "document_generation", "high_value_operation", "data_enrichment", "analysis", "read_only"}
    email = next(rule for rule in body["rules"] if rule["name"] == "external_email")
    assert {"name", "description", "risk_level", "requires_approval", "action_types", "action_type_patterns"} <= set(email)
    assert email["action_types"] == ["COMMUNICATION.SEND_EMAIL"]
    assert email["risk_level"] == "critical"


def test_risk_rules_reflect_environment_defaults(engine_api, settings):
    from risk.rulebook import rulebook_changed

    settings.ZAKOPS_HITL_DEFAULT_RISK_LEVEL = "low"
    rulebook_changed()
    assert engine_api.get(RULES).json()["default_risk_level"] == "low"


def test_both_endpoints_are_in_the_openapi_schema(engine_api):
    paths = engine_api.get("/api/hitl/schema/").json()["paths"]
    assert "post" in paths["/api/hitl/assess-risk"]
    assert "get" in paths["/api/hitl/risk-rules"]
