"""The write-verb floor reads every word of an action type (SPEC §2): a write verb anywhere
(inside a word too) or a joining word keeps an action at medium or above with a person,
and a rule that lowers risk only lowers a read."""

import json

import pytest
from django.urls import reverse

from risk.models import RiskRule, RiskSettings
from risk.rulebook import rulebook_changed
from risk.services import risk_assess
from zakops.models import Action

pytestmark = pytest.mark.django_db

COMPOUND_EXAMPLES = [
    ("FINANCE.GET_AND_WIRE_FUNDS", {"amount": 2000000}),
    ("CRM.FETCH_AND_DELETE_CONTACTS", {}),
    ("DEAL.GET_OR_CREATE", {}),
    ("DEAL.LIST_THEN_PURGE", {}),
    ("ACCOUNT.LIST_USERS_AND_GRANT_ADMIN", {}),
]


def mixed_case(text):
    return "".join(char.lower() if i % 2 else char.upper() for i, char in enumerate(text))


def in_every_case(examples):
    return [
        pytest.param(change(action_type), inputs, id=f"{action_type}-{name}")
        for action_type, inputs in examples
        for name, change in (("upper", str.upper), ("lower", str.lower), ("mixed", mixed_case))
    ]


@pytest.mark.parametrize(("action_type", "inputs"), in_every_case(COMPOUND_EXAMPLES))
def test_a_read_verb_first_does_not_make_a_compound_action_a_read(action_type, inputs):
    result = risk_assess(action_type=action_type, inputs=inputs)
    assert result.level in ("medium", "high", "critical") and result.requires_approval, result


def test_the_reasons_name_the_joining_word_and_the_write_verb():
    result = risk_assess(action_type="finance.get_and_wire_funds", inputs={"amount": 2000000})
    assert (result.level, result.requires_approval, result.matched_rules) == ("medium", True, ["read_only"])
    assert any(reason.startswith("Compound action (AND):") and "not a read" in reason for reason in result.reasons), result.reasons
    assert "Write verb WIRE: never below medium, and a person approves (write-verb floor)" in result.reasons


def test_several_write_verbs_are_all_named():
    result = risk_assess(action_type="CRM.LIST_THEN_DELETE_AND_PURGE")
    assert "Write verbs DELETE, PURGE: never below medium, and a person approves (write-verb floor)" in result.reasons
    assert any(reason.startswith("Compound action (THEN, AND):") for reason in result.reasons), result.reasons


@pytest.mark.parametrize(
    "action_type",
    [
        "FINANCE.WIRE_FUNDS.GET",  # a write verb in a segment before the last one
        "DEAL.GET-DELETE",  # other separators split words too
        "DEAL.GET DELETE",
        "DEAL.GET/DELETE",
        "DEAL.GET:DELETE",
        "DEAL.GET_DELETE",  # a write verb that is not the first word
        "deal.fetch_records_plus_export",
        "DEAL.GETANDDELETE.LIST_SOMETHING_with_x",  # WITH joins
        "GET_AND_DELETE",  # no dot: every word counts
        "DEAL.GET_ＷＩＲＥ",  # full-width letters are the same word
    ],
)
def test_every_word_after_the_first_dot_counts(action_type):
    RiskRule.objects.create(name="everything_low", risk_level="low", requires_approval=False)
    rulebook_changed()
    result = risk_assess(action_type=action_type)
    assert (result.level, result.requires_approval) == ("medium", True), result


