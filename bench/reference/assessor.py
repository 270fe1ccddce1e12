"""The reference service's risk assessor: the enabled rules and the settings row read once
from the app's tables (risk_riskrule, risk_risksettings), held in memory, and matched by
plain functions with the app's semantics (SPEC §2), so that the two answers can be compared.

No Django and no FastAPI here: bench/risk.py times `assess()` in its own process.
"""

import json
import os
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import re2

LEVELS = ("low", "medium", "high", "critical")
SEVERITY = {level: n for n, level in enumerate(LEVELS)}
AMOUNT_KEYS = ("amount", "value", "total")
FINANCIAL_KEYS = frozenset(
    ("amount", "value", "total", "price", "payment", "iban", "account_number", "routing_number", "swift")
)
RECIPIENT_KEYS = ("to", "cc", "bcc", "recipient", "recipients", "email")
BULK_COUNT_KEYS = ("count", "batch_size")
EMAIL_ADDRESS = re.compile(r"([A-Za-z0-9._%+'-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+))")

RULES_SQL = (
    "SELECT name, description, risk_level, requires_approval, action_types, action_type_patterns, "
    "input_patterns, min_amount FROM risk_riskrule WHERE enabled"
)
SETTINGS_SQL = (
    "SELECT default_risk_level, default_requires_approval, auto_approve_low_risk, base_low, base_medium, "
    "base_high, base_critical, bulk_weight, financial_weight, external_weight, threshold_critical, "
    "threshold_high, threshold_medium, bulk_threshold, internal_domains, write_verb_floor, write_verbs "
    "FROM risk_risksettings WHERE id = 1"
)
# The model's defaults, for a database where the settings row was never written.
SETTINGS_DEFAULTS = ("", None, None, 0.10, 0.40, 0.70, 0.90, 0.20, 0.15, 0.10, 0.90, 0.60, 0.30, 10, [], True, [
    "SEND", "DELETE", "UPDATE", "CREATE", "TRANSFER", "PAY", "REMOVE", "MOVE", "SIGN", "WRITE", "EDIT", "SET",
    "MODIFY", "SUBMIT", "PUBLISH", "POST", "UPLOAD", "SHARE", "GRANT", "REVOKE", "CLOSE", "MERGE", "ARCHIVE",
    "PURGE", "EXECUTE", "WIRE", "REFUND", "INVITE", "ASSIGN", "REPLACE", "EXPORT",
])


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def _json(value):
    """jsonb arrives decoded from psycopg; as text from SQLite."""
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    level: str
    requires_approval: bool
    exact_types: frozenset
    type_patterns: tuple  # compiled globs
    input_patterns: tuple  # ((key, RE2 pattern), ...)
    min_amount: Decimal | None
    reason: str

    def matches(self, inputs: dict) -> bool:
        for key, pattern in self.input_patterns:
            if key in inputs and pattern.search(_text(inputs[key])) is None:
                return False
        if self.min_amount is not None:
            amount = _amount(inputs)
            if amount is not None and amount < self.min_amount:
                return False
        return True


@dataclass(slots=True)
class Rules:
    rules: tuple  # most severe first, then by name
    default_level: str
    default_approval: bool
    auto_approve_low: bool
    bases: dict
    bulk_weight: float
    financial_weight: float
    external_weight: float
    thresholds: tuple  # (critical, high, medium)
    bulk_threshold: int
    internal_domains: tuple
    write_verb_floor: bool
    write_verbs: frozenset
    by_type: dict  # lower-cased action type -> the rules whose types match


def _glob(pattern: str):
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in re.sub(r"\*+", "*", pattern.strip()))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _rule(name, description, level, requires_approval, action_types, type_patterns, input_patterns, min_amount):
    compiled = []
    for key, pattern in (_json(input_patterns) or {}).items():
        try:
            compiled.append((key, re2.compile(pattern)))
        except re2.error:
            pass  # a pattern that no longer compiles: the rule matches more, never less
    return Rule(
        name=name,
        level=level,
        requires_approval=bool(requires_approval),
        exact_types=frozenset(t.strip().lower() for t in _json(action_types) or () if t.strip()),
        type_patterns=tuple(_glob(p) for p in _json(type_patterns) or () if p.strip()),
        input_patterns=tuple(compiled),
        min_amount=None if min_amount is None else Decimal(str(min_amount)),
        reason=f"Matched rule {name}: {description}" if description else f"Matched rule {name} ({level})",
    )


