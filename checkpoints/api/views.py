from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.permissions import ActorOrReadOnly
from accounts.selectors import user_actor_id
from checkpoints import selectors, services
from checkpoints.api import serializers as s
from common.api import HitlAPIView
from common.errors import NotFound
from common.idempotency import idempotent

CONFLICT = OpenApiResponse(description="The checkpoint is not active: `status`, and for a resumed one who and when.")
NOT_FOUND = OpenApiResponse(description="Unknown action or checkpoint.")


def _known_action(action_id: str) -> None:
    if not selectors.action_exists(action_id=action_id):
        raise NotFound(f"No action {action_id}.")


class CheckpointsView(HitlAPIView):
    permission_classes = [ActorOrReadOnly]

    @property
    def max_body_bytes(self):
        return settings.HITL_CHECKPOINT_MAX_BYTES + 64 * 1024  # the data plus the other fields

    @extend_schema(
        parameters=[s.IncludeResumedSerializer],
        responses={200: s.CheckpointSummarySerializer(many=True), 404: NOT_FOUND},
        summary="List an action's checkpoints (active only unless include_resumed)",
    )
    def get(self, request, action_id):
        query = s.IncludeResumedSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        _known_action(action_id)
        checkpoints = selectors.checkpoints_for_action(
            action_id=action_id, include_inactive=query.validated_data["include_resumed"]
        )
        return Response(s.CheckpointSummarySerializer(checkpoints, many=True).data)

    @extend_schema(
        request=s.CheckpointSaveSerializer,
        responses={201: s.CheckpointSerializer, 404: NOT_FOUND, 413: OpenApiResponse(description="checkpoint_data too large")},
        summary="Save a checkpoint with the action's next sequence number",
    )
    @idempotent
    def post(self, request, action_id):
        data = s.CheckpointSaveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        checkpoint = services.checkpoint_save(action_id=action_id, **data.validated_data)
        return Response(s.CheckpointSerializer(checkpoint).data, status=status.HTTP_201_CREATED)


class CheckpointLatestView(HitlAPIView):
    @extend_schema(
        parameters=[s.LatestQuerySerializer],
        responses={200: s.CheckpointSerializer, 404: NOT_FOUND},
        summary="The action's latest active checkpoint, optionally of one name",
    )
    def get(self, request, action_id):
        query = s.LatestQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        _known_action(action_id)
        checkpoint = selectors.checkpoint_latest(action_id=action_id, checkpoint_name=query.validated_data.get("checkpoint_name"))
        if checkpoint is None:
            raise NotFound(f"Action {action_id} has no active checkpoint.")
        return Response(s.CheckpointSerializer(checkpoint).data)


class CheckpointByNameView(HitlAPIView):
    @extend_schema(responses={200: s.CheckpointSerializer, 404: NOT_FOUND}, summary="The latest active checkpoint of this name")
    def get(self, request, action_id, checkpoint_name):
        _known_action(action_id)
        checkpoint = selectors.checkpoint_latest(action_id=action_id, checkpoint_name=checkpoint_name)
        if checkpoint is None:
            raise NotFound(f"Action {action_id} has no active checkpoint named {checkpoint_name!r}.")
        return Response(s.CheckpointSerializer(checkpoint).data)


class CheckpointByIdView(HitlAPIView):
    """Every column of one checkpoint, whatever its status and whichever action it is of."""

    @extend_schema(
        responses={200: s.CheckpointSerializer, 404: OpenApiResponse(description="No checkpoint with this id.")},
        summary="A checkpoint by its id",
    )
    def get(self, request, checkpoint_id):
        checkpoint = selectors.checkpoint_get(checkpoint_id=checkpoint_id)
        if checkpoint is None:
            raise NotFound(f"No checkpoint {checkpoint_id}.")
        return Response(s.CheckpointSerializer(checkpoint).data)


class CheckpointLatestByCorrelationView(HitlAPIView):
    """The newest active checkpoint saved with this correlation id, across actions (by
    creation time), optionally of one name."""

    @extend_schema(
        parameters=[s.CorrelationLatestQuerySerializer],
        responses={
            200: s.CheckpointSerializer,
            400: OpenApiResponse(description="`correlation_id` missing or not a UUID; `detail` names the field."),
            404: OpenApiResponse(description="No active checkpoint with this correlation id (and name)."),
        },
        summary="The latest active checkpoint of a correlation id, optionally of one name",
    )
    def get(self, request):
        query = s.CorrelationLatestQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        correlation_id, name = query.validated_data["correlation_id"], query.validated_data.get("checkpoint_name")
        checkpoint = selectors.checkpoint_latest(correlation_id=correlation_id, checkpoint_name=name)
        if checkpoint is None:
            named = f" named {name!r}" if name is not None else ""
            raise NotFound(f"Correlation {correlation_id} has no active checkpoint{named}.")
        return Response(s.CheckpointSerializer(checkpoint).data)


class CheckpointResumeView(HitlAPIView):
    permission_classes = [ActorOrReadOnly]

    @extend_schema(
        request=None,
        responses={200: s.CheckpointResumedSerializer, 404: NOT_FOUND, 409: CONFLICT},
        summary="Resume a checkpoint, exactly once",
    )
    @idempotent
    def post(self, request, action_id, checkpoint_id):
        checkpoint = services.checkpoint_resume(
            action_id=action_id, checkpoint_id=checkpoint_id, resumed_by=user_actor_id(request.user)
        )
        return Response({"status": "resumed", "checkpoint_id": checkpoint.id, "resumed_by": checkpoint.resumed_by})


class CheckpointCancelView(HitlAPIView):
    permission_classes = [ActorOrReadOnly]

    @extend_schema(request=None, responses={200: s.CheckpointSerializer, 404: NOT_FOUND, 409: CONFLICT}, summary="Cancel an active checkpoint")
    @idempotent
    def post(self, request, action_id, checkpoint_id):
        checkpoint = services.checkpoint_cancel(action_id=action_id, checkpoint_id=checkpoint_id)
        return Response(s.CheckpointSerializer(checkpoint).data)
