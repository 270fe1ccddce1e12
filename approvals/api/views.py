from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.selectors import actor_of
from approvals import selectors, services
from approvals.api import serializers as s
from approvals.idempotency import idempotent
from zakops_hitl.api import HitlAPIView
from zakops_hitl.errors import NotFound

CONFLICT = OpenApiResponse(description="Already decided, cancelled or expired: `state`, `decided_by`, `decided_at`.")
FORBIDDEN = OpenApiResponse(description="This person may not decide this request; `detail` says which rule refused.")
NOT_FOUND = OpenApiResponse(description="Unknown action, or an action without an approval request.")


class ApprovalQueueView(HitlAPIView):
    @extend_schema(
        parameters=[s.QueueQuerySerializer],
        responses=s.QueueItemSerializer(many=True),
        summary="Actions waiting for a decision: critical first, then oldest",
    )
    def get(self, request):
        query = s.QueueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        actions = selectors.approval_queue(**query.validated_data)
        return Response(s.QueueItemSerializer(actions, many=True).data)


class ApprovalRequestsView(HitlAPIView):
    @extend_schema(
        request=s.ApprovalRequestCreateSerializer,
        responses={
            201: s.ApprovalRequestSerializer,
            200: s.ApprovalRequestSerializer,
            403: OpenApiResponse(description="Only the engine (a service account) opens approval requests; people get 403."),
            409: OpenApiResponse(
                description="`new_round` for an action that is approved, running or finished (`action_status`), or "
                "an action_type, deal_id or inputs that differ from the stored action's."
            ),
        },
        summary="Request approval for an action (200 with its open or decided request when there is one)",
    )
    @idempotent
    def post(self, request):
        data = s.ApprovalRequestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval, created = services.approval_request(requester=actor_of(request.user), **data.validated_data)
        return Response(
            s.ApprovalRequestSerializer(approval).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class ActionApprovalView(HitlAPIView):
    @extend_schema(responses={200: s.ApprovalRequestSerializer, 404: NOT_FOUND}, summary="The action's latest approval request")
    def get(self, request, action_id):
        approval = selectors.approval_latest(action_id=action_id)
        if approval is None:
            raise NotFound(f"Action {action_id} has no approval request.")
        return Response(s.ApprovalRequestSerializer(approval).data)


def _decision_view(decision: str, who_field: str, request_serializer):
    """The approve, reject and quarantine endpoints differ only in these three things."""

    class DecisionView(HitlAPIView):
        @extend_schema(
            request=request_serializer,
            responses={
                200: inline_serializer(
                    f"{decision.title()}Result",
                    {
                        "status": serializers.CharField(),
                        "action_id": serializers.CharField(),
                        who_field: serializers.UUIDField(),
                        f"{who_field}_name": serializers.CharField(),
                        "reason": serializers.CharField(),
                        "request_id": serializers.UUIDField(),
                        "decided_at": serializers.DateTimeField(),
                    },
                ),
                400: OpenApiResponse(description="reason missing or over 2,000 characters"),
                403: FORBIDDEN,
                404: NOT_FOUND,
                409: CONFLICT,
            },
            summary=f"{decision.title()} the action's open approval request",
        )
        @idempotent
        def post(self, request, action_id):
            data = request_serializer(data=request.data)
            data.is_valid(raise_exception=True)
            actor = actor_of(request.user)
            approval = services.approval_decide(
                action_id=action_id, actor=actor, decision=decision, reason=data.validated_data["reason"]
            )
            decided_at = approval.escalated_at if decision == "quarantine" else approval.decided_at
            return Response(
                {
                    "status": approval.state,
                    "action_id": action_id,
                    who_field: str(actor.actor_id),
                    f"{who_field}_name": actor.name,
                    "reason": data.validated_data["reason"],
                    "request_id": str(approval.id),
                    "decided_at": serializers.DateTimeField().to_representation(decided_at),
                }
            )

    DecisionView.__name__ = DecisionView.__qualname__ = f"{decision.title()}View"
    return DecisionView


ApproveView = _decision_view("approve", "approved_by", s.DecisionSerializer)
RejectView = _decision_view("reject", "rejected_by", s.ReasonRequiredSerializer)
QuarantineView = _decision_view("quarantine", "quarantined_by", s.ReasonRequiredSerializer)


class ActionCancelView(HitlAPIView):
    @extend_schema(
        request=s.DecisionSerializer,
        responses={
            200: s.ApprovalRequestSerializer,
            403: OpenApiResponse(description="Only the engine (a service account) cancels; a reviewer rejects instead."),
            404: NOT_FOUND,
            409: CONFLICT,
        },
        summary="The engine withdraws the action: its open request and active checkpoints are cancelled",
    )
    @idempotent
    def post(self, request, action_id):
        data = s.DecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval = services.approval_cancel(action_id=action_id, actor=actor_of(request.user), reason=data.validated_data["reason"])
        return Response(s.ApprovalRequestSerializer(approval).data)
