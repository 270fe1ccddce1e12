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
    "APPROVE", "REJECT", "CANCEL", "DROP", "INSERT", "DESTROY", "ENABLE", "DISABLE", "TRIGGER", "DEPLOY", "LAUNCH",
]
# A write verb counts inside a word too (SENDMAIL, RESEND, ENRICHTHENWIRE), so some nouns
# hold one (ASSETS holds SET). These whole words are not writes; admins edit the list.
DEFAULT_NOT_WRITE_WORDS = [
    "ASSET", "ASSETS", "DATASET", "DATASETS", "SETTING", "SETTINGS", "OFFSET", "CREDIT", "CREDITS", "DESIGN",
    "DESIGNS", "SIGNAL", "SIGNALS", "SIGNATORY", "SIGNATORIES", "SIGNATURE", "SIGNATURES", "SHAREHOLDER",
    "SHAREHOLDERS", "UNDERWRITER", "UNDERWRITERS", "DISCLOSURE", "DISCLOSURES", "SENDER", "SENDERS", "PAYMENT",
    "PAYMENTS", "PAYEE", "PAYEES", "PAYLOAD", "EMERGENCY", "POSTAL", "MOVEMENT", "MOVEMENTS",
]
# Verbs that only read: what a rule that lowers risk is meant for.
READ_VERBS = frozenset({"GET", "LIST", "READ", "FETCH", "SEARCH", "VIEW", "SHOW", "FIND", "COUNT", "QUERY", "LOOKUP", "DESCRIBE"})
# Words that join actions (SPEC §2): GET_AND_WIRE is two actions, so it is not a GET. Fixed, not edited in admin.
# Whole words only (camelCase and digits split words): OR is inside REPORT, AND inside STANDARD.
JOINING_WORDS = ("AND", "OR", "THEN", "PLUS", "ALSO", "WITH", "AFTER", "BEFORE")
_JOINING = frozenset(JOINING_WORDS)

# A word is a run of letters or digits; `_`, `-`, space, `/`, `:` and any other character
# split words, and so do a lower-case letter followed by a capital (filesThenSend) and the
# edge between letters and digits (GET2SEND).
_WORD = re.compile(r"[^\W_]+")
_INNER_EDGE = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])|(?<=[a-z])(?=[A-Z])")
# What a read's action type may be made of. Anything else (accents, look-alike letters,
# invisible characters) could hide a write verb from the word split, so such a type always
# needs a person.
_PLAIN = re.compile(r"[A-Za-z0-9._\-/: ]*")
# Drawn as nothing (zero-width characters, soft hyphen, BOM) or over the letter before
# (combining marks): dropped before words are read, so S\u200bEND reads SEND.
_UNSEEN = frozenset(("Cf", "Mn", "Me"))


def seen_text(text: str) -> str:
    """`text` as a reader sees it: NFKC (full-width and ligature letters read as the plain
    letters they look like: ＷＩＲＥ is WIRE), without characters drawn as nothing."""
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text
    return "".join(char for char in text if unicodedata.category(char) not in _UNSEEN)


def type_words(text: str) -> tuple:
    """The words of `text`, upper case."""
    return tuple(_WORD.findall(_INNER_EDGE.sub(" ", seen_text(text)).upper()))


@dataclass(frozen=True, slots=True)
class VerbPhrase:
    """What the write-verb floor reads in an action type, for a given list of write verbs."""

    action_type: str
    verb: str  # the first word after the last dot; "" when there is none
    write_verbs: tuple  # "SEND", or "SEND in SENDMAIL" for one inside a word, in order, once each
    joining_words: tuple  # joining words, in order, once each
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


def _writes_in(word: str, write_verbs, not_writes) -> list[str]:
    if word in write_verbs:
        return [word]
    if word in not_writes:
        return []
    return [f"{verb} in {word}" for verb in write_verbs if verb in word]


def verb_phrase(action_type: str, write_verbs, not_writes=frozenset()) -> VerbPhrase:
    """Read `NAMESPACE.VERB_OBJECT`. The verb is the first word after the last dot. Write
    verbs and joining words count anywhere in the type, the namespace too (WIRE_FUNDS.GET
    is a write); a write verb counts inside a word as well (SENDMAIL, RESEND), unless the
    whole word is one of `not_writes` (ASSETS)."""
    verb_words = type_words(action_type.rsplit(".", 1)[-1])
    writes, joins = [], []
    for word in type_words(action_type):
        writes += _writes_in(word, write_verbs, not_writes)
        if word in _JOINING:
            joins.append(word)
    return VerbPhrase(
        action_type=action_type,
        verb=verb_words[0] if verb_words else "",
        write_verbs=tuple(dict.fromkeys(writes)),
        joining_words=tuple(dict.fromkeys(joins)),
        plain=_PLAIN.fullmatch(action_type) is not None,
    )


def default_write_verbs():
    return list(DEFAULT_WRITE_VERBS)


def default_not_write_words():
    return list(DEFAULT_NOT_WRITE_WORDS)


_ONE_WORD = re.compile(r"[A-Za-z0-9]+")


def _validate_words(value, *, example: str, what: str):
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValidationError(f"Give a list of {what}s such as {example}, one per line.")
    bad = [item for item in value if not _ONE_WORD.fullmatch(item.strip())]
    if bad:
        raise ValidationError(f"{bad[0]!r} is not a {what}: a {what} is one word of letters and digits.")


def validate_verbs(value):
    """Write verbs count wherever they stand in an action type, inside a longer word too."""
    _validate_words(value, example="SEND", what="verb")


def validate_not_write_words(value):
    _validate_words(value, example="ASSETS", what="word")


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
        "BEFORE) anywhere in it, or with characters other than ASCII letters, digits and separators, is never "
        "assessed below medium, and always needs approval, whatever rules match; and only a read (GET_…, LIST_…) "
        "is ever assessed low.",
    )
    write_verbs = models.JSONField(
        default=default_write_verbs, blank=True, validators=[validate_verbs],
        help_text="The write verbs: they count anywhere in the action type, inside a longer word too (SEND in "
        "COMMUNICATION.SEND_EMAIL, DEAL.GET_AND_SEND_NOTES and DEAL.RESENDMAIL). Case-insensitive.",
    )
    not_write_words = models.JSONField(
        "words that are not writes", default=default_not_write_words, blank=True, validators=[validate_not_write_words],
        help_text="Whole words that hold a write verb but do not write (ASSETS holds SET, PAYMENTS holds PAY): "
        "in an action type they do not count as a write. Case-insensitive.",
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

