"""Reads of the risk configuration."""

from dataclasses import dataclass

from risk.models import RiskRule
from risk.rulebook import CompiledRule, RiskConfig, rulebook_current
from zakops.models import Action


def risk_rules(*, include_disabled: bool = False):
    """The rules in force (enabled), or all of them."""
    rules = RiskRule.objects.order_by("name")
    return rules if include_disabled else rules.filter(enabled=True)


def risk_config() -> RiskConfig:
    return rulebook_current().config


@dataclass(frozen=True)
class RulePreview:
    scanned: int
    matched: int
    examples: list


def rule_preview(*, rule: CompiledRule, limit: int, examples: int = 5, where=None) -> RulePreview:
    """How many of the `limit` most recent actions `rule` would match, with a few of them;
    with `where`, only the matched actions for which where(action) is true count."""
    recent = (
        Action.objects.order_by("-created_at")
        .only("action_id", "action_type", "inputs", "status", "risk_level", "created_at")[:limit]
    )
    scanned, found = 0, []
    for action in recent:
        scanned += 1
        inputs = action.inputs if isinstance(action.inputs, dict) else {}
        if rule.matches_type(action.action_type.lower()) and rule.matches_inputs(inputs) and (where is None or where(action)):
            found.append(action)
    return RulePreview(scanned=scanned, matched=len(found), examples=found[:examples])