@pytest.mark.parametrize(
    "action_type",
    [
        # A write verb in the namespace.
        "WIRE_FUNDS.GET_STATUS", "PAY_AND_DELETE.GET", "SEND.GET",
        # Glued to another word: camelCase, run together, digits, inflections.
        "DEAL.GET_filesThenSend", "DEAL.GET_SENDMAIL", "DEAL.GET_RESEND", "DEAL.GET_2SEND", "DEAL.GET_SEND2",
        "DEAL.GET_SENDING", "DEAL.GET_WIRES", "DEAL.GET_RESENDING", "ANALYSIS.sendReport", "DEAL.ENRICHTHENWIRE",
        # Drawn as nothing, or drawn like a plain letter.
        "ANALYSIS.S\u200bEND_REPORT", "DEAL.S\u200bEND_VALUATION", "ANALYSIS.S\u00adEND", "DEAL.ENRICH_S\u200dEND",
        "DEAL.ENRICH_W\u0336IRE", "DEAL.ENRICH_S\u0415ND", "DEAL.ENRICH_\ua731END", "DEAL.GET_\uff37\uff29\uff32\uff25",
    ],
)
def test_no_spelling_hides_a_write_with_the_default_rules(action_type):
    result = risk_assess(action_type=action_type)
    assert result.level in ("medium", "high", "critical") and result.requires_approval, (action_type, result)


def test_a_write_verb_inside_a_word_is_named_with_its_word():
    result = risk_assess(action_type="DEAL.GET_SENDMAIL")
    assert "Write verb SEND in SENDMAIL: never below medium, and a person approves (write-verb floor)" in result.reasons


def test_characters_that_could_hide_a_write_always_need_a_person():
    result = risk_assess(action_type="DEAL.ENRICH_S\u0415ND")  # a Cyrillic Е
    assert (result.level, result.requires_approval) == ("medium", True)
    assert any(reason.startswith("Unusual characters:") for reason in result.reasons), result.reasons


def test_words_that_are_not_writes_stay_reads_and_admins_edit_them():
    for action_type in ("DEAL.LIST_ASSETS", "DEAL.GET_SETTINGS", "DEAL.LIST_SHAREHOLDERS", "DEAL.LIST_PAYEES"):
        result = risk_assess(action_type=action_type)
        assert (result.level, result.requires_approval) == ("low", False), (action_type, result)
    # A word that holds a write verb and is not on the list is a write.
    assert risk_assess(action_type="DEAL.GET_PRESETS").requires_approval
    RiskSettings.objects.update_or_create(pk=1, defaults={"not_write_words": ["PRESETS"]})
    rulebook_changed()
    assert not risk_assess(action_type="DEAL.GET_PRESETS").requires_approval
    assert risk_assess(action_type="DEAL.GET_ASSETS").requires_approval  # no longer on the list


@pytest.mark.parametrize(
    ("action_type", "why"),
    [
        ("DEAL.TAG_CONTACT", "TAG is not a read verb"),
        ("DEAL.", "it has no verb"),
    ],
)
def test_a_rule_that_lowers_risk_only_lowers_reads(action_type, why):
    RiskRule.objects.create(name="everything_low", risk_level="low", requires_approval=False)
    rulebook_changed()
    result = risk_assess(action_type=action_type)
    assert (result.level, result.requires_approval) == ("medium", True)
    assert (
        f"{action_type} is not a read ({why}): a rule that lowers risk only lowers reads; medium, and a person approves"
        in result.reasons
    )
    assert result.score >= 0.40


def test_a_low_default_only_lowers_reads(settings):
    settings.ZAKOPS_HITL_DEFAULT_RISK_LEVEL = "low"
    settings.ZAKOPS_HITL_DEFAULT_REQUIRES_APPROVAL = False
    rulebook_changed()
    assert (risk_assess(action_type="DEAL.SEARCH_NOTES").level, risk_assess(action_type="DEAL.SEARCH_NOTES").requires_approval) == ("low", False)
    result = risk_assess(action_type="DEAL.TAG_CONTACT")
    assert (result.level, result.requires_approval) == ("medium", True)


def test_auto_approve_low_never_waves_a_non_read_through(settings):
    settings.ZAKOPS_HITL_AUTO_APPROVE_LOW_RISK = True
    RiskRule.objects.create(name="tags_are_low", risk_level="low", requires_approval=True, action_types=["DEAL.TAG_CONTACT"])
    rulebook_changed()
    result = risk_assess(action_type="DEAL.TAG_CONTACT")
    assert (result.level, result.requires_approval) == ("medium", True)


def test_a_medium_rule_without_approval_still_rates_a_plain_non_read():
    result = risk_assess(action_type="DEAL.ENRICH_MATERIALS")
    assert (result.level, result.requires_approval) == ("medium", False)
    assert not any("not a read" in reason for reason in result.reasons)


