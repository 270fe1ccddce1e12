"""Risk rules and the one row of risk settings, both edited by admins (SPEC §2)."""

import re
import unicodedata
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from risk.patterns import PatternError, glob_compile, regex_compile
from zakops.models import RiskLevel

SEVERITY = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2, RiskLevel.CRITICAL: 3}


def validate_action_types(value):
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValidationError("Give a list of action types, one per line.")
    too_long = [item for item in value if len(item) > 100]
    if too_long:
        raise ValidationError(f"{too_long[0][:40]!r}…: action types have at most 100 characters.")


def validate_type_patterns(value):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Give a list of glob patterns, one per line.")
    for pattern in value:
        try:
            glob_compile(pattern)
        except PatternError as exc:
            raise ValidationError(f"{pattern!r}: {exc}") from None


def validate_input_patterns(value):
    if not isinstance(value, dict):
        raise ValidationError('Give a JSON object of input key to pattern, e.g. {"to": "@competitor\\.com$"}.')
    for key, pattern in value.items():
        if not key.strip():
            raise ValidationError("Input keys can not be empty.")
        try:
            regex_compile(pattern)
        except PatternError as exc:
            raise ValidationError(f"Pattern for {key!r} is refused: {exc}") from None


def validate_domains(value):
    if not isinstance(value, list) or not all(isinstance(item, str) and "." in item for item in value):
        raise ValidationError("Give a list of domains such as zakops.com, one per line.")


# Verbs of actions that change something (SPEC §2's write-verb floor); admins add more.
DEFAULT_WRITE_VERBS = [
    "SEND", "DELETE", "UPDATE", "CREATE", "TRANSFER", "PAY", "REMOVE", "MOVE", "SIGN", "WRITE", "EDIT", "SET",
    "MODIFY", "SUBMIT", "PUBLISH", "POST", "UPLOAD", "SHARE", "GRANT", "REVOKE", "CLOSE", "MERGE", "ARCHIVE",
    "PURGE", "EXECUTE", "WIRE", "REFUND", "INVITE", "ASSIGN", "REPLACE", "EXPORT",
]
# Verbs that only read: what a rule that lowers risk is meant for.
READ_VERBS = frozenset({"GET", "LIST", "READ", "FETCH", "SEARCH", "VIEW", "SHOW", "FIND", "COUNT", "QUERY", "LOOKUP", "DESCRIBE"})
# Words that join actions (SPEC §2): GET_AND_WIRE is two actions, so it is not a GET. Fixed, not edited in admin.
JOINING_WORDS = ("AND", "OR", "THEN", "PLUS", "ALSO", "WITH", "AFTER", "BEFORE")
_JOINING = frozenset(JOINING_WORDS)

# A word is a run of letters or digits; `_`, `-`, space, `/`, `:` and any other character split words.
_WORD = re.compile(r"[^\W_]+")
# What a read's action type may be made of. Anything else (accents, look-alike letters,
# invisible characters) could hide a write verb from the word split, so it is never a read.
_PLAIN = re.compile(r"[A-Za-z0-9._\-/: ]*")


def type_words(text: str) -> tuple:
    """The words of `text`, upper case. NFKC first, so full-width or ligature letters
    read as the plain word they look like (ＷＩＲＥ is WIRE)."""
    return tuple(_WORD.findall(unicodedata.normalize("NFKC", text).upper()))


@dataclass(frozen=True, slots=True)
class VerbPhrase:
    """What the write-verb floor reads in an action type, for a given list of write verbs."""

    action_type: str
    verb: str  # the first word after the last dot; "" when there is none
    write_verbs: tuple  # write verbs found after the first dot, in order, once each
    joining_words: tuple  # joining words found after the first dot, in order, once each
    plain: bool  # only ASCII letters, digits and separators

    @property
    def is_read(self) -> bool:
        """A read: its verb is a read verb, and no write verb or joining word is anywhere in it."""
        return self.plain and self.verb in READ_VERBS and not self.write_verbs and not self.joining_words

    @property
    def not_read_because(self) -> str:
        """Why a phrase with no write verb and no joining word is not a read ("" for a read)."""
        if not self.plain:
            return "it has characters other than ASCII letters, digits and separators"
        if not self.verb:
            return "it has no verb"
        if self.verb not in READ_VERBS:
            return f"{self.verb} is not a read verb"
        return ""


def verb_phrase(action_type: str, write_verbs) -> VerbPhrase:
    """Read `NAMESPACE.VERB_OBJECT`. The verb is the first word after the last dot; write
    verbs and joining words count in every segment after the FIRST dot (so the write in
    FINANCE.WIRE_FUNDS.GET is seen), or in the whole type when it has no dot."""
    after_first_dot = action_type.split(".", 1)[-1]
    words = type_words(after_first_dot)
    verb_words = type_words(action_type.rsplit(".", 1)[-1])
    return VerbPhrase(
        action_type=action_type,
        verb=verb_words[0] if verb_words else "",
        write_verbs=tuple(dict.fromkeys(word for word in words if word in write_verbs)),
        joining_words=tuple(dict.fromkeys(word for word in words if word in _JOINING)),
        plain=_PLAIN.fullmatch(action_type) is not None,
    )