def rules_read(cursor) -> Rules:
    """The enabled rules and the settings, read through a DB-API cursor (psycopg, or any)."""
    cursor.execute(RULES_SQL)
    rules = sorted((_rule(*row) for row in cursor.fetchall()), key=lambda r: (-SEVERITY[r.level], r.name))
    cursor.execute(SETTINGS_SQL)
    (default_level, default_approval, auto_low, low, medium, high, critical, bulk_w, financial_w, external_w,
     t_critical, t_high, t_medium, bulk_threshold, domains, verb_floor, verbs) = cursor.fetchone() or SETTINGS_DEFAULTS
    return Rules(
        rules=tuple(rules),
        default_level=default_level or os.environ.get("ZAKOPS_HITL_DEFAULT_RISK_LEVEL", "medium"),
        default_approval=(
            _env_bool("ZAKOPS_HITL_DEFAULT_REQUIRES_APPROVAL", True) if default_approval is None else bool(default_approval)
        ),
        auto_approve_low=_env_bool("ZAKOPS_HITL_AUTO_APPROVE_LOW_RISK", False) if auto_low is None else bool(auto_low),
        bases={"low": low, "medium": medium, "high": high, "critical": critical},
        bulk_weight=bulk_w,
        financial_weight=financial_w,
        external_weight=external_w,
        thresholds=(t_critical, t_high, t_medium),
        bulk_threshold=bulk_threshold,
        internal_domains=tuple(d.strip().lower().lstrip("@") for d in _json(domains) or () if d.strip()),
        write_verb_floor=bool(verb_floor),
        write_verbs=frozenset(v.strip().upper() for v in _json(verbs) or () if v.strip()),
        by_type={},
    )


def rules_load(conninfo: str) -> Rules:
    import psycopg

    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        return rules_read(cursor)


# --- matching ------------------------------------------------------------------------


def _text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _amount(inputs: dict) -> Decimal | None:
    """The first of amount/value/total as a number; None when absent or not numeric."""
    for key in AMOUNT_KEYS:
        if key in inputs:
            value = inputs[key]
            if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
                return None
            try:
                number = Decimal(str(value).strip().replace(",", ""))
            except InvalidOperation:
                return None
            return number if number.is_finite() else None
    return None


def _candidates(book: Rules, action_type: str) -> tuple:
    key = action_type.lower()
    found = book.by_type.get(key)
    if found is None:
        found = tuple(
            r for r in book.rules
            if (not r.exact_types and not r.type_patterns)
            or key in r.exact_types
            or any(p.fullmatch(key) for p in r.type_patterns)
        )
        if len(book.by_type) < 10_000:
            book.by_type[key] = found
    return found


def _bulk(inputs: dict, threshold: int) -> str | None:
    if inputs.get("bulk") is True:
        return "bulk is true"
    for key in BULK_COUNT_KEYS:
        value = inputs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= threshold:
            return f"{key} is {value:g}"
    for key, value in inputs.items():
        if isinstance(value, list) and len(value) >= threshold:
            return f"{key} has {len(value)} items"
        if isinstance(value, dict):
            for inner_key, inner in value.items():
                if isinstance(inner, list) and len(inner) >= threshold:
                    return f"{key}.{inner_key} has {len(inner)} items"
    return None


def _external_address(value, internal: tuple) -> str | None:
    if isinstance(value, str):
        if "@" in value:
            for address, domain in EMAIL_ADDRESS.findall(value):
                domain = domain.lower()
                if not any(domain == d or domain.endswith("." + d) for d in internal):
                    return address
        return None
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return None
    for item in value:
        found = _external_address(item, internal)
        if found:
            return found
    return None


