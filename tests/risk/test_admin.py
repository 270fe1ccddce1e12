import pytest
from django.urls import reverse

from risk.models import RiskRule, RiskSettings
from risk.services import risk_assess
from zakops.catalogue import ACTION_CATALOGUE
from zakops.models import Action

pytestmark = pytest.mark.django_db
ADD = reverse("admin:risk_riskrule_add")


@pytest.fixture
def admin_client(client, make_reviewer):
    client.force_login(make_reviewer("admin"))
    return client


def rule_form(**overrides):
    data = {
        "name": "competitor_contact",
        "description": "Mail to a competitor needs an admin",
        "risk_level": "critical",
        "requires_approval": "on",
        "enabled": "on",
        "action_types": "COMMUNICATION.SEND_EMAIL\n\n",
        "action_type_patterns": "*EMAIL*\n*MESSAGE*",
        "input_patterns": '{"to": "@competitor\\\\.example$"}',
        "min_amount": "",
    }
    data.update(overrides)
    return data


def test_rule_list_shows_level_approval_enabled_and_what_it_applies_to(admin_client):
    response = admin_client.get(reverse("admin:risk_riskrule_changelist"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "external_email" in content
    assert "COMMUNICATION.SEND_EMAIL, *SEND*EMAIL*, *EMAIL*SEND*" in content
    assert "amount ≥ 10,000.00" in content
    assert "Dry run" in content


def test_rule_list_filters_and_searches(admin_client):
    url = reverse("admin:risk_riskrule_changelist")
    content = admin_client.get(url, {"risk_level__exact": "low"}).content.decode()
    assert "read_only" in content and "external_email" not in content
    content = admin_client.get(url, {"q": "valuation"}).content.decode()
    assert "analysis" in content and "read_only" not in content


def test_adding_a_rule_stores_lines_as_lists_and_takes_effect_at_once(admin_client):
    assert "competitor_contact" not in risk_assess(action_type="X.MESSAGE", inputs={"to": "a@competitor.example"}).matched_rules
    response = admin_client.post(ADD, rule_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = RiskRule.objects.get(name="competitor_contact")
    assert rule.action_types == ["COMMUNICATION.SEND_EMAIL"]
    assert rule.action_type_patterns == ["*EMAIL*", "*MESSAGE*"]
    assert rule.input_patterns == {"to": r"@competitor\.example$"}
    result = risk_assess(action_type="X.MESSAGE", inputs={"to": "a@competitor.example"})
    assert "competitor_contact" in result.matched_rules
    assert "Matched rule competitor_contact: Mail to a competitor needs an admin" in result.reasons


def test_editing_a_rule_is_seen_by_the_next_assessment(admin_client):
    assert risk_assess(action_type="DEAL.GET_DETAILS").level == "low"
    rule = RiskRule.objects.get(name="read_only")
    data = rule_form(
        name="read_only", description=rule.description, risk_level="high", requires_approval="",
        action_types="", action_type_patterns="\n".join(rule.action_type_patterns), input_patterns="{}",
    )
    response = admin_client.post(reverse("admin:risk_riskrule_change", args=[rule.pk]), data)
    assert response.status_code == 302
    assert risk_assess(action_type="DEAL.GET_DETAILS").level == "high"


def test_disabling_from_the_list_is_seen_by_the_next_assessment(admin_client):
    assert "read_only" in risk_assess(action_type="DEAL.GET_DETAILS").matched_rules
    ids = list(RiskRule.objects.filter(name="read_only").values_list("pk", flat=True))
    admin_client.post(reverse("admin:risk_riskrule_changelist"), {"action": "disable", "_selected_action": ids})
    assert risk_assess(action_type="DEAL.GET_DETAILS").matched_rules == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("input_patterns", '{"to": "(a)\\\\1"}', "backreferences"),  # needs backtracking
        ("input_patterns", '{"to": "(?=x)y"}', "lookarounds"),
        ("input_patterns", '{"to": "((a{100}){100}){100}"}', "refused"),  # too big to run safely
        ("input_patterns", '{"to": "' + "a" * 600 + '"}', "at most 500"),
        ("input_patterns", '["not", "an", "object"]', "JSON object"),
        ("input_patterns", "{not json", "valid JSON"),
        ("action_type_patterns", "*" + "A" * 600, "at most 500"),
        ("risk_level", "extreme", "valid choice"),
    ],
)
def test_an_invalid_or_catastrophic_pattern_is_a_form_error_naming_the_field(admin_client, field, value, message):
    response = admin_client.post(ADD, rule_form(**{field: value}))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors
    assert message in " ".join(errors[field])
    assert not RiskRule.objects.filter(name="competitor_contact").exists()


def test_settings_list_goes_to_the_single_row_and_validates_thresholds(admin_client):
    response = admin_client.get(reverse("admin:risk_risksettings_changelist"))
    assert response.status_code == 302
    change_url = response["Location"]
    page = admin_client.get(change_url)
    form = page.context["adminform"].form
    data = {name: ("" if value is None else value) for name, value in form.initial.items() if name in form.fields}
    data.update({"threshold_high": "0.95", "internal_domains": "zakops.com", "default_risk_level": "", "default_requires_approval": "unknown", "auto_approve_low_risk": "unknown"})
    response = admin_client.post(change_url, data)
    assert response.status_code == 200
    assert "Thresholds must rise" in response.content.decode()
    data["threshold_high"] = "0.65"
    assert admin_client.post(change_url, data).status_code == 302
    assert RiskSettings.objects.get().internal_domains == ["zakops.com"]
    assert risk_assess(action_type="ANALYSIS.VALUATION", inputs={"ids": list(range(10))}).level == "medium"


def test_dry_run_shows_the_full_assessment(admin_client):
    url = reverse("admin:risk_riskrule_dry_run")
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {
        "action_type": "COMMUNICATION.SEND_EMAIL",
        "inputs": '{"to": "cfo@seller.example", "recipients": ' + str(list(range(12))) + "}",
        "context": '{"deal_stage": "diligence"}',
    })
    content = response.content.decode()
    assert response.status_code == 200
    assert "critical" in content
    assert "Matched rule external_email: Sending external emails requires approval" in content
    assert "Bulk operation: recipients has 12 items (+0.20)" in content
    assert "score 1.00" in content


