"""Risk assessment (SPEC §2): the matched rules' level, the score with its modifiers,
and whether a person must approve. Every reason is a sentence a reviewer can act on."""

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from risk.models import SEVERITY, VerbPhrase, seen_text
from risk.rulebook import RiskConfig, inputs_by_key, rulebook_current

LEVELS = ("low", "medium", "high", "critical")
FINANCIAL_KEYS = ("amount", "value", "total", "price", "payment", "iban", "account_number", "routing_number", "swift")
_FINANCIAL = frozenset(FINANCIAL_KEYS)
RECIPIENT_KEYS = ("to", "cc", "bcc", "recipient", "recipients", "email")
_RECIPIENT = frozenset(RECIPIENT_KEYS)
BULK_COUNT_KEYS = ("count", "batch_size")
_BULK_COUNT = frozenset(BULK_COUNT_KEYS)
# Around an @ in free text such as "Ann <ann@x.com>, bob@y.org": the local part before it
# and the domain after it, each up to what ends an address.
_LOCAL_PART = re.compile(r"[^\s,;<>()\[\]\"'`:]*$")
_DOMAIN = re.compile(r"\[[^\]]*\]?|[^\s,;<>()\[\]\"'`]*")


@dataclass(slots=True)
class RiskAssessment:
    level: str
    score: float
    requires_approval: bool
    requires_quarantine: bool
    reasons: list = field(default_factory=list)
    recommendations: list = field(default_factory=list)
    matched_rules: list = field(default_factory=list)
    # How the score adds up: the base of the rule level, then each modifier, as
    # {"label": ..., "points": ...}; the score is their sum, capped at 1.0 (and raised
    # where a floor or a closed deal says so, which a last entry explains).
    breakdown: list = field(default_factory=list)


def _bulk_in(entries: dict, threshold: int, prefix: str) -> str | None:
    for key, value in entries.items():
        if isinstance(value, list):
            if len(value) >= threshold:
                return f"{prefix}{key} has {len(value)} items"
        elif value is True:
            if key.lower() == "bulk":
                return f"{prefix}{key} is true"
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if value >= threshold and key.lower() in _BULK_COUNT:
                return f"{prefix}{key} is {value:g}"
    return None


def _bulk(inputs: dict, threshold: int) -> str | None:
    """Why the inputs are a bulk operation, or None: a long list, `count`/`batch_size` at
    the threshold, or `bulk` true; keys in any letter case, at the top level or one level down."""
    found = _bulk_in(inputs, threshold, "")
    if found:
        return found
    for outer, value in inputs.items():
        if isinstance(value, dict):
            found = _bulk_in(value, threshold, f"{outer}.")
            if found:
                return found
    return None


def _financial(inputs: dict) -> str | None:
    """The first financial key, in any letter case, at the top level or one level down."""
    for key in inputs:
        if key.lower() in _FINANCIAL:
            return key
    for outer, value in inputs.items():
        if isinstance(value, dict):
            for key in value:
                if key.lower() in _FINANCIAL:
                    return f"{outer}.{key}"
    return None


def _addresses(value: str, internal_domains: tuple) -> str | None:
    """The first address in a string outside the internal domains; subdomains of an
    internal domain are internal too. Read as a person sees it (full-width ＠, invisible
    characters dropped), and every @ counts: an address too odd to parse (`"a b"@x.com`,
    `a@[203.0.113.5]`, `a@bücher.example`) is external unless its domain is internal."""
    if "@" not in value:
        if value.isascii():
            return None
        value = seen_text(value)
        if "@" not in value:
            return None
    elif not value.isascii():
        value = seen_text(value)
    at = value.find("@")
    while at != -1:
        local = _LOCAL_PART.search(value, 0, at).group()
        domain = _DOMAIN.match(value, at + 1).group().rstrip(".").lower()
        internal = internal_domains and domain and not domain.startswith("[") and any(
            domain == d or domain.endswith("." + d) for d in internal_domains
        )
        if not internal:
            return f"{local}@{domain}"
        at = value.find("@", at + 1)
    return None


def _is_recipient_key(key: str) -> bool:
    """`to`, `CC`, `Recipients`…; also written full-width or with spaces around it."""
    return key.lower() in _RECIPIENT or (not key.isascii() or key != key.strip()) and seen_text(key).strip().lower() in _RECIPIENT


def _shortened(path: str) -> str:
    """A path short enough for a reason line: its end, where the recipient key is."""
    return path if len(path) <= 80 else "…" + path[-79:]


