"""The engine's poll (`GET actions/{id}/approval`) answers on the fast path what DRF's
serializer answers, in every state a request can be seen in."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework import serializers

from approvals.api.serializers import ApprovalRequestSerializer, approval_json
from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from zakops_hitl.api import HitlAPIView


def _drf_fields(request: ApprovalRequest) -> dict:
    """What ApprovalRequestSerializer's declared fields give, field by field."""
    return json.loads(json.dumps(serializers.ModelSerializer.to_representation(ApprovalRequestSerializer(), request)))


def _states(request_approval, people):
    pending = request_approval("medium")
    approved = request_approval("medium")
    approval_decide(action_id=approved.action_id, decision="approve", actor=people["operator"], reason="fine")
    overdue = request_approval("high")
    ApprovalRequest.objects.filter(pk=overdue.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    quarantined = request_approval("high")
    approval_decide(action_id=quarantined.action_id, decision="quarantine", actor=people["operator"], reason="look closer")
    return [pending, approved, overdue, quarantined]


@pytest.mark.django_db
def test_the_poll_answers_what_drf_answers_in_every_state(engine_api, request_approval, people, monkeypatch):
    actions = [r.action_id for r in _states(request_approval, people)] + ["ACT-NO-SUCH"]
    fast = [engine_api.get(f"/api/hitl/actions/{a}/approval") for a in actions]
    monkeypatch.setattr(HitlAPIView, "_fast_call", lambda self, f, request, kwargs: None)
    slow = [engine_api.get(f"/api/hitl/actions/{a}/approval") for a in actions]
    for one, other in zip(fast, slow):
        assert (one.status_code, json.loads(one.content)) == (other.status_code, json.loads(other.content))
    states = [json.loads(r.content).get("state") for r in fast]
    assert states == ["pending", "approved", "expired", "quarantined", None]
    assert fast[-1].status_code == 404


@pytest.mark.django_db
def test_the_written_out_representation_is_the_serializers(request_approval, people):
    for request in _states(request_approval, people):
        stored = ApprovalRequest.objects.get(pk=request.pk).as_seen()
        assert approval_json(stored) == _drf_fields(stored)


@pytest.mark.django_db
def test_odd_stored_lists_render_as_the_serializer_renders_them(request_approval):
    request = request_approval("medium")
    ApprovalRequest.objects.filter(pk=request.pk).update(reasons=["a", None, 3], matched_rules=[])
    stored = ApprovalRequest.objects.get(pk=request.pk).as_seen()
    assert approval_json(stored) == _drf_fields(stored)
