"""Reads of the risk configuration."""

from risk.models import RiskRule
from risk.rulebook import RiskConfig, rulebook_current


def risk_rules_all():
    return RiskRule.objects.order_by("name")


def risk_config() -> RiskConfig:
    return rulebook_current().config
