"""Risk fails closed (SPEC §2): rules that lower risk match verbs, not substrings, and a
write verb is never assessed below medium with approval, whatever rules match."""

import importlib
import io
from contextlib import redirect_stdout

import pytest
from django.apps import apps
from django.urls import reverse

from risk.models import RiskRule, RiskSettings
from risk.rulebook import rulebook_changed
from risk.services import risk_assess
from zakops.models import Action

pytestmark = pytest.mark.django_db
verb_anchored = importlib.import_module("risk.migrations.0006_verb_anchored_defaults")


@pytest.mark.parametrize(
    "action_type",
    [
        "DEAL.UPDATE_TARGET_PRICE",  # tarGET
        "DOCUMENT.DELETE_THREAD",  # thREAD
        "DEAL.DELETE_PROFILE",  # PROFILE
        "DEAL.CREATE_LISTING",  # LIST
        "DATA.MOVE_FETCHED_ROWS",  # FETCH
        "CRM.UPDATE_BUDGET",  # GET inside BUDGET
        "DEAL.SIGN_SPREADSHEET",  # READ inside spREADsheet
        "DEAL.REMOVE_ENRICHMENT",
    ],
)
def test_write_actions_are_never_waved_through_as_reads(action_type):
    result = risk_assess(action_type=action_type)
    assert result.level in ("medium", "high", "critical") and result.requires_approval, result


@pytest.mark.parametrize("action_type", ["DEAL.GET_DOCUMENT", "DEAL.LIST_ACTIONS", "DOCUMENT.READ", "DEAL.FETCH_FILINGS"])
def test_reads_stay_low_without_approval(action_type):
    result = risk_assess(action_type=action_type)
    assert (result.level, result.requires_approval, result.matched_rules) == ("low", False, ["read_only"])


def test_enrichment_keeps_its_exact_types_and_its_verb():
    for action_type in ("DEAL.ENRICH_MATERIALS", "DEAL.PROFILE_ENRICHED", "COMPANY.ENRICH_FIRMOGRAPHICS"):
        result = risk_assess(action_type=action_type)
        assert (result.level, result.requires_approval, result.matched_rules) == ("medium", False, ["data_enrichment"])


def test_the_floor_overrides_a_rule_that_lowers_a_write_and_says_so():
    RiskRule.objects.create(name="notes_are_harmless", risk_level="low", requires_approval=False, action_types=["DEAL.UPDATE_NOTES"])
    rulebook_changed()
    result = risk_assess(action_type="deal.update_notes")
    assert (result.level, result.requires_approval) == ("medium", True)
    assert result.score >= 0.40
    assert "Write verb UPDATE: never below medium, and a person approves (write-verb floor)" in result.reasons


def test_the_floor_raises_approval_on_a_medium_write():
    RiskRule.objects.create(name="enrich_deletes", risk_level="medium", requires_approval=False, action_types=["DEAL.DELETE_DUPLICATES"])
    rulebook_changed()
    result = risk_assess(action_type="DEAL.DELETE_DUPLICATES")
    assert (result.level, result.requires_approval) == ("medium", True)


def test_the_floor_can_be_switched_off_and_admins_add_verbs():
    RiskRule.objects.create(name="notes_are_harmless", risk_level="low", requires_approval=False, action_types=["DEAL.UPDATE_NOTES", "DEAL.FREEZE_ROOM"])
    RiskSettings.objects.update_or_create(pk=1, defaults={"write_verb_floor": False})
    rulebook_changed()
    assert (risk_assess(action_type="DEAL.UPDATE_NOTES").level, risk_assess(action_type="DEAL.UPDATE_NOTES").requires_approval) == ("low", False)

    RiskSettings.objects.filter(pk=1).update(write_verb_floor=True, write_verbs=["freeze"])
    rulebook_changed()
    assert risk_assess(action_type="DEAL.FREEZE_ROOM").requires_approval
    notes = risk_assess(action_type="DEAL.UPDATE_NOTES")
    assert not any(reason.startswith("Write verb UPDATE") for reason in notes.reasons)  # UPDATE is no longer in the list
    # ...but UPDATE is no read verb either, and only a read is ever rated low.
    assert (notes.level, notes.requires_approval) == ("medium", True)
    assert any(reason.startswith("DEAL.UPDATE_NOTES is not a read (UPDATE is not a read verb)") for reason in notes.reasons)


