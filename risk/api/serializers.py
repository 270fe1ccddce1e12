from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from common.api import JSONObjectField, StrictCharField
from risk.models import RiskRule
from zakops.models import RiskLevel


class AssessRiskRequestSerializer(serializers.Serializer):
    action_type = StrictCharField(max_length=100)
    action_data = JSONObjectField(help_text="The action's inputs.")
    context = JSONObjectField(help_text="e.g. deal_stage, is_test_mode.")


class AssessmentSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=RiskLevel.choices)
    score = serializers.FloatField(min_value=0, max_value=1)
    requires_approval = serializers.BooleanField()
    requires_quarantine = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())
    recommendations = serializers.ListField(child=serializers.CharField())
    matched_rules = serializers.ListField(child=serializers.CharField())
    breakdown = serializers.ListField(
        child=inline_serializer("ScorePart", {"label": serializers.CharField(), "points": serializers.FloatField()}),
        help_text="How the score adds up: the base of the rule level, then each modifier.",
    )


def _help(name: str) -> str:
    return RiskRule._meta.get_field(name).help_text


class RiskRuleSerializer(serializers.ModelSerializer):
    action_types = serializers.ListField(child=serializers.CharField(), help_text=_help("action_types"))
    action_type_patterns = serializers.ListField(child=serializers.CharField(), help_text=_help("action_type_patterns"))
    input_patterns = serializers.DictField(child=serializers.CharField(), help_text=_help("input_patterns"))

    class Meta:
        model = RiskRule
        fields = [
            "name", "description", "risk_level", "requires_approval", "action_types", "action_type_patterns",
            "enabled", "input_patterns", "min_amount",
        ]


class RiskRulesQuerySerializer(serializers.Serializer):
    include_disabled = serializers.BooleanField(default=False, help_text="Also list the disabled rules (see `enabled`).")


class RiskRulesSerializer(serializers.Serializer):
    rules = RiskRuleSerializer(many=True)
    default_risk_level = serializers.ChoiceField(choices=RiskLevel.choices)
    default_requires_approval = serializers.BooleanField()
    auto_approve_low_risk = serializers.BooleanField()
