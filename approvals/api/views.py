from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.selectors import actor_of
from approvals import selectors
from approvals.api import serializers as s
from approvals.api.permissions import MayDecide
from approvals.deciders import approvals_needed
from approvals.services.cancel import approval_cancel
from approvals.services.claims import claim_release, claim_take
from approvals.services.decisions import approval_decide, approvals_decide_many
from approvals.services.requests import approval_adopt, approval_request
from common.api import HitlAPIView, conditional_answer
from common.errors import NotFound
from common.idempotency import idempotent

CONFLICT = OpenApiResponse(description="Already decided, cancelled or expired: `state`, `decided_by`, `decided_at`.")
DECIDE_CONFLICT = OpenApiResponse(
    description="Already decided, cancelled or expired (`state`, `decided_by`, `decided_at`); or another reviewer "
    "holds a live claim on it (`claimed_by`, `claimed_at`, `claim_expires_at`): take it over first "
    "(`POST …/claim` with `takeover: true`)."
)
FORBIDDEN = OpenApiResponse(
    description="Viewers and service accounts never decide, claim or release; or this person may not decide this "
    "request. `detail` says which rule refused."
)
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
        approval, created = approval_request(requester=actor_of(request.user), **data.validated_data)
        return Response(
            s.ApprovalRequestSerializer(approval).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


def action_approval(*, action_id: str, user) -> dict:
    """The poll's answer, for the view and for the engine path (zakops_hitl.engine): the
    action's latest request as seen now; NotFound when it has none."""
    approval = selectors.approval_polled(action_id=action_id)
    if (approval is None or not approval.is_open) and actor_of(user).kind == "service":
        # A GET that may write, for the engine only: an action the engine set to
        # PENDING_APPROVAL by itself is its statement that the action waits for a
        # person, so the request the sweep would open for it is opened now, and the
        # engine never reads "no such request" (or the last round's decision) for it.
        # Adoption is idempotent: at most one open request per action, whoever adopts
        # first. A person's GET reads and never writes. A decided request costs one
        # question more (is the action pending again?); a pending one, none.
        if approval is None or selectors.action_held_pending(action_id=action_id):
            approval = approval_adopt(action_id=action_id) or approval
    if approval is None:
        raise NotFound(f"Action {action_id} has no approval request.")
    return s.approval_json(approval.as_seen())


class ActionApprovalView(HitlAPIView):
    @extend_schema(
        responses={
            200: s.ApprovalRequestSerializer,
            304: OpenApiResponse(description="`If-None-Match` names the answer's current `ETag`: nothing changed."),
            404: NOT_FOUND,
        },
        summary="The action's latest approval request",
        description="An action the engine set to PENDING_APPROVAL by itself, without an open request, is "
        "adopted by the engine's call (a service account's; given its request, as hitl_sweep would) and answered "
        "`pending`. A person's call only reads. The answer carries an `ETag`, which changes whenever anything in "
        "it does (an open request passing its deadline included); a call whose `If-None-Match` names it is "
        "answered 304 with an empty body.",
    )
    def get(self, request, action_id):
        return conditional_answer(request, action_approval(action_id=action_id, user=request.user))


VOTE_FIELDS = {
    "votes": serializers.ListField(
        child=serializers.DictField(), help_text="The approvals counted so far, each `name` and `at`."
    ),
    "approvals_needed": serializers.IntegerField(help_text="Approvals by different people the request's level needs."),
}


def _decision_view(decision: str, who_field: str, request_serializer):
    """The approve, reject and quarantine endpoints differ only in these three things."""

    class DecisionView(HitlAPIView):
        permission_classes = [MayDecide]

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
                        "decided_at": serializers.DateTimeField(allow_null=True),
                        **(VOTE_FIELDS if decision == "approve" else {}),
                    },
                ),
                400: OpenApiResponse(description=(
                    "reason missing (an approval of a critical or quarantined request needs one too) or over 2,000 "
                    "characters; inputs not a JSON object" if decision == "approve" else "reason missing or over 2,000 characters"
                )),
                403: FORBIDDEN,
                404: NOT_FOUND,
                409: APPROVE_CONFLICT if decision == "approve" else DECIDE_CONFLICT,
            },
            summary=f"{decision.title()} the action's open approval request",
            description=APPROVE_DESCRIPTION if decision == "approve" else None,
        )
        @idempotent
        def post(self, request, action_id):
            data = request_serializer(data=request.data)
            data.is_valid(raise_exception=True)
            actor = actor_of(request.user)
            approval = approval_decide(
                action_id=action_id, actor=actor, decision=decision, reason=data.validated_data["reason"],
                inputs=data.validated_data.get("inputs"),
            )
            decided_at = approval.escalated_at if decision == "quarantine" else approval.decided_at
            answer = {
                "status": approval.state,
                "action_id": action_id,
                who_field: str(actor.actor_id),
                f"{who_field}_name": actor.name,
                "reason": data.validated_data["reason"],
                "request_id": str(approval.id),
                "decided_at": serializers.DateTimeField().to_representation(decided_at) if decided_at else None,
            }
            if decision == "approve":
                answer.update(votes=approval.votes, approvals_needed=approvals_needed(approval.risk_level))
            return Response(answer)

    DecisionView.__name__ = DecisionView.__qualname__ = f"{decision.title()}View"
    return DecisionView