def default_write_verbs():
    return list(DEFAULT_WRITE_VERBS)


def validate_verbs(value):
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValidationError("Give a list of verbs such as SEND, one per line.")
    bad = [item for item in value if len(type_words(item)) != 1 or type_words(item)[0] != item.strip().upper()]
    if bad:
        raise ValidationError(
            f"{bad[0]!r} is not a verb: a verb is one word of letters and digits, which counts wherever it stands "
            "after the first dot of an action type."
        )


def _unit_interval():
    return [MinValueValidator(0.0), MaxValueValidator(1.0)]


class RiskRule(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(
        max_length=500, blank=True, help_text="Shown to reviewers: 'Matched rule NAME: DESCRIPTION'."
    )
    risk_level = models.CharField(max_length=20, choices=RiskLevel.choices)
    requires_approval = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
    action_types = models.JSONField(
        default=list, blank=True, validators=[validate_action_types], help_text="Exact action types, case-insensitive."
    )
    action_type_patterns = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_type_patterns],
        help_text="Glob patterns, case-insensitive: * any run of characters, ? one. "
        "With no types and no patterns the rule matches every type.",
    )
    input_patterns = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_input_patterns],
        help_text="Input key → regular expression its value must contain (RE2 syntax; anchor with ^ and $). "
        "A key the inputs do not have does not fail the rule.",
    )
    min_amount = models.DecimalField(
        max_digits=20,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Matches only when the first of amount, value, total in the inputs is at least this. "
        "An absent or non-numeric amount does not fail the rule.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class RiskSettings(models.Model):
    """The single row of tunable numbers. Its defaults are SPEC §2's."""

    SINGLETON_ID = 1

    default_risk_level = models.CharField(
        max_length=20,
        choices=RiskLevel.choices,
        blank=True,
        help_text="Level when no rule matches. Blank: ZAKOPS_HITL_DEFAULT_RISK_LEVEL.",
    )
    default_requires_approval = models.BooleanField(
        null=True, blank=True, help_text="Approval when no rule matches. Unknown: ZAKOPS_HITL_DEFAULT_REQUIRES_APPROVAL."
    )
    auto_approve_low_risk = models.BooleanField(
        null=True, blank=True, help_text="A final low level never needs approval. Unknown: ZAKOPS_HITL_AUTO_APPROVE_LOW_RISK."
    )
    base_low = models.FloatField(default=0.10, validators=_unit_interval())
    base_medium = models.FloatField(default=0.40, validators=_unit_interval())
    base_high = models.FloatField(default=0.70, validators=_unit_interval())
    base_critical = models.FloatField(default=0.90, validators=_unit_interval())
    bulk_weight = models.FloatField(default=0.20, validators=_unit_interval())
    financial_weight = models.FloatField(default=0.15, validators=_unit_interval())
    external_weight = models.FloatField(default=0.10, validators=_unit_interval())
    threshold_critical = models.FloatField(default=0.90, validators=_unit_interval())
    threshold_high = models.FloatField(default=0.60, validators=_unit_interval())
    threshold_medium = models.FloatField(default=0.30, validators=_unit_interval())
    bulk_threshold = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)])
    internal_domains = models.JSONField(
        default=list, blank=True, validators=[validate_domains], help_text="E-mail domains that are not external (their subdomains neither)."
    )
    write_verb_floor = models.BooleanField(
        default=True,
        help_text="An action type with a write verb or a joining word (AND, OR, THEN, PLUS, ALSO, WITH, AFTER, "
        "BEFORE) anywhere after its first dot is never assessed below medium, and always needs approval, whatever "
        "rules match; and only a read (GET_…, LIST_…) is ever assessed low.",
    )
    write_verbs = models.JSONField(
        default=default_write_verbs, blank=True, validators=[validate_verbs],
        help_text="The write verbs: words that count wherever they stand after the first dot of the action type, "
        "between _, -, spaces or other separators (SEND in COMMUNICATION.SEND_EMAIL and in "
        "DEAL.GET_AND_SEND_NOTES). Case-insensitive.",
    )
    timeout_critical_hours = models.PositiveIntegerField(default=4, validators=[MinValueValidator(1)])
    timeout_high_hours = models.PositiveIntegerField(default=8, validators=[MinValueValidator(1)])
    timeout_other_hours = models.PositiveIntegerField(
        default=24, validators=[MinValueValidator(1)], help_text="Approval timeout for medium and low."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "risk settings"
        verbose_name_plural = "risk settings"

    def __str__(self):
        return "Risk settings"

    def clean(self):
        if not self.threshold_medium <= self.threshold_high <= self.threshold_critical:
            raise ValidationError("Thresholds must rise: medium ≤ high ≤ critical.")
        if not self.base_low <= self.base_medium <= self.base_high <= self.base_critical:
            raise ValidationError("Bases must rise: low ≤ medium ≤ high ≤ critical.")

