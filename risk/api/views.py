from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from common.api import HitlAPIView
from risk.api.serializers import (
    AssessmentSerializer,
    AssessRiskRequestSerializer,
    RiskRulesQuerySerializer,
    RiskRulesSerializer,
)
from risk.selectors import risk_config, risk_rules
from risk.services import risk_assess


class AssessRiskView(HitlAPIView):
    @extend_schema(
        request=AssessRiskRequestSerializer,
        responses=AssessmentSerializer,
        summary="Assess an action's risk",
        description="Rates the action with the enabled rules and score modifiers (SPEC §2). Writes nothing.",
    )
    def post(self, request):
        data = AssessRiskRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assessment = risk_assess(
            action_type=data.validated_data["action_type"],
            inputs=data.validated_data.get("action_data") or {},
            context=data.validated_data.get("context") or {},
        )
        # The assessment is already plain data; AssessmentSerializer documents its shape.
        return Response(asdict(assessment))

    def fast_post(self, request, body):
        """The engine's usual call (HitlAPIView's fast path); anything unusual goes to post()."""
        action_type, inputs, context = body.get("action_type"), body.get("action_data"), body.get("context")
        if type(action_type) is not str or not action_type or len(action_type) > 100 or action_type != action_type.strip():
            return None
        if (inputs is not None and type(inputs) is not dict) or (context is not None and type(context) is not dict):
            return None
        return risk_assess(action_type=action_type, inputs=inputs or {}, context=context or {})


class RiskRulesView(HitlAPIView):
    @extend_schema(
        parameters=[RiskRulesQuerySerializer],
        responses=RiskRulesSerializer,
        summary="The risk rules in force and the defaults for unmatched actions",
    )
    def get(self, request):
        query = RiskRulesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        config = risk_config()
        return Response(
            RiskRulesSerializer(
                {
                    "rules": risk_rules(include_disabled=query.validated_data["include_disabled"]),
                    "default_risk_level": config.default_level,
                    "default_requires_approval": config.default_requires_approval,
                    "auto_approve_low_risk": config.auto_approve_low,
                }
            ).data
        )
