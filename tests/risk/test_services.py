"""The assessor, rule by rule of SPEC §2."""

from decimal import Decimal

import pytest

from risk.models import RiskRule, RiskSettings
from risk.rulebook import rulebook_changed
from risk.services import risk_assess
from zakops.catalogue import ACTION_CATALOGUE

pytestmark = pytest.mark.django_db


def assess(action_type, inputs=None, context=None):
    return risk_assess(action_type=action_type, inputs=inputs or {}, context=context or {})


def rule(name, level, *, approval=True, types=(), patterns=(), inputs=None, min_amount=None, enabled=True):
    created = RiskRule.objects.create(
        name=name, description=f"{name} rule", risk_level=level, requires_approval=approval, enabled=enabled,
        action_types=list(types), action_type_patterns=list(patterns), input_patterns=inputs or {},
        min_amount=min_amount,
    )
    rulebook_changed()
    return created


def settings_update(**fields):
    RiskSettings.objects.filter(pk=1).update(**fields)
    rulebook_changed()


@pytest.mark.parametrize("entry", ACTION_CATALOGUE, ids=lambda e: e.action_type)
def test_every_catalogue_type_gets_the_level_the_default_rules_give(entry):
    result = assess(entry.action_type, entry.inputs)
    assert (result.level, result.requires_approval) == (entry.level, entry.requires_approval)
    assert result.requires_quarantine == (entry.level == "critical")


def test_external_email_reads_as_a_sentence_with_score_and_rule():
    result = assess("COMMUNICATION.SEND_EMAIL", {"to": "cfo@seller.example"})
    assert result.level == "critical"
    assert result.score == 1.0
    assert result.matched_rules == ["external_email"]
    assert result.reasons[0] == "Matched rule external_email: Sending external emails requires approval"
    assert "External communication: to includes cfo@seller.example (+0.10)" in result.reasons


@pytest.mark.parametrize("action_type", ["communication.send_email", "Communication.Send_Email"])
def test_exact_types_are_case_insensitive(action_type):
    assert assess(action_type).matched_rules == ["external_email"]


@pytest.mark.parametrize(
    ("action_type", "expected"),
    [
        ("MARKETING.SEND_BULK_EMAIL", "external_email"),  # *SEND*EMAIL*
        ("email.send.v2", "external_email"),  # *EMAIL*SEND*, case-insensitive
        ("DOCUMENT.GENERATE_TEASER", "document_generation"),
        ("LEGAL.GENERATE_SIGNED_LOI", "document_generation"),
        ("DEAL.FETCH_FILINGS", "read_only"),
    ],
)
def test_glob_patterns(action_type, expected):
    assert expected in assess(action_type).matched_rules


def test_question_mark_matches_one_character_and_other_characters_are_literal():
    rule("one_char", "high", patterns=["DEAL.V?"])
    rule("literal", "high", patterns=["DEAL.[AB]"])
    assert "one_char" in assess("DEAL.V2").matched_rules
    assert "one_char" not in assess("DEAL.V22").matched_rules
    assert "literal" in assess("deal.[ab]").matched_rules
    assert "literal" not in assess("DEAL.A").matched_rules


def test_severity_is_the_most_severe_not_the_alphabetical_first():
    # "low" sorts after "critical" alphabetically; the critical rule must still win.
    rule("aaa_low", "low", approval=False, types=["X.BOTH"])
    rule("zzz_critical", "critical", approval=False, types=["X.BOTH"])
    result = assess("X.BOTH")
    assert result.level == "critical"
    assert result.requires_approval  # critical needs approval even if no rule asks
    assert set(result.matched_rules) == {"aaa_low", "zzz_critical"}


def test_medium_beats_high_alphabetically_but_not_by_severity():
    rule("first", "medium", approval=False, types=["X.MH"])
    rule("second", "high", approval=False, types=["X.MH"])
    assert assess("X.MH").level == "high"


def test_approval_is_required_if_any_matched_rule_requires_it():
    rule("quiet", "low", approval=False, types=["X.APP"])
    rule("loud", "low", approval=True, types=["X.APP"])
    assert assess("X.APP").requires_approval


def test_a_rule_without_types_or_patterns_matches_every_type():
    rule("everything", "medium", approval=False)
    assert "everything" in assess("ANY.THING").matched_rules


def test_disabled_rules_do_not_match():
    rule("off", "critical", types=["X.OFF"], enabled=False)
    assert assess("X.OFF").matched_rules == []


def test_no_match_uses_the_defaults():
    result = assess("UNKNOWN.ACTION")
    assert (result.level, result.score, result.requires_approval) == ("medium", 0.4, True)
    assert result.matched_rules == []
    assert result.reasons == ["No rule matched: default level medium, approval required"]


def test_environment_defaults_apply_when_no_rule_matches(settings):
    settings.ZAKOPS_HITL_DEFAULT_RISK_LEVEL = "high"
    settings.ZAKOPS_HITL_DEFAULT_REQUIRES_APPROVAL = False
    rulebook_changed()
    result = assess("UNKNOWN.ACTION")
    assert (result.level, result.score) == ("high", 0.7)
    assert result.requires_approval  # high always needs approval