def _external(inputs: dict, internal_domains: tuple) -> str | None:
    """Where the inputs name an external recipient: a recipient key in any letter case, at
    any depth, holding text, or lists and objects holding text. Walked breadth first with
    a queue, not recursion, so no nesting can exhaust the interpreter's stack; the top
    level, often all there is, is read without one."""
    # (value, its path, the path of the recipient key it sits under or None): only text
    # under a recipient key is read; elsewhere only objects and lists are walked into.
    queue = None
    for key, value in inputs.items():
        if _is_recipient_key(key):
            if isinstance(value, str):
                address = _addresses(value, internal_domains)
                if address:
                    return f"{_shortened(key)} includes {address}"
                continue
            item = (value, key, key)
        elif isinstance(value, (dict, list)):
            item = (value, key, None)
        else:
            continue
        if queue is None:
            queue = deque()
        queue.append(item)
    while queue:
        value, path, under = queue.popleft()
        if isinstance(value, str):
            address = _addresses(value, internal_domains)
            if address:
                return f"{_shortened(under)} includes {address}"
        elif isinstance(value, dict):
            for key, inner in value.items():
                if under is not None:
                    if isinstance(inner, (str, dict, list)):
                        queue.append((inner, "", under))
                elif _is_recipient_key(key):
                    queue.append((inner, f"{path}.{key}", f"{path}.{key}"))
                elif isinstance(inner, (dict, list)):
                    queue.append((inner, f"{path}.{key}", None))
        elif isinstance(value, list):
            for i, inner in enumerate(value):
                if under is not None:
                    if isinstance(inner, (str, dict, list)):
                        queue.append((inner, "", under))
                elif isinstance(inner, (dict, list)):
                    queue.append((inner, f"{path}[{i}]", None))
    return None


def _level_for(score: float, config: RiskConfig) -> str:
    if score >= config.threshold_critical:
        return "critical"
    if score >= config.threshold_high:
        return "high"
    if score >= config.threshold_medium:
        return "medium"
    return "low"


def _floor(phrase: VerbPhrase, level, score, requires_approval, config: RiskConfig, reasons, breakdown):
    """The write-verb floor (SPEC §2), over whatever the rules said. The policy:
    (a) a type with a write verb or a joining word anywhere in it, or with characters other
        than ASCII letters, digits and separators (which could hide one), is at least
        medium, and a person approves;
    (b) only a read is ever rated low: anything else that would come out low (from a rule
        rated low, or from the default level) is raised to medium, and a person approves;
    (c) otherwise the rules stand: a medium rule without approval still rates a plain
        non-read such as DEAL.ENRICH_MATERIALS.
    Returns the new (level, score, requires_approval)."""
    if phrase.write_verbs or phrase.joining_words or not phrase.plain:
        notes = []
        if not phrase.plain:
            notes.append(
                f"Unusual characters: {phrase.action_type!r} has characters other than ASCII letters, digits and "
                "separators, which could hide a write; never below medium, and a person approves (write-verb floor)"
            )
        if phrase.joining_words:
            notes.append(
                f"Compound action ({', '.join(phrase.joining_words)}): {phrase.action_type} is several actions in one, "
                "not a read; never below medium, and a person approves (write-verb floor)"
            )
        if phrase.write_verbs:
            verbs = ", ".join(phrase.write_verbs)
            notes.append(
                f"Write verb{'s' if len(phrase.write_verbs) > 1 else ''} {verbs}: never below medium, "
                "and a person approves (write-verb floor)"
            )
        label = notes[0].split(":", 1)[0]
    elif level == "low" and not phrase.is_read:
        notes = [
            f"{phrase.action_type} is not a read ({phrase.not_read_because}): a rule that lowers risk only lowers "
            "reads; medium, and a person approves"
        ]
        label = f"{phrase.action_type} is not a read"
    else:
        return level, score, requires_approval
    if SEVERITY[level] < SEVERITY["medium"]:
        raised = max(score, config.bases["medium"])
        if raised > score:
            breakdown.append({"label": f"{label}: raised to the medium base", "points": round(raised - score, 6)})
        level, score = "medium", raised
    reasons.extend(notes)
    return level, score, True


@dataclass(frozen=True, slots=True)
class Modifier:
    """A score modifier (SPEC §2): what it finds in the inputs, the settings field holding
    its weight, the reason line (`{}` is what was found) and the recommendation it adds."""

    finds: Callable[[dict, RiskConfig], str | None]
    weight: str
    says: str
    recommends: str


