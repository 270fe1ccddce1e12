"""The engine's poll (`GET actions/{id}/approval`) answers on the engine path what DRF's
serializer answers, in every state a request can be seen in."""

import json
from datetime import timedelta
from uuid import UUID

import pytest
from django.utils import timezone
from rest_framework import serializers

from approvals.api.serializers import ApprovalRequestSerializer, approval_json
from approvals.models import ApprovalRequest, ApprovalVote
from approvals.services.decisions import approval_decide
from approvals.services.requests import approvals_adopt_pending
from tests.approvals.test_adoption import events, legacy_action
from tests.zakops_hitl.wsgi_calls import call, server_environ
from zakops.models import Action


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


def _polled(token: str, action_id: str, *, path: str = "engine") -> tuple[int, dict]:
    """(status, JSON body) of the poll through the WSGI application, on the engine path or
    (a query string, which the engine path leaves to the view) through DRF."""
    answer = call(server_environ("GET", f"/api/hitl/actions/{action_id}/approval", query="from=test" if path == "drf" else "",
                                 HTTP_AUTHORIZATION=f"Bearer {token}"))
    return answer.status, answer.json()


@pytest.mark.django_db
def test_the_poll_answers_what_drf_answers_in_every_state(service_token, request_approval, people):
    actions = [r.action_id for r in _states(request_approval, people)] + ["ACT-NO-SUCH"]
    fast = [_polled(service_token, a) for a in actions]
    slow = [_polled(service_token, a, path="drf") for a in actions]
    for one, other in zip(fast, slow):
        assert one == other
    states = [body.get("state") for _, body in fast]
    assert states == ["pending", "approved", "expired", "quarantined", None]
    assert fast[-1][0] == 404


@pytest.mark.django_db
def test_the_poll_answers_the_votes_so_far_and_how_many_are_needed(service_token, request_approval, people):
    critical, medium = request_approval("critical"), request_approval("medium")
    for path in ("engine", "drf"):
        for request, needed in ((critical, 2), (medium, 1)):
            body = _polled(service_token, request.action_id, path=path)[1]
            assert (body["votes"], body["approvals_needed"]) == (0, needed)
    approval_decide(action_id=critical.action_id, decision="approve", actor=people["admin"], reason="Recipient checked.")
    for path in ("engine", "drf"):
        status, body = _polled(service_token, critical.action_id, path=path)
        assert (status, body["state"], body["votes"], body["approvals_needed"]) == (200, "pending", 1, 2)
    approval_decide(action_id=critical.action_id, decision="approve", actor=people["admin2"], reason="Agreed.")
    status, body = _polled(service_token, critical.action_id)
    assert (body["state"], body["votes"], body["approvals_needed"]) == ("approved", 2, 2)


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


# --- the engine's own pending actions -------------------------------------------------


def _held_by_the_engine(action_id="ACT-HELD-1", action_type="DOCUMENT.GENERATE_LOI", **fields):
    return legacy_action(action_id, action_type, **fields)


@pytest.mark.parametrize("path", ["engine", "drf"])
def test_the_poll_adopts_an_action_the_engine_set_pending_by_itself(service_token, path):
    _held_by_the_engine()
    status, first = _polled(service_token, "ACT-HELD-1", path=path)
    assert status == 200, first
    assert (first["state"], first["risk_level"]) == ("pending", "high")
    assert _polled(service_token, "ACT-HELD-1", path=path) == (200, first)
    assert ApprovalRequest.objects.get(action_id="ACT-HELD-1").id == UUID(first["request_id"])
    assert events("ACT-HELD-1") == ["hitl.approval_requested"]
    assert approvals_adopt_pending() == 0  # the sweep finds nothing left to adopt


def test_the_poll_through_the_test_client_adopts_too(engine_api):
    _held_by_the_engine()
    answer = engine_api.get("/api/hitl/actions/ACT-HELD-1/approval")
    assert (answer.status_code, answer.json()["state"]) == (200, "pending")
    assert ApprovalRequest.objects.filter(action_id="ACT-HELD-1").count() == 1


def test_an_action_set_pending_again_after_a_decision_is_polled_as_its_new_round(engine_api, people):
    _held_by_the_engine()
    approval_decide(action_id="ACT-HELD-1", actor=people["operator"], decision="reject", reason="Wrong template")
    assert engine_api.get("/api/hitl/actions/ACT-HELD-1/approval").json()["state"] == "rejected"
    Action.objects.filter(pk="ACT-HELD-1").update(status="PENDING_APPROVAL")  # the engine's own flow, again
    polled = engine_api.get("/api/hitl/actions/ACT-HELD-1/approval").json()
    assert polled["state"] == "pending"
    assert ApprovalRequest.objects.get(pk=polled["request_id"]).round == 2


@pytest.mark.parametrize("status", ["PENDING", "QUEUED", "COMPLETED"])
def test_an_action_not_held_for_approval_is_still_404_and_nothing_is_written(engine_api, status):
    _held_by_the_engine(status=status)
    response = engine_api.get("/api/hitl/actions/ACT-HELD-1/approval")
    assert response.status_code == 404 and response.json()["detail"] == "Action ACT-HELD-1 has no approval request."
    assert not ApprovalRequest.objects.exists()