def test_environment_default_low_without_approval(settings):
    settings.ZAKOPS_HITL_DEFAULT_RISK_LEVEL = "low"
    settings.ZAKOPS_HITL_DEFAULT_REQUIRES_APPROVAL = False
    rulebook_changed()
    # A read no rule names; a low default never lowers a non-read (test_verb_phrases).
    result = assess("DEAL.SEARCH_NOTES")
    assert (result.level, result.requires_approval) == ("low", False)


def test_settings_row_overrides_the_environment_defaults(settings):
    settings.ZAKOPS_HITL_DEFAULT_RISK_LEVEL = "high"
    settings_update(default_risk_level="low", default_requires_approval=False)
    assert (assess("DEAL.SEARCH_NOTES").level, assess("DEAL.SEARCH_NOTES").requires_approval) == ("low", False)


def test_auto_approve_low_risk(settings):
    rule("needs_it", "low", approval=True, types=["X.VIEW_LOW"])
    assert assess("X.VIEW_LOW").requires_approval
    settings.ZAKOPS_HITL_AUTO_APPROVE_LOW_RISK = True
    rulebook_changed()
    result = assess("X.VIEW_LOW")
    assert (result.level, result.requires_approval) == ("low", False)
    # It only touches a final low: medium still follows its rule.
    rule("mid", "medium", approval=True, types=["X.MID"])
    assert assess("X.MID").requires_approval


# --- modifiers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        ({"recipients": ["a"] * 10}, "Bulk operation: recipients has 10 items (+0.20)"),
        ({"batch": {"ids": list(range(250))}}, "Bulk operation: batch.ids has 250 items (+0.20)"),
        ({"count": 10}, "Bulk operation: count is 10 (+0.20)"),
        ({"batch_size": 500}, "Bulk operation: batch_size is 500 (+0.20)"),
        ({"bulk": True}, "Bulk operation: bulk is true (+0.20)"),
    ],
)
def test_bulk_modifier(inputs, reason):
    result = assess("DEAL.GET_DETAILS", inputs)
    assert result.score == 0.3
    assert result.level == "medium"  # 0.10 + 0.20 reaches the medium threshold exactly
    assert reason in result.reasons
    assert "Score 0.30 raises the level from low to medium" in result.reasons


@pytest.mark.parametrize(
    "inputs",
    [
        {"recipients": ["a"] * 9},
        {"count": 9},
        {"bulk": "true"},
        {"count": True},
        {"deep": {"deeper": {"ids": list(range(50))}}},  # two levels down does not count
    ],
)
def test_below_the_bulk_threshold_is_not_bulk(inputs):
    assert assess("DEAL.GET_DETAILS", inputs).score == 0.1


def test_bulk_threshold_is_editable():
    settings_update(bulk_threshold=3)
    assert assess("DEAL.GET_DETAILS", {"ids": [1, 2, 3]}).score == 0.3


@pytest.mark.parametrize("key", ["amount", "value", "total", "price", "payment", "iban", "account_number", "routing_number", "swift"])
def test_financial_modifier(key):
    result = assess("ANALYSIS.VALUATION", {key: "x"})
    assert result.score == 0.55
    assert f"Financial data: inputs include {key} (+0.15)" in result.reasons


def test_modifiers_count_once_each():
    inputs = {"amount": 1, "price": 2, "iban": "DE00", "recipients": ["a"] * 20, "ids": list(range(20))}
    assert assess("DEAL.GET_DETAILS", inputs).score == round(0.10 + 0.20 + 0.15, 2)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("to", "cfo@seller.example"),
        ("cc", ["ops@zakops.com", "Partner <partner@other.example>"]),
        ("bcc", "a@zakops.com, b@outside.example"),
        ("recipient", {"name": "CFO", "email": "cfo@seller.example"}),
        ("recipients", [{"email": "x@y.example"}]),
        ("email", "someone@gmail.com"),
    ],
)
def test_external_communication_modifier(key, value):
    settings_update(internal_domains=["zakops.com"])
    result = assess("COMMUNICATION.DRAFT_EMAIL", {key: value})
    assert result.score == 0.5
    assert any(reason.startswith(f"External communication: {key} includes") for reason in result.reasons)


def test_internal_domains_and_their_subdomains_are_not_external():
    settings_update(internal_domains=["zakops.com"])
    inputs = {"to": ["a@zakops.com", "b@mail.zakops.com", "C@ZAKOPS.COM"], "cc": "no address here"}
    assert assess("COMMUNICATION.DRAFT_EMAIL", inputs).score == 0.4
    assert assess("COMMUNICATION.DRAFT_EMAIL", {"to": "x@notzakops.com"}).score == 0.5


def test_every_address_is_external_without_internal_domains():
    assert assess("COMMUNICATION.DRAFT_EMAIL", {"to": "a@zakops.com"}).score == 0.5


def test_recipient_keys_only():
    assert assess("COMMUNICATION.DRAFT_EMAIL", {"body": "write to a@b.example"}).score == 0.4


# --- thresholds, edges, the rule level floor -----------------------------------------