MODIFIERS = (
    Modifier(
        lambda inputs, config: _bulk(inputs, config.bulk_threshold), "bulk_weight", "Bulk operation: {}",
        "Check a sample of the items before approving a bulk operation.",
    ),
    Modifier(
        lambda inputs, config: _financial(inputs), "financial_weight", "Financial data: inputs include {}",
        "Verify amounts and account details against the deal documents.",
    ),
    Modifier(
        lambda inputs, config: _external(inputs, config.internal_domains), "external_weight",
        "External communication: {}", "Confirm every external recipient is expected for this deal.",
    ),
)


def _matched_rules(book, action_type: str, inputs: dict) -> list:
    matched = []
    folded = None  # inputs_by_key(inputs), once, if a rule reads the inputs
    for rule in book.candidates(action_type):
        if rule.checks_inputs:
            if folded is None:
                folded = inputs_by_key(inputs)
            if not rule.matches_inputs(inputs, folded):
                continue
        matched.append(rule)
    return matched


def _rule_outcome(matched: list, config: RiskConfig, reasons: list) -> tuple[str, bool]:
    """The rule level and approval: the most severe matched rule's level and whether any
    matched rule requires approval; with no match, the defaults."""
    if matched:
        reasons.extend(rule.reason for rule in matched)
        return matched[0].level, any(rule.requires_approval for rule in matched)  # held most severe first
    level, approval = config.default_level, config.default_requires_approval
    reasons.append(f"No rule matched: default level {level}, approval {'required' if approval else 'not required'}")
    return level, approval


def _score(rule_level: str, inputs: dict, config: RiskConfig, result: RiskAssessment) -> float:
    """The base of the rule level plus each modifier found, capped at 1.0."""
    score = config.bases[rule_level]
    result.breakdown.append({"label": f"Base for level {rule_level}", "points": score})
    for modifier in MODIFIERS:
        found = modifier.finds(inputs, config)
        if found:
            weight = getattr(config, modifier.weight)
            score += weight
            said = modifier.says.format(found)
            result.reasons.append(f"{said} (+{weight:.2f})")
            result.breakdown.append({"label": said, "points": weight})
            result.recommendations.append(modifier.recommends)
    if score > 1.0:
        result.breakdown.append({"label": "Capped at 1.00", "points": round(1.0 - score, 6)})
    # Rounded so that sums like 0.70 + 0.20 meet the 0.90 threshold they equal.
    return round(min(score, 1.0), 6)


def _with_context(context: dict, result: RiskAssessment) -> None:
    if context.get("deal_stage") == "closed":
        if result.score < 0.90:
            result.breakdown.append({"label": "Deal is closed: raised to 0.90", "points": round(0.90 - result.score, 6)})
        result.level, result.requires_approval, result.score = "critical", True, max(result.score, 0.90)
        result.reasons.append("Deal is closed - all actions require approval")
    if context.get("is_test_mode"):
        result.recommendations.append("Test mode: confirm the action only touches test data.")


def risk_assess(*, action_type: str, inputs: dict | None = None, context: dict | None = None) -> RiskAssessment:
    book = rulebook_current()
    config = book.config
    inputs = inputs or {}
    result = RiskAssessment(level="low", score=0.0, requires_approval=False, requires_quarantine=False)
    matched = _matched_rules(book, action_type, inputs)
    rule_level, rule_approval = _rule_outcome(matched, config, result.reasons)
    score = _score(rule_level, inputs, config, result)

    level = _level_for(score, config)
    if SEVERITY[level] < SEVERITY[rule_level]:
        level = rule_level
    elif level != rule_level:
        result.reasons.append(f"Score {score:.2f} raises the level from {rule_level} to {level}")
    requires_approval = rule_approval or level in ("high", "critical")
    if config.auto_approve_low and level == "low" and requires_approval:
        requires_approval = False
        result.reasons.append("Low risk: no approval needed (ZAKOPS_HITL_AUTO_APPROVE_LOW_RISK)")
    if config.write_verb_floor and (SEVERITY[level] < SEVERITY["medium"] or not requires_approval):
        level, score, requires_approval = _floor(
            book.phrase(action_type), level, score, requires_approval, config, result.reasons, result.breakdown
        )
    result.level, result.score, result.requires_approval = level, score, requires_approval
    _with_context(context or {}, result)

    if result.level == "critical":
        result.recommendations.insert(0, "Critical: only an admin can decide; check every input before approving.")
    elif result.requires_approval:
        result.recommendations.insert(0, "Review the inputs before approving.")
    result.score = round(result.score, 2)
    result.requires_quarantine = result.level == "critical"
    result.matched_rules = [rule.name for rule in matched]
    return result