APPROVE_DESCRIPTION = (
    "Answers with the request's state: `approved` when this approval completes it, or `pending` when its level "
    "needs more approvals by different people (HITL_APPROVALS_*, default 2 for critical): the approval is then "
    "a vote, listed in `votes`. With `inputs`, the action's inputs are edited and approved in one step."
)
APPROVE_CONFLICT = OpenApiResponse(
    description="Already decided, cancelled or expired (`state`, `decided_by`, `decided_at`); or another reviewer "
    "holds a live claim on it (`claimed_by`, `claimed_at`, `claim_expires_at`): take it over first; or the caller "
    "already voted; or an edit of `inputs` raised the risk so that another role must decide: the edit is saved "
    "(`inputs_edited: true`, the new `risk_level`) and the approval not recorded."
)
ApproveView = _decision_view("approve", "approved_by", s.ApproveSerializer)
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
        approval = approval_cancel(action_id=action_id, actor=actor_of(request.user), reason=data.validated_data["reason"])
        return Response(s.ApprovalRequestSerializer(approval).data)


CLAIM_CONFLICT = OpenApiResponse(
    description="Another reviewer holds a live claim (`claimed_by`, `claimed_at`, `claim_expires_at`): send "
    "`takeover: true` to take it over; or the caller already approved it (a vote); or the request is no longer open."
)


class ClaimView(HitlAPIView):
    permission_classes = [MayDecide]

    @extend_schema(
        request=s.ClaimSerializer,
        responses={200: s.ClaimResultSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: CLAIM_CONFLICT},
        summary="Claim the action's open request for the caller while they review it (renews their own claim)",
        description="A claim lasts HITL_CLAIM_MINUTES (default 10); call again to renew it. While it is live, "
        "nobody else decides the request until they take it over. People only.",
    )
    @idempotent
    def post(self, request, action_id):
        data = s.ClaimSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        claim = claim_take(action_id=action_id, actor=actor_of(request.user), takeover=data.validated_data["takeover"])
        return Response(
            s.ClaimResultSerializer(
                {"action_id": action_id, "request_id": claim.request_id, "claimed_by": claim.reviewer_name,
                 "claimed_at": claim.taken_at, "expires_at": claim.expires_at}
            ).data
        )


class ReleaseView(HitlAPIView):
    permission_classes = [MayDecide]

    @extend_schema(
        request=None,
        responses={200: s.ReleaseResultSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
        summary="Release the caller's claim on the action's request",
    )
    @idempotent
    def post(self, request, action_id):
        released = claim_release(action_id=action_id, actor=actor_of(request.user))
        return Response({"action_id": action_id, "released": released})


class DecisionsView(HitlAPIView):
    permission_classes = [MayDecide]

    @extend_schema(
        request=s.BulkDecisionsSerializer,
        responses={200: s.BulkResultSerializer, 403: FORBIDDEN},
        summary="Decide up to 200 actions: each in its own transaction, each with its outcome",
        description="One refusal or conflict undoes nothing else. An approval that is a vote is `decided` with "
        "`state: pending`; a request another reviewer has claimed is `claimed`. The reviewer pages' bulk "
        "decisions use the same service. With an Idempotency-Key the batch and its stored answer commit together.",
    )
    @idempotent
    def post(self, request):
        data = s.BulkDecisionsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcomes = approvals_decide_many(
            actor=actor_of(request.user),
            decisions=[(item["action_id"], item["decision"], item["reason"]) for item in data.validated_data["decisions"]],
        )
        return Response({
            "outcomes": [
                {"action_id": o.action_id, "outcome": o.outcome, "detail": o.detail,
                 "state": o.request.state if o.request else None, "conflict": _plain(o.conflict)}
                for o in outcomes
            ]
        })


def _plain(conflict: dict | None) -> dict | None:
    if conflict is None:
        return None
    return {key: serializers.DateTimeField().to_representation(value) if hasattr(value, "isoformat") else value
            for key, value in conflict.items()}


class EngineActionView(HitlAPIView):
    @extend_schema(
        responses={200: s.EngineActionSerializer, 404: OpenApiResponse(description="Unknown action.")},
        summary="The action as the engine must run it: its status and its inputs as approved",
    )
    def get(self, request, action_id):
        action = selectors.action_for_engine(action_id=action_id)
        if action is None:
            raise NotFound(f"No action {action_id}.")
        return Response(s.EngineActionSerializer(action).data)