def test_a_medium_rule_without_approval_does_not_spare_a_compound_action():
    result = risk_assess(action_type="DEAL.ENRICH_AND_SHARE")
    assert (result.level, result.requires_approval) == ("medium", True)


def test_switching_the_floor_off_lets_rules_rate_compound_actions_again():
    RiskSettings.objects.update_or_create(pk=1, defaults={"write_verb_floor": False})
    rulebook_changed()
    result = risk_assess(action_type="FINANCE.GET_AND_WIRE_FUNDS")
    assert (result.level, result.requires_approval) == ("low", False)
    tagged = risk_assess(action_type="DEAL.TAG_CONTACT")
    assert (tagged.level, tagged.requires_approval) == ("medium", True)  # the default rates it, not the floor


def test_admins_add_write_verbs_that_count_anywhere_in_the_phrase():
    RiskSettings.objects.update_or_create(pk=1, defaults={"write_verbs": ["freeze"]})
    rulebook_changed()
    assert risk_assess(action_type="DEAL.GET_FROZEN").level == "low"
    result = risk_assess(action_type="DEAL.GET_ROOM_FREEZE")
    assert (result.level, result.requires_approval) == ("medium", True)
    assert "Write verb FREEZE: never below medium, and a person approves (write-verb floor)" in result.reasons


# --- end to end -----------------------------------------------------------------------


