"""The enabled rules and the risk settings, compiled once and cached per process.

An edit reaches every process on its next assessment, with no database query per
assessment while nothing changed: `rulebook_changed()` drops this process's copy at
once, and `common.changes` tells the other processes (on PostgreSQL through
triggers and NOTIFY, whoever made the edit).
"""

import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings

from common.changes import feed
from risk.models import SEVERITY, RiskRule, RiskSettings, VerbPhrase, type_words, verb_phrase
from risk.patterns import PatternError, glob_compile, regex_compile

logger = logging.getLogger(__name__)

AMOUNT_KEYS = ("amount", "value", "total")
_TYPE_MEMO_LIMIT = 10_000


def input_text(value) -> str:
    """The text an input pattern is matched against."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def inputs_by_key(inputs: dict) -> dict:
    """The top-level input values under each key in lower case: {"to": [value of "To", value of "to"]}.
    Keys match in any letter case, and every spelling present is kept, so a second
    spelling of a key can not hide the first."""
    folded: dict = {}
    for key, value in inputs.items():
        if isinstance(key, str):
            folded.setdefault(key.lower(), []).append(value)
    return folded


def _number(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def first_amount(folded: dict) -> tuple[str, Decimal | None] | None:
    """(key, number) for the first of amount/value/total present in any letter case
    (`folded` is inputs_by_key's); number None when not numeric. When spellings
    disagree, the largest number counts, and a non-numeric one makes it None: either
    way a rule with a minimum amount is the more likely to match (fail closed)."""
    for key in AMOUNT_KEYS:
        values = folded.get(key)
        if values:
            numbers = [_number(value) for value in values]
            return key, None if None in numbers else max(numbers)
    return None


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    description: str
    level: str
    severity: int
    requires_approval: bool
    exact_types: frozenset
    type_patterns: tuple
    input_patterns: tuple  # ((key, compiled RE2 pattern), ...)
    min_amount: Decimal | None
    reason: str  # "Matched rule NAME: DESCRIPTION"
    checks_inputs: bool
    # Whether matching this rule can lower an assessment: rated low, or medium without
    # approval (high and critical need approval whatever the rule says).
    can_lower: bool

    def matches_type(self, action_type_lower: str) -> bool:
        if not self.exact_types and not self.type_patterns:
            return True
        return action_type_lower in self.exact_types or any(p.fullmatch(action_type_lower) for p in self.type_patterns)

    def matches_inputs(self, inputs: dict, folded: dict | None = None) -> bool:
        """Input patterns and min_amount; `folded` is inputs_by_key(inputs), when the caller has it.
        A key may be present in several letter cases: for a rule that lowers risk every
        spelling must match, for one that raises risk any spelling will do, so two
        spellings never dodge a rule in the direction that matters."""
        if folded is None:
            folded = inputs_by_key(inputs)
        for key, pattern in self.input_patterns:
            values = folded.get(key)
            if values:
                matched = (pattern.search(input_text(value)) is not None for value in values)
                if not (all(matched) if self.can_lower else any(matched)):
                    return False
        if self.min_amount is not None:
            found = first_amount(folded)
            if found is not None and found[1] is not None and found[1] < self.min_amount:
                return False
        return True


def rule_compile(rule: RiskRule, *, strict: bool = True) -> CompiledRule:
    """Compile a rule. With strict=False, a stored pattern that no longer compiles is
    dropped with an error in the log: the rule then matches more, never less."""

    def each(patterns, compile_one):
        compiled = []
        for pattern in patterns:
            try:
                compiled.append(compile_one(pattern))
            except PatternError:
                if strict:
                    raise
                logger.error("risk rule %s: pattern %r ignored, it does not compile", rule.name, pattern)
        return compiled

    input_patterns = []
    for key, pattern in (rule.input_patterns or {}).items():
        input_patterns.extend((key.lower(), p) for p in each([pattern], regex_compile))
    return CompiledRule(
        name=rule.name,
        description=rule.description,
        level=rule.risk_level,
        severity=SEVERITY[rule.risk_level],
        requires_approval=rule.requires_approval,
        exact_types=frozenset(t.strip().lower() for t in rule.action_types or () if t.strip()),
        type_patterns=tuple(each(rule.action_type_patterns or (), glob_compile)),
        input_patterns=tuple(input_patterns),
        min_amount=rule.min_amount,
        reason=(
            f"Matched rule {rule.name}: {rule.description}"
            if rule.description
            else f"Matched rule {rule.name} ({rule.risk_level})"
        ),
        checks_inputs=bool(input_patterns) or rule.min_amount is not None,
        can_lower=rule.risk_level == "low" or (rule.risk_level == "medium" and not rule.requires_approval),
    )


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """The settings row, with the environment's defaults filled in where it leaves them blank."""

    default_level: str
    default_requires_approval: bool
    auto_approve_low: bool
    bases: dict
    bulk_weight: float
    financial_weight: float
    external_weight: float
    threshold_critical: float
    threshold_high: float
    threshold_medium: float
    bulk_threshold: int
    internal_domains: tuple
    timeout_hours: dict
    write_verb_floor: bool = True
    write_verbs: frozenset = frozenset()
    not_write_words: frozenset = frozenset()

    @classmethod
    def from_settings(cls, row: RiskSettings) -> "RiskConfig":
        return cls(
            default_level=row.default_risk_level or settings.ZAKOPS_HITL_DEFAULT_RISK_LEVEL,
            default_requires_approval=(
                settings.ZAKOPS_HITL_DEFAULT_REQUIRES_APPROVAL
                if row.default_requires_approval is None
                else row.default_requires_approval
            ),
            auto_approve_low=(
                settings.ZAKOPS_HITL_AUTO_APPROVE_LOW_RISK if row.auto_approve_low_risk is None else row.auto_approve_low_risk
            ),
            bases={"low": row.base_low, "medium": row.base_medium, "high": row.base_high, "critical": row.base_critical},
            bulk_weight=row.bulk_weight,
            financial_weight=row.financial_weight,
            external_weight=row.external_weight,
            threshold_critical=row.threshold_critical,
            threshold_high=row.threshold_high,
            threshold_medium=row.threshold_medium,
            bulk_threshold=row.bulk_threshold,
            internal_domains=tuple(d.strip().lower().lstrip("@") for d in row.internal_domains or () if d.strip()),
            write_verb_floor=row.write_verb_floor,
            # Words as an action type's are read; a verb stored before verbs were single
            # words (RE-SEND) counts as each of its words, which can only ask for more approvals.
            write_verbs=frozenset(word for verb in row.write_verbs or () for word in type_words(verb)),
            not_write_words=frozenset(word.strip().upper() for word in row.not_write_words or () if word.strip()),
            timeout_hours={
                "critical": row.timeout_critical_hours,
                "high": row.timeout_high_hours,
                "medium": row.timeout_other_hours,
                "low": row.timeout_other_hours,
            },
        )


@dataclass(slots=True)
class RuleBook:
    rules: tuple  # most severe first, then by name
    config: RiskConfig
    _by_type: dict = field(default_factory=dict)
    _phrases: dict = field(default_factory=dict)

    def candidates(self, action_type: str) -> tuple:
        """The rules whose types or patterns match; memoised, as action types are few."""
        key = action_type.lower()
        found = self._by_type.get(key)
        if found is None:
            found = tuple(rule for rule in self.rules if rule.matches_type(key))
            if len(self._by_type) < _TYPE_MEMO_LIMIT:
                self._by_type[key] = found
        return found

    def phrase(self, action_type: str) -> VerbPhrase:
        """The action type's verb phrase, read with this book's write verbs; memoised."""
        found = self._phrases.get(action_type)
        if found is None:
            found = verb_phrase(action_type, self.config.write_verbs, self.config.not_write_words)
            if len(self._phrases) < _TYPE_MEMO_LIMIT:
                self._phrases[action_type] = found
        return found


def settings_row() -> RiskSettings:
    """The settings row; an unsaved one with SPEC's defaults if it was never created."""
    return RiskSettings.objects.filter(pk=RiskSettings.SINGLETON_ID).first() or RiskSettings(pk=RiskSettings.SINGLETON_ID)


def rulebook_load() -> RuleBook:
    compiled = [rule_compile(rule, strict=False) for rule in RiskRule.objects.filter(enabled=True)]
    compiled.sort(key=lambda r: (-r.severity, r.name))
    return RuleBook(rules=tuple(compiled), config=RiskConfig.from_settings(settings_row()))


# --- the cache ---------------------------------------------------------------------

CHANNEL = "hitl_risk_rules"  # NOTIFY channel of the triggers in risk migration 0003
_changes = feed.subscribe(CHANNEL)
_book: RuleBook | None = None


def rulebook_current() -> RuleBook:
    """The compiled rule book; reloaded only when rules or settings changed."""
    global _book
    if _changes.changed() or _book is None:
        try:
            _book = rulebook_load()
        except Exception:
            _changes.missed()
            raise
    return _book


def rulebook_forget() -> None:
    global _book
    _book = None


def rulebook_changed() -> None:
    """Call after writing rules or settings: this process now, every process on commit."""
    rulebook_forget()
    feed.announce(CHANNEL)