def test_dry_run_with_bad_json_is_a_form_error_not_a_500(admin_client):
    response = admin_client.post(reverse("admin:risk_riskrule_dry_run"), {"action_type": "X", "inputs": "[1]", "context": "{oops"})
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"inputs", "context"}


def test_dry_run_escapes_what_it_shows(admin_client):
    response = admin_client.post(reverse("admin:risk_riskrule_dry_run"), {"action_type": "<script>x</script>", "inputs": "{}", "context": "{}"})
    assert b"<script>x</script>" not in response.content


def test_preview_counts_recent_actions_the_unsaved_rule_would_match(admin_client):
    from django.core.management import call_command

    call_command("seed_demo", stdout=open("/dev/null", "w"))
    response = admin_client.post(
        reverse("admin:risk_riskrule_preview"),
        rule_form(action_types="", action_type_patterns="DOCUMENT.*", input_patterns="{}", _preview_limit="1000"),
    )
    content = response.content.decode()
    assert response.status_code == 200
    documents = sum(1 for entry in ACTION_CATALOGUE if entry.action_type.startswith("DOCUMENT."))
    total = Action.objects.count()
    assert f"Would match {2 * documents} of the last {total} actions" in content
    assert content.count("<td>DOCUMENT.") == 5  # a few examples, all of the matched kind
    assert "<td>COMMUNICATION." not in content
    assert not RiskRule.objects.filter(name="competitor_contact").exists()  # nothing saved


def test_preview_reports_pattern_errors(admin_client):
    response = admin_client.post(reverse("admin:risk_riskrule_preview"), rule_form(input_patterns='{"to": "(a)\\\\1"}'))
    assert response.status_code == 200
    assert "backreferences" in response.content.decode()


def test_change_page_offers_the_preview(admin_client):
    rule = RiskRule.objects.get(name="external_email")
    content = admin_client.get(reverse("admin:risk_riskrule_change", args=[rule.pk])).content.decode()
    assert reverse("admin:risk_riskrule_preview") in content
    assert "js/htmx.min.js" in content


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_non_admins_can_not_reach_rule_admin_dry_run_or_preview(client, make_reviewer, role):
    client.force_login(make_reviewer(role))
    for url in (reverse("admin:risk_riskrule_changelist"), reverse("admin:risk_riskrule_dry_run")):
        assert client.get(url).status_code == 302
    assert client.post(reverse("admin:risk_riskrule_preview"), rule_form()).status_code == 302