def test_the_engines_request_for_a_compound_wire_waits_for_a_person(engine_api):
    response = engine_api.post(
        "/api/hitl/approval-requests",
        json.dumps({"action_id": "ACT-WIRE-1", "action_type": "FINANCE.GET_AND_WIRE_FUNDS", "inputs": {"amount": 2000000}}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["state"], body["requires_approval"]) == ("pending", True)
    assert body["risk_level"] in ("medium", "high", "critical")
    assert Action.objects.get(pk="ACT-WIRE-1").status == "PENDING_APPROVAL"


@pytest.mark.parametrize(("action_type", "inputs"), in_every_case(COMPOUND_EXAMPLES))
def test_assess_risk_answers_approval_for_every_compound_example(engine_api, action_type, inputs):
    response = engine_api.post(
        "/api/hitl/assess-risk", {"action_type": action_type, "action_data": inputs}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["requires_approval"] is True and body["level"] in ("medium", "high", "critical"), body


# --- admin ----------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, make_reviewer):
    client.force_login(make_reviewer("admin"))
    return client


def test_the_dry_run_shows_why_a_compound_action_needs_a_person(admin_client):
    response = admin_client.post(
        reverse("admin:risk_riskrule_dry_run"),
        {"action_type": "CRM.Fetch_And_Delete_Contacts", "inputs": "{}", "context": "{}"},
    )
    content = response.content.decode()
    assert response.status_code == 200
    assert "needs approval" in content
    assert "Compound action (AND)" in content
    assert "Write verb DELETE: never below medium, and a person approves (write-verb floor)" in content


def rule_form(**overrides):
    return {
        "name": "loose", "description": "", "risk_level": "low", "requires_approval": "", "enabled": "on",
        "action_types": "", "action_type_patterns": "*GET*", "input_patterns": "{}", "min_amount": "", **overrides,
    }


@pytest.mark.parametrize(
    ("level", "approval", "warned"),
    [
        ("low", "", True),
        ("low", "on", True),  # low lowers risk even with approval
        ("medium", "", True),
        ("high", "", True),
        ("medium", "on", False),
        ("critical", "on", False),
    ],
)
def test_the_admin_warning_covers_every_rule_that_lowers_risk(admin_client, level, approval, warned):
    response = admin_client.post(reverse("admin:risk_riskrule_add"), rule_form(risk_level=level, requires_approval=approval))
    assert ("can match inside a word" in response.content.decode()) is warned
    assert RiskRule.objects.filter(name="loose").exists() is not warned


def test_the_admin_warning_lists_compound_actions_as_non_reads(admin_client):
    Action.objects.create(action_id="ACT-C1", action_type="DEAL.GET_AND_DELETE_NOTES", status="COMPLETED")
    Action.objects.create(action_id="ACT-R1", action_type="DEAL.GET_DETAILS", status="COMPLETED")
    content = admin_client.post(reverse("admin:risk_riskrule_add"), rule_form()).content.decode()
    assert "DEAL.GET_AND_DELETE_NOTES (ACT-C1)" in content and "ACT-R1" not in content
    response = admin_client.post(reverse("admin:risk_riskrule_add"), rule_form(save_anyway="on"))
    assert response.status_code == 302


# --- input keys in any letter case, and nested -------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "where"),
    [
        ({"To": "x@evil.example"}, "To"),
        ({"CC": ["x@evil.example"]}, "CC"),
        ({"Recipients": [{"Email": "x@evil.example"}]}, "Recipients"),
        ({"EMAIL": "x@evil.example"}, "EMAIL"),
        ({"message": {"To": "x@evil.example"}}, "message.To"),
        ({"messages": [{"body": "hi"}, {"envelope": {"bcc": "x@evil.example"}}]}, "messages[1].envelope.bcc"),
    ],
)
def test_recipient_keys_count_in_any_case_and_anywhere(inputs, where):
    RiskSettings.objects.filter(pk=1).update(internal_domains=["zakops.com"])
    rulebook_changed()
    result = risk_assess(action_type="COMMUNICATION.DRAFT_EMAIL", inputs=inputs)
    assert result.score == 0.5
    assert f"External communication: {where} includes x@evil.example (+0.10)" in result.reasons


def test_an_edit_adding_a_capitalised_recipient_is_external_like_a_lower_case_one():
    plain = risk_assess(action_type="COMMUNICATION.DRAFT_EMAIL", inputs={"subject": "hi"})
    for key in ("to", "To", "TO"):
        edited = risk_assess(action_type="COMMUNICATION.DRAFT_EMAIL", inputs={"subject": "hi", key: "x@evil.example"})
        assert edited.score == round(plain.score + 0.10, 2), key


def test_a_rules_input_pattern_sees_every_case_of_its_key():
    RiskRule.objects.create(
        name="competitor_mail", risk_level="critical", action_type_patterns=["*EMAIL*"], input_patterns={"to": r"@competitor\.example$"},
    )
    rulebook_changed()
    assert "competitor_mail" not in risk_assess(action_type="X.DRAFT_EMAIL", inputs={"To": "ceo@friend.example"}).matched_rules
    # A rule that raises risk matches when any variant matches: a second spelling can not hide the first.
    both = {"to": "ceo@friend.example", "TO": "ceo@competitor.example"}
    assert "competitor_mail" in risk_assess(action_type="X.DRAFT_EMAIL", inputs=both).matched_rules


def test_a_lowering_rule_must_match_every_case_of_its_key():
    RiskRule.objects.create(
        name="internal_mail_is_fine", risk_level="medium", requires_approval=False,
        action_types=["COMMUNICATION.DRAFT_EMAIL"], input_patterns={"to": r"@zakops\.com$"},
    )
    rulebook_changed()
    inside = risk_assess(action_type="COMMUNICATION.DRAFT_EMAIL", inputs={"To": "ann@zakops.com"})
    assert "internal_mail_is_fine" in inside.matched_rules
    dodge = risk_assess(action_type="COMMUNICATION.DRAFT_EMAIL", inputs={"to": "ann@zakops.com", "To": "x@evil.example"})
    assert "internal_mail_is_fine" not in dodge.matched_rules and dodge.requires_approval


@pytest.mark.parametrize(
    ("inputs", "matches"),
    [
        ({"Amount": 20000}, True),
        ({"AMOUNT": 9000}, False),
        ({"amount": 5, "Amount": 50000}, True),  # variants disagree: the largest decides
        ({"amount": 50000, "AMOUNT": 5}, True),
        ({"Value": "25,000"}, True),
    ],
)
def test_min_amount_reads_every_case_of_the_amount_keys(inputs, matches):
    assert ("high_value_operation" in risk_assess(action_type="FINANCIAL.PAYMENT_TRANSFER", inputs=inputs).matched_rules) is matches


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        ({"Count": 10}, "Count is 10"),
        ({"BATCH_SIZE": 500}, "BATCH_SIZE is 500"),
        ({"Bulk": True}, "Bulk is true"),
        ({"job": {"count": 25}}, "job.count is 25"),
        ({"job": {"BULK": True}}, "job.BULK is true"),
    ],
)
def test_bulk_keys_count_in_any_case_and_one_level_down(inputs, reason):
    result = risk_assess(action_type="DEAL.GET_DETAILS", inputs=inputs)
    assert result.score == 0.3
    assert f"Bulk operation: {reason} (+0.20)" in result.reasons