def test_high_plus_bulk_reaches_critical_at_exactly_the_threshold():
    result = assess("DOCUMENT.GENERATE_LOI", {"recipients": ["a"] * 10})
    assert (result.score, result.level) == (0.9, "critical")
    assert result.requires_quarantine


def test_medium_plus_bulk_reaches_high_at_exactly_the_threshold():
    result = assess("ANALYSIS.VALUATION", {"ids": list(range(10))})
    assert (result.score, result.level) == (0.6, "high")
    assert result.requires_approval  # high needs approval although the rule does not


def test_just_below_a_threshold_stays_below():
    settings_update(threshold_high=0.61)
    assert assess("ANALYSIS.VALUATION", {"ids": list(range(10))}).level == "medium"


def test_score_is_capped_at_one():
    result = assess("COMMUNICATION.SEND_EMAIL", {"to": ["a@b.example"] * 20, "amount": 5})
    assert result.score == 1.0


def test_the_final_level_is_never_below_the_rule_level():
    settings_update(base_critical=0.2)
    result = assess("COMMUNICATION.SEND_EMAIL")
    assert result.level == "critical"
    assert result.score == 0.2


# --- min_amount and input patterns ---------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "matches"),
    [
        ({"amount": 10000}, True),
        ({"amount": 9999.99}, False),
        ({"value": "25,000"}, True),
        ({"total": "12000.50"}, True),
        ({"amount": 5, "value": 50000}, False),  # the first present key decides
        ({"amount": "n/a"}, True),  # non-numeric does not fail the rule
        ({"amount": None}, True),
        ({}, True),  # absent does not fail the rule
    ],
)
def test_min_amount(inputs, matches):
    assert ("high_value_operation" in assess("FINANCIAL.PAYMENT_TRANSFER", inputs).matched_rules) is matches


def test_input_patterns_must_match_when_the_key_is_present():
    rule("competitor_mail", "critical", patterns=["*EMAIL*"], inputs={"to": r"@competitor\.example$"})
    assert "competitor_mail" in assess("COMMUNICATION.DRAFT_EMAIL", {"to": "ceo@competitor.example"}).matched_rules
    assert "competitor_mail" not in assess("COMMUNICATION.DRAFT_EMAIL", {"to": "ceo@friend.example"}).matched_rules
    assert "competitor_mail" in assess("COMMUNICATION.DRAFT_EMAIL", {"subject": "hi"}).matched_rules


def test_input_patterns_see_numbers_and_booleans_as_text():
    rule("big_round", "high", types=["X.PAY"], inputs={"amount": r"^\d+000$", "urgent": "^true$"})
    assert "big_round" in assess("X.PAY", {"amount": 5000, "urgent": True}).matched_rules
    assert "big_round" not in assess("X.PAY", {"amount": 5001}).matched_rules


def test_a_catastrophic_pattern_stored_anyway_runs_in_linear_time():
    rule("nested", "high", types=["X.RE"], inputs={"text": "(a+)+$"})
    result = assess("X.RE", {"text": "a" * 50_000 + "!"})  # backtracking engines hang on this
    assert result.matched_rules == []


# --- context -------------------------------------------------------------------------


def test_closed_deal_makes_anything_critical_with_approval():
    result = assess("DEAL.GET_DETAILS", {}, {"deal_stage": "closed"})
    assert (result.level, result.requires_approval, result.requires_quarantine) == ("critical", True, True)
    assert result.score == 0.9
    assert "Deal is closed - all actions require approval" in result.reasons


def test_closed_deal_keeps_a_higher_score_and_wins_over_auto_approve(settings):
    settings.ZAKOPS_HITL_AUTO_APPROVE_LOW_RISK = True
    rulebook_changed()
    assert assess("DEAL.GET_DETAILS", {}, {"deal_stage": "closed"}).requires_approval
    assert assess("COMMUNICATION.SEND_EMAIL", {"to": "a@b.example"}, {"deal_stage": "closed"}).score == 1.0


def test_other_stages_change_nothing():
    assert assess("DEAL.GET_DETAILS", {}, {"deal_stage": "diligence"}).level == "low"


def test_test_mode_adds_a_recommendation_only():
    normal = assess("DEAL.GET_DETAILS")
    test_mode = assess("DEAL.GET_DETAILS", {}, {"is_test_mode": True})
    assert (test_mode.level, test_mode.score, test_mode.requires_approval) == (normal.level, normal.score, normal.requires_approval)
    assert len(test_mode.recommendations) == len(normal.recommendations) + 1


def test_a_stored_rule_whose_pattern_no_longer_compiles_matches_more_not_less():
    bad = rule("legacy", "critical", types=["X.LEGACY"], inputs={"to": "ok"})
    RiskRule.objects.filter(pk=bad.pk).update(input_patterns={"to": r"(a)\1"})
    rulebook_changed()
    assert assess("X.LEGACY", {"to": "zzz"}).level == "critical"


def test_min_amount_decimal_is_kept_exactly():
    assert RiskRule.objects.get(name="high_value_operation").min_amount == Decimal("10000")