def test_an_overdue_request_is_polled_as_expired_not_adopted_again(engine_api, request_approval):
    overdue = request_approval("high")
    ApprovalRequest.objects.filter(pk=overdue.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert engine_api.get(f"/api/hitl/actions/{overdue.action_id}/approval").json()["state"] == "expired"
    assert ApprovalRequest.objects.filter(action_id=overdue.action_id).count() == 1


def test_a_persons_poll_reads_and_never_adopts(api, make_reviewer):
    legacy_action("ACT-PERSON")
    api.force_login(make_reviewer("viewer"))
    response = api.get("/api/hitl/actions/ACT-PERSON/approval")
    assert response.status_code == 404 and response.json()["detail"]
    assert not ApprovalRequest.objects.filter(action_id="ACT-PERSON").exists()
    assert events("ACT-PERSON") == []


def test_the_engines_request_after_an_adoption_names_the_requester_and_a_stricter_context(engine_api, make_reviewer, api):
    """The sweep (or the engine's own poll) adopted the action before the engine sent its
    request: the person the engine names still may not decide it, and a closed deal still
    makes it critical."""
    legacy_action("ACT-ADOPTED", "DOCUMENT.GENERATE_LOI", created_by="action-engine")
    approvals_adopt_pending()
    assert ApprovalRequest.objects.get(action_id="ACT-ADOPTED").risk_level == "high"
    response = engine_api.post(
        "/api/hitl/approval-requests",
        json.dumps({
            "action_id": "ACT-ADOPTED", "action_type": "DOCUMENT.GENERATE_LOI", "requested_by": "ann@example.com",
            "context": {"deal_stage": "closed"},
        }),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["risk_level"]) == ("pending", "critical")
    request = ApprovalRequest.objects.get(action_id="ACT-ADOPTED")
    assert "ann@example.com" in request.requested_by and "action-engine" in request.requested_by
    assert events("ACT-ADOPTED")[-1] == "hitl.request_amended"
    assert Action.objects.get(pk="ACT-ADOPTED").risk_level == "critical"

    api.force_login(make_reviewer("admin", "Ann@Example.com"))
    refused = api.post("/api/hitl/actions/ACT-ADOPTED/approve", json.dumps({"reason": "fine"}), content_type="application/json")
    assert refused.status_code == 403 and "four-eyes" in refused.json()["detail"]
    assert ApprovalRequest.objects.get(action_id="ACT-ADOPTED").state == "pending"

    # The same call again changes nothing more.
    engine_api.post(
        "/api/hitl/approval-requests",
        json.dumps({"action_id": "ACT-ADOPTED", "action_type": "DOCUMENT.GENERATE_LOI", "requested_by": "ann@example.com"}),
        content_type="application/json",
    )
    assert events("ACT-ADOPTED").count("hitl.request_amended") == 1


def test_a_vote_by_a_person_named_later_as_the_requester_no_longer_counts(engine_api, make_reviewer):
    legacy_action("ACT-VOTED", "COMMUNICATION.SEND_EMAIL", inputs={"to": "cfo@seller.example"}, created_by="action-engine")
    approvals_adopt_pending()
    ann = make_reviewer("admin", "ann@example.com")
    from accounts.selectors import actor_of

    assert approval_decide(action_id="ACT-VOTED", actor=actor_of(ann), decision="approve", reason="ok").state == "pending"
    assert len(ApprovalRequest.objects.get(action_id="ACT-VOTED").votes) == 1
    engine_api.post(
        "/api/hitl/approval-requests",
        json.dumps({"action_id": "ACT-VOTED", "action_type": "COMMUNICATION.SEND_EMAIL", "requested_by": "ann@example.com"}),
        content_type="application/json",
    )
    request = ApprovalRequest.objects.get(action_id="ACT-VOTED")
    assert request.votes == [] and not ApprovalVote.objects.filter(request=request).exists()


# --- ETag and If-None-Match ---------------------------------------------------------------


def _conditional(token: str, action_id: str, etag: str | None = None, *, path: str = "engine"):
    headers = {"HTTP_IF_NONE_MATCH": etag} if etag else {}
    return call(server_environ("GET", f"/api/hitl/actions/{action_id}/approval", query="from=test" if path == "drf" else "",
                               HTTP_AUTHORIZATION=f"Bearer {token}", **headers))


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["engine", "drf"])
def test_an_unchanged_poll_is_a_304_with_an_empty_body_until_a_decision(service_token, request_approval, people, path):
    request = request_approval("medium")
    first = _conditional(service_token, request.action_id, path=path)
    etag = first.headers["ETag"]
    again = _conditional(service_token, request.action_id, etag, path=path)
    assert (again.status, again.body, again.headers["ETag"]) == (304, b"", etag)
    approval_decide(action_id=request.action_id, decision="approve", actor=people["operator"], reason="fine")
    decided = _conditional(service_token, request.action_id, etag, path=path)
    assert decided.status == 200 and decided.json()["state"] == "approved"
    assert decided.headers["ETag"] != etag
    assert _conditional(service_token, request.action_id, decided.headers["ETag"], path=path).status == 304


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["engine", "drf"])
def test_the_etag_changes_when_an_open_request_passes_its_deadline(service_token, request_approval, monkeypatch, path):
    request = request_approval("high")
    before = _conditional(service_token, request.action_id, path=path)
    later = request.expires_at + timedelta(seconds=1)
    monkeypatch.setattr("approvals.models.timezone.now", lambda: later)  # nothing written: only time passed
    after = _conditional(service_token, request.action_id, before.headers["ETag"], path=path)
    assert after.status == 200 and after.json()["state"] == "expired"
    assert after.headers["ETag"] != before.headers["ETag"]


@pytest.mark.django_db
def test_an_unknown_action_is_404_whatever_the_if_none_match(service_token):
    answer = _conditional(service_token, "ACT-NO-SUCH", "*")
    assert answer.status == 404 and answer.json()["detail"]