def test_financial_keys_count_one_level_down():
    result = risk_assess(action_type="ANALYSIS.VALUATION", inputs={"payment": {"IBAN": "DE00"}})
    assert result.score == 0.55  # counted once
    nested = risk_assess(action_type="ANALYSIS.VALUATION", inputs={"wire": {"Account_Number": "123"}})
    assert "Financial data: inputs include wire.Account_Number (+0.15)" in nested.reasons
    deeper = risk_assess(action_type="ANALYSIS.VALUATION", inputs={"a": {"b": {"iban": "DE00"}}})
    assert deeper.score == 0.4  # two levels down does not count, as for bulk


# --- the verb list ----------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["RE-SEND", "SEND_EMAIL", "DEAL.SEND", "TWO WORDS"])
def test_a_write_verb_is_one_word(verb):
    from django.core.exceptions import ValidationError

    from risk.models import validate_verbs

    with pytest.raises(ValidationError, match="one word of letters and digits"):
        validate_verbs(["SEND", verb])
    validate_verbs(["send", "Freeze", "V2"])


def test_a_verb_stored_as_several_words_counts_as_each_of_them():
    RiskSettings.objects.update_or_create(pk=1, defaults={"write_verbs": ["RE-SEND"]})
    rulebook_changed()
    assert risk_assess(action_type="DEAL.GET_RE_NOTES").requires_approval
    assert risk_assess(action_type="DEAL.GET_NOTES").level == "low"


def test_a_recipient_nested_deeper_than_the_interpreters_stack_still_counts():
    inputs = {"to": "x@evil.example"}
    for _ in range(5000):
        inputs = {"wrapper": inputs}
    result = risk_assess(action_type="COMMUNICATION.DRAFT_EMAIL", inputs=inputs)
    assert result.score == 0.5
    [external] = [reason for reason in result.reasons if reason.startswith("External communication")]
    assert external.startswith("External communication: …") and len(external) < 150  # the path's end, readable
    assert external.endswith("wrapper.wrapper.to includes x@evil.example (+0.10)")


@pytest.mark.parametrize(
    "address",
    ['"a b"@evil.com', "a@bücher.example", "a@[203.0.113.5]", "a(c)@evil.com", "a＠evil.com", "a\u200b@evil.com",
     "a@zakops.com.evil.com", "Ann <ann@evil.com> (sales)", "x@"],
)
def test_an_address_too_odd_to_parse_is_still_external(address):
    RiskSettings.objects.update_or_create(pk=1, defaults={"internal_domains": ["zakops.com"]})
    rulebook_changed()
    result = risk_assess(action_type="ANALYSIS.VALUATION", inputs={"to": address})
    assert any(reason.startswith("External communication: to includes") for reason in result.reasons), result.reasons
    internal = risk_assess(action_type="ANALYSIS.VALUATION", inputs={"to": "Ann <ann@zakops.com>, bob@deals.zakops.com."})
    assert not any(reason.startswith("External communication") for reason in internal.reasons), internal.reasons


@pytest.mark.parametrize("key", ["ｔｏ", "to ", " CC", "Recipients", "e\u200bmail"])
def test_a_recipient_key_written_oddly_still_counts(key):
    result = risk_assess(action_type="ANALYSIS.VALUATION", inputs={key: "x@evil.example"})
    assert any(reason.startswith("External communication:") for reason in result.reasons), result.reasons