def test_the_migration_moves_unedited_defaults_and_leaves_edited_ones_alone():
    RiskRule.objects.filter(name="read_only").update(action_type_patterns=["*GET*", "*LIST*", "*READ*", "*FETCH*"])
    RiskRule.objects.filter(name="data_enrichment").update(
        action_type_patterns=["*ENRICH*", "*PROFILE*"], description="Our own wording"
    )
    out = io.StringIO()
    with redirect_stdout(out):
        verb_anchored.forwards(apps, None)
    assert RiskRule.objects.get(name="read_only").action_type_patterns == verb_anchored.VERB_ANCHORED["read_only"]
    assert RiskRule.objects.get(name="data_enrichment").action_type_patterns == ["*ENRICH*", "*PROFILE*"]
    assert "default rule read_only now matches *.GET, *.GET_*" in out.getvalue()
    assert "rule data_enrichment was edited, so it is left as it is" in out.getvalue()


def test_risk_rules_lists_the_rules_in_force_unless_asked_for_all(engine_api):
    RiskRule.objects.filter(name="analysis").update(enabled=False)
    in_force = [rule["name"] for rule in engine_api.get("/api/hitl/risk-rules").json()["rules"]]
    assert "analysis" not in in_force and "read_only" in in_force
    every = engine_api.get("/api/hitl/risk-rules", {"include_disabled": "true"}).json()["rules"]
    assert {rule["name"]: rule["enabled"] for rule in every}["analysis"] is False
    assert engine_api.get("/api/hitl/risk-rules", {"include_disabled": "maybe"}).status_code == 400


# --- the guard in admin ---------------------------------------------------------------


@pytest.fixture
def admin_client(client, make_reviewer):
    client.force_login(make_reviewer("admin"))
    return client


def read_only_form(patterns, **extra):
    rule = RiskRule.objects.get(name="read_only")
    data = {
        "name": "read_only", "description": rule.description, "risk_level": "low", "requires_approval": "",
        "enabled": "on", "action_types": "", "action_type_patterns": "\n".join(patterns), "input_patterns": "{}",
        "min_amount": "", **extra,
    }
    return reverse("admin:risk_riskrule_change", args=[rule.pk]), data


def test_admin_warns_before_saving_a_risk_lowering_pattern_that_matches_inside_words(admin_client):
    Action.objects.create(action_id="ACT-W1", action_type="DEAL.UPDATE_TARGET_PRICE", status="COMPLETED")
    Action.objects.create(action_id="ACT-R1", action_type="DEAL.GET_DETAILS", status="COMPLETED")
    url, data = read_only_form(["*GET*"])
    response = admin_client.post(url, data)
    assert response.status_code == 200  # the form again, nothing saved
    content = response.content.decode()
    assert "can match inside a word" in content
    assert "DEAL.UPDATE_TARGET_PRICE (ACT-W1)" in content and "ACT-R1" not in content
    assert RiskRule.objects.get(name="read_only").action_type_patterns == verb_anchored.VERB_ANCHORED["read_only"]

    response = admin_client.post(url, {**data, "save_anyway": "on"})
    assert response.status_code == 302
    assert RiskRule.objects.get(name="read_only").action_type_patterns == ["*GET*"]


def test_admin_saves_verb_anchored_patterns_without_a_warning(admin_client):
    url, data = read_only_form(["*.GET_*", "*.SEARCH"])
    assert admin_client.post(url, data).status_code == 302
