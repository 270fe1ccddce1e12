import functools

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers
from rest_framework.settings import ISO_8601, api_settings

from approvals.models import ApprovalRequest
from approvals.selectors import POLLED_COUNTS, POLLED_FIELDS
from approvals.services.decisions import MAX_REASON
from common.api import JSONObjectField, StrictCharField
from zakops.models import ActionStatus, RiskLevel


class QueueQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ActionStatus.choices, default=ActionStatus.PENDING_APPROVAL)
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices, required=False)
    deal_id = serializers.CharField(required=False, max_length=20)
    limit = serializers.IntegerField(default=50, min_value=1, max_value=200)


class QueueItemSerializer(serializers.Serializer):
    action_id = serializers.CharField()
    action_type = serializers.CharField()
    title = serializers.CharField(allow_null=True)
    risk_level = serializers.CharField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    deal_id = serializers.CharField(allow_null=True)
    request_id = serializers.UUIDField(allow_null=True, help_text="The open approval request, if any.")
    state = serializers.CharField(allow_null=True)
    score = serializers.FloatField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, action):
        request = action.open_requests[0].as_seen() if action.open_requests else None
        return {
            "action_id": action.action_id,
            "action_type": action.action_type,
            "title": action.title,
            "risk_level": action.risk_level,
            "status": action.status,
            "created_at": serializers.DateTimeField().to_representation(action.created_at),
            "deal_id": action.deal_id,
            "request_id": str(request.id) if request else None,
            "state": request.state if request else None,
            "score": request.score if request else None,
            "expires_at": serializers.DateTimeField().to_representation(request.expires_at) if request else None,
        }


class DecisionSerializer(serializers.Serializer):
    reason = StrictCharField(required=False, allow_blank=True, max_length=MAX_REASON, default="")


class ApproveSerializer(serializers.Serializer):
    reason = StrictCharField(
        required=False, allow_blank=True, max_length=MAX_REASON, default="",
        help_text="Optional, except for a critical or a quarantined request (else 400 naming `reason`).",
    )
    inputs = JSONObjectField(
        default=None, allow_null=False,
        help_text=(
            "Edited inputs to approve instead of the stored ones: written to the action (what the engine runs), the "
            "original kept, the diff recorded, and the action assessed again. If the new level needs another role, "
            "the edit is kept and the answer is 409 with `inputs_edited: true`."
        ),
    )


class ClaimSerializer(serializers.Serializer):
    takeover = serializers.BooleanField(default=False, help_text="Take over another reviewer's live claim (recorded in the history).")


class ClaimResultSerializer(serializers.Serializer):
    action_id = serializers.CharField()
    request_id = serializers.UUIDField()
    claimed_by = serializers.CharField()
    claimed_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class ReleaseResultSerializer(serializers.Serializer):
    action_id = serializers.CharField()
    released = serializers.BooleanField(help_text="False when the caller held no claim (nothing changed).")


class BulkItemSerializer(serializers.Serializer):
    action_id = StrictCharField(max_length=50)
    decision = serializers.ChoiceField(choices=[("approve", "approve"), ("reject", "reject"), ("quarantine", "quarantine")])
    reason = StrictCharField(required=False, allow_blank=True, max_length=MAX_REASON, default="")


BULK_MAX = 200


class BulkDecisionsSerializer(serializers.Serializer):
    decisions = BulkItemSerializer(many=True, allow_empty=False, max_length=BULK_MAX)


class BulkOutcomeSerializer(serializers.Serializer):
    action_id = serializers.CharField()
    outcome = serializers.ChoiceField(
        choices=[(name, name) for name in ("decided", "conflict", "claimed", "refused", "missing")],
        help_text="decided; conflict (already decided, expired, cancelled: `conflict` says who and when); "
        "claimed (another reviewer holds a live claim: `conflict` says who, since and until when; take it over "
        "first); refused (not allowed or bad input: `detail` says why); missing (unknown action).",
    )
    detail = serializers.CharField()
    state = serializers.CharField(allow_null=True, help_text="The request's state after a decision (`pending` for a vote).")
    conflict = serializers.DictField(
        allow_null=True,
        help_text="For a conflict: request_id, state, decided_by_name, decided_at, reason. For a claimed request: "
        "claimed_by, claimed_at, claim_expires_at.",
    )


class BulkResultSerializer(serializers.Serializer):
    outcomes = BulkOutcomeSerializer(many=True)


class ReasonRequiredSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=MAX_REASON)


class ApprovalRequestCreateSerializer(serializers.Serializer):
    action_id = StrictCharField(max_length=50)
    action_type = StrictCharField(max_length=100)
    title = StrictCharField(required=False, allow_null=True, max_length=255)
    summary = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=10_000)
    deal_id = StrictCharField(required=False, allow_null=True, max_length=20)
    capability_id = StrictCharField(required=False, allow_null=True, max_length=100)
    correlation_id = serializers.UUIDField(required=False, allow_null=True)
    inputs = JSONObjectField(default=None, help_text="Default: the action's stored inputs.")
    context = JSONObjectField()
    requested_by = StrictCharField(
        required=False, allow_blank=True, max_length=255, default="",
        help_text="The person who asked for the action (email or operator id); they may not decide it.",
    )
    new_round = serializers.BooleanField(
        default=False,
        help_text=(
            "Open a new round for an action whose last request was decided. Refused (409) for an action that is "
            "QUEUED, PROCESSING, COMPLETED, CANCELLED or REJECTED. Without it, the latest request is returned unchanged."
        ),
    )


class ApprovalRequestSerializer(serializers.ModelSerializer):
    request_id = serializers.UUIDField(source="id")
    action_id = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())
    recommendations = serializers.ListField(child=serializers.CharField())
    matched_rules = serializers.ListField(child=serializers.CharField(), help_text="Names of the rules that matched.")
    decided_by_name = serializers.CharField()
    escalated_by_name = serializers.CharField()
    votes = serializers.IntegerField(
        source="vote_count", help_text="How many approvals by different people were given so far (a level that needs several).",
    )
    approvals_needed = serializers.IntegerField(help_text="How many approvals by different people the request's level needs.")

    class Meta:
        model = ApprovalRequest
        fields = [*("request_id" if name == "id" else name for name in POLLED_FIELDS if name != "votes"), *POLLED_COUNTS]

    def to_representation(self, instance):
        return approval_json(instance.as_seen())  # overdue reads as expired


def _when(value):
    """A datetime as DRF's DateTimeField writes it by default: ISO 8601 in the current
    zone, UTC as Z."""
    text = value.astimezone(timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _texts(values) -> list:
    return [None if value is None else str(value) for value in values]


# Fields whose to_representation() gives back the value an ApprovalRequest holds (a str,
# an int, a float, a bool) unchanged.
_AS_HELD = (serializers.CharField, serializers.ChoiceField, serializers.IntegerField, serializers.FloatField,
            serializers.BooleanField)


def _writer(field):
    """How approval_json writes a value of `field` that is not None: as the field's own
    to_representation() does, without its cost where the value needs nothing or little."""
    kind = type(field)
    if kind in _AS_HELD:
        return None
    if kind is serializers.DateTimeField and not hasattr(field, "format") and not hasattr(field, "timezone") \
            and api_settings.DATETIME_FORMAT == ISO_8601 and settings.USE_TZ:
        return _when  # for the aware datetimes the database gives
    if kind is serializers.ListField and type(field.child) is serializers.CharField:
        return _texts
    return field.to_representation


@functools.cache
def _written() -> tuple:
    """(name, attribute, writer) for each field of ApprovalRequestSerializer, in its order."""
    return tuple((name, field.source, _writer(field)) for name, field in ApprovalRequestSerializer().fields.items())


def approval_json(approval: ApprovalRequest) -> dict:
    """ApprovalRequestSerializer's representation, written out from its fields, built
    once: the poll answers it on every call, and DRF building a model serializer's fields
    took ten times the query's time. A test holds the two to the same output."""
    answer = {}
    for name, attribute, writer in _written():
        value = getattr(approval, attribute)
        answer[name] = value if value is None or writer is None else writer(value)
    return answer


class EngineActionSerializer(serializers.Serializer):
    action_id = serializers.CharField()
    action_type = serializers.CharField()
    status = serializers.CharField(allow_null=True, help_text="The engine may run the action only when it is QUEUED.")
    title = serializers.CharField(allow_null=True)
    deal_id = serializers.CharField(allow_null=True)
    risk_level = serializers.CharField(allow_null=True)
    inputs = serializers.JSONField(
        allow_null=True, help_text="The inputs as stored now: once approved, the ones approved (a reviewer's edits included)."
    )
