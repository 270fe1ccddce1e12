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
from risk.services import RiskAssessment, risk_assess


def assessment_of(data: dict) -> RiskAssessment:
    """The assessment asked for by a body AssessRiskRequestSerializer validated, for the
    view and for the engine path (zakops_hitl.engine), which checks the body against the
    same serializer: null or absent inputs and context count as empty."""
    return risk_assess(
        action_type=data["action_type"], inputs=data.get("action_data") or {}, context=data.get("context") or {}
    )


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
        # The assessment is already plain data; AssessmentSerializer documents its shape.
        return Response(asdict(assessment_of(data.validated_data)))


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
