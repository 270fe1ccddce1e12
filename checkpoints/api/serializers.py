from rest_framework import serializers

from common.api import JSONObjectField, StrictCharField
from zakops.models import CheckpointType, ExecutionCheckpoint

MAX_EXPIRY_HOURS = 24 * 365


class CheckpointSaveSerializer(serializers.Serializer):
    checkpoint_name = StrictCharField(max_length=255)
    checkpoint_data = JSONObjectField(required=True, allow_null=False)
    checkpoint_type = serializers.ChoiceField(
        choices=CheckpointType.choices,
        default=CheckpointType.STATE,
        error_messages={"invalid_choice": f"\"{{input}}\" is not one of {', '.join(CheckpointType.values)}."},
    )
    correlation_id = serializers.UUIDField(required=False, allow_null=True, help_text="Default: the action's, else derived from the action id.")
    run_id = serializers.UUIDField(required=False, allow_null=True)
    expires_in_hours = serializers.FloatField(required=False, allow_null=True, min_value=0.001, max_value=MAX_EXPIRY_HOURS)

    def validate_expires_in_hours(self, value):
        if value is not None and value != value:  # NaN
            raise serializers.ValidationError("Must be a positive number.")
        return value


class CheckpointSerializer(serializers.ModelSerializer):
    """Every column of the checkpoint, with `id` as `checkpoint_id`."""

    checkpoint_id = serializers.UUIDField(source="id")
    action_id = serializers.CharField()
    checkpoint_data = JSONObjectField()

    class Meta:
        model = ExecutionCheckpoint
        fields = [
            "checkpoint_id", "correlation_id", "action_id", "run_id", "checkpoint_name", "checkpoint_type",
            "checkpoint_data", "sequence_number", "status", "expires_at", "resumed_at", "resumed_by", "created_at",
        ]


class CheckpointSummarySerializer(serializers.ModelSerializer):
    checkpoint_id = serializers.UUIDField(source="id")

    class Meta:
        model = ExecutionCheckpoint
        fields = ["checkpoint_id", "checkpoint_name", "sequence_number", "status", "created_at"]


class CheckpointResumedSerializer(serializers.Serializer):
    status = serializers.CharField(help_text='Always "resumed".')
    checkpoint_id = serializers.UUIDField()
    resumed_by = serializers.UUIDField()


class IncludeResumedSerializer(serializers.Serializer):
    include_resumed = serializers.BooleanField(default=False, help_text="Also list resumed, expired and cancelled ones.")


class LatestQuerySerializer(serializers.Serializer):
    checkpoint_name = serializers.CharField(required=False, max_length=255)


class CorrelationLatestQuerySerializer(serializers.Serializer):
    correlation_id = serializers.UUIDField(help_text="The correlation id the checkpoints were saved with.")
    checkpoint_name = serializers.CharField(required=False, max_length=255)