def assess(book: Rules, action_type: str, inputs: dict | None = None, context: dict | None = None) -> dict:
    """The assessment as plain data: level, score, requires_approval, requires_quarantine,
    reasons, recommendations, matched_rules, breakdown."""
    inputs = inputs or {}
    context = context or {}
    matched = [r for r in _candidates(book, action_type) if r.matches(inputs)]
    if matched:
        rule_level = matched[0].level
        approval = any(r.requires_approval for r in matched)
        reasons = [r.reason for r in matched]
    else:
        rule_level, approval = book.default_level, book.default_approval
        reasons = [
            f"No rule matched: default level {rule_level}, approval {'required' if approval else 'not required'}"
        ]
    recommendations = []

    score = book.bases[rule_level]
    breakdown = [{"label": f"Base for level {rule_level}", "points": score}]

    def add(label: str, points: float, advice: str) -> None:
        nonlocal score
        score += points
        reasons.append(f"{label} (+{points:.2f})")
        breakdown.append({"label": label, "points": points})
        recommendations.append(advice)

    bulk = _bulk(inputs, book.bulk_threshold)
    if bulk:
        add(f"Bulk operation: {bulk}", book.bulk_weight, "Check a sample of the items before approving a bulk operation.")
    financial = next((key for key in inputs if key.lower() in FINANCIAL_KEYS), None)
    if financial:
        add(f"Financial data: inputs include {financial}", book.financial_weight,
            "Verify amounts and account details against the deal documents.")
    for key in RECIPIENT_KEYS:
        address = _external_address(inputs[key], book.internal_domains) if key in inputs else None
        if address:
            add(f"External communication: {key} includes {address}", book.external_weight,
                "Confirm every external recipient is expected for this deal.")
            break
    if score > 1.0:
        breakdown.append({"label": "Capped at 1.00", "points": round(1.0 - score, 6)})
    score = round(min(score, 1.0), 6)

    critical, high, medium = book.thresholds
    level = "critical" if score >= critical else "high" if score >= high else "medium" if score >= medium else "low"
    if SEVERITY[level] < SEVERITY[rule_level]:
        level = rule_level
    elif level != rule_level:
        reasons.append(f"Score {score:.2f} raises the level from {rule_level} to {level}")

    approval = approval or level in ("high", "critical")
    if book.auto_approve_low and level == "low" and approval:
        approval = False
        reasons.append("Low risk: no approval needed (ZAKOPS_HITL_AUTO_APPROVE_LOW_RISK)")

    if book.write_verb_floor and (SEVERITY[level] < SEVERITY["medium"] or not approval):
        verb = action_type.rsplit(".", 1)[-1].split("_", 1)[0].strip().upper()
        if verb in book.write_verbs:
            if SEVERITY[level] < SEVERITY["medium"]:
                raised = max(score, book.bases["medium"])
                if raised > score:
                    breakdown.append(
                        {"label": f"Write verb {verb}: raised to the medium base", "points": round(raised - score, 6)}
                    )
                level, score = "medium", raised
            approval = True
            reasons.append(f"Write verb {verb}: never below medium, and a person approves (write-verb floor)")

    if context.get("deal_stage") == "closed":
        if score < 0.90:
            breakdown.append({"label": "Deal is closed: raised to 0.90", "points": round(0.90 - score, 6)})
        level, approval, score = "critical", True, max(score, 0.90)
        reasons.append("Deal is closed - all actions require approval")
    if context.get("is_test_mode"):
        recommendations.append("Test mode: confirm the action only touches test data.")

    if level == "critical":
        recommendations.insert(0, "Critical: only an admin can decide; check every input before approving.")
    elif approval:
        recommendations.insert(0, "Review the inputs before approving.")

    return {
        "level": level,
        "score": round(score, 2),
        "requires_approval": approval,
        "requires_quarantine": level == "critical",
        "reasons": reasons,
        "recommendations": recommendations,
        "matched_rules": [r.name for r in matched],
        "breakdown": breakdown,
    }
