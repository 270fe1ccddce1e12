"""A claim is a lock: while someone else reviews a request, no door decides it until they
are taken over; only an explicit POST claims; the reviewer taken over learns it in place;
and only people who may decide claim, release or decide in bulk."""

import json
import re
import threading
import time
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.selectors import actor_of
from accounts.services import api_token_create, service_account_ensure
from approvals.models import ApprovalRequest, ApprovalVote, Claim
from approvals.services.claims import claim_release, claim_renew, claim_take
from approvals.services.decisions import approval_decide, approvals_decide_many
from common.errors import Conflict
from tests.conftest import run_at_once
from zakops.models import Action, DealEvent, OutboxEvent

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
DECISIONS = {"approve": "", "reject": "No", "quarantine": "Legal must look"}


def post(client, path, body=None, **headers):
    return client.post(path, json.dumps(body or {}), content_type="application/json", **headers)


def written(action_id):
    return (
        DealEvent.objects.filter(details__action_id=action_id).count(),
        OutboxEvent.objects.filter(aggregate_id=action_id).count(),
        ApprovalRequest.objects.get(action_id=action_id).state,
        Action.objects.get(pk=action_id).status,
    )


def person(api_or_client, user):
    api_or_client.force_login(user)
    return api_or_client


# --- the decide service holds the lock ------------------------------------------------


@pytest.mark.parametrize("decision", DECISIONS)
def test_someone_elses_live_claim_refuses_a_decision_naming_who_and_since_when(decision, request_approval, people):
    request = request_approval("medium")
    claim = claim_take(action_id=request.action_id, actor=people["operator"])
    before = written(request.action_id)

    with pytest.raises(Conflict) as refused:
        approval_decide(action_id=request.action_id, actor=people["operator2"], decision=decision, reason=DECISIONS[decision])

    assert "Claimed by olu@example.com since" in refused.value.detail
    extra = refused.value.extra
    assert (extra["claimed_by"], extra["claimed_at"], extra["claim_expires_at"]) == ("olu@example.com", claim.taken_at, claim.expires_at)
    assert written(request.action_id) == before
    assert Claim.objects.get().reviewer_name == "olu@example.com"


def test_taking_over_then_deciding_works_and_the_decision_ends_the_claim(request_approval, people):
    request = request_approval("medium")
    claim_take(action_id=request.action_id, actor=people["operator"])
    claim_take(action_id=request.action_id, actor=people["operator2"], takeover=True)
    with pytest.raises(Conflict, match="Claimed by oona@example.com"):
        approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve")  # taken over
    done = approval_decide(action_id=request.action_id, actor=people["operator2"], decision="approve")
    assert done.state == "approved" and not Claim.objects.exists()
    assert DealEvent.objects.filter(event_type="hitl.claim_taken_over", details__action_id=request.action_id).count() == 1


def test_a_lapsed_claim_or_no_claim_does_not_stand_in_the_way(request_approval, people):
    lapsed, unclaimed = request_approval("medium"), request_approval("medium")
    claim_take(action_id=lapsed.action_id, actor=people["operator"])
    Claim.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert approval_decide(action_id=lapsed.action_id, actor=people["operator2"], decision="approve").state == "approved"
    assert approval_decide(action_id=unclaimed.action_id, actor=people["operator2"], decision="approve").state == "approved"
    assert not Claim.objects.exists()


def test_a_quarantine_by_the_holder_ends_their_claim_so_an_admin_decides_at_once(request_approval, people):
    request = request_approval("medium")
    claim_take(action_id=request.action_id, actor=people["operator"])
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="quarantine", reason="Legal")
    assert not Claim.objects.exists()
    assert approval_decide(action_id=request.action_id, actor=people["admin"], decision="approve", reason="Legal cleared it.").state == "approved"


def test_two_admins_each_claim_and_vote_on_a_critical_request(request_approval, people):
    request = request_approval("critical")
    claim_take(action_id=request.action_id, actor=people["admin"])
    with pytest.raises(Conflict, match="Claimed by ada@example.com"):
        approval_decide(action_id=request.action_id, actor=people["admin2"], decision="approve", reason="Checked.")
    assert approval_decide(action_id=request.action_id, actor=people["admin"], decision="approve", reason="Checked.").state == "pending"
    assert not Claim.objects.exists()  # the first vote ends the voter's claim
    with pytest.raises(Conflict, match="already approved"):
        claim_take(action_id=request.action_id, actor=people["admin"])  # a voter can not hold the second admin off
    assert claim_renew(action_id=request.action_id, actor=people["admin2"]).reviewer_name == "abe@example.com"
    assert approval_decide(action_id=request.action_id, actor=people["admin2"], decision="approve", reason="Checked.").state == "approved"
    assert ApprovalVote.objects.filter(request=request).count() == 2 and not Claim.objects.exists()


def test_an_edit_that_hands_the_request_to_admins_ends_the_editors_claim(engine, people):
    from approvals.services.requests import approval_request

    approval_request(action_id="ACT-EDC", action_type="DOCUMENT.GENERATE_LOI", inputs={"amount": 5}, requester=engine)
    claim_take(action_id="ACT-EDC", actor=people["operator"])
    with pytest.raises(Conflict, match="raised the risk"):
        approval_decide(action_id="ACT-EDC", actor=people["operator"], decision="approve", inputs={"amount": 5, "cc": "x@rival.example"})
    assert not Claim.objects.exists()
    assert approval_decide(action_id="ACT-EDC", actor=people["admin"], decision="approve", reason="Checked.").state == "pending"


def test_renewing_a_claim_someone_took_over_says_who_and_when(request_approval, people):
    request = request_approval("medium")
    claim_take(action_id=request.action_id, actor=people["operator"])
    taken = claim_take(action_id=request.action_id, actor=people["operator2"], takeover=True)
    with pytest.raises(Conflict) as refused:
        claim_renew(action_id=request.action_id, actor=people["operator"])
    assert refused.value.detail.startswith("oona@example.com took over this review at ")
    assert refused.value.extra["claimed_at"] == taken.taken_at
    assert Claim.objects.get().reviewer_name == "oona@example.com"


RACE = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@RACE
def test_a_takeover_racing_the_holders_decision_gives_one_consistent_outcome(request_approval, people):
    for _ in range(3):
        request = request_approval("medium")
        claim_take(action_id=request.action_id, actor=people["operator"])
        work = [
            lambda: approval_decide(action_id=request.action_id, actor=people["operator"], decision="approve"),
            lambda: claim_take(action_id=request.action_id, actor=people["operator2"], takeover=True),
        ]
        decided, taken = run_at_once(2, lambda i: work[i]())
        state = ApprovalRequest.objects.get(pk=request.pk).state
        if isinstance(decided, ApprovalRequest):  # the decision came first: nothing left to take over
            assert state == "approved" and isinstance(taken, Conflict), (decided, taken)
        else:  # the takeover came first: the old holder's decision is refused
            assert isinstance(taken, Claim) and isinstance(decided, Conflict) and "oona@example.com" in decided.detail
            assert state == "pending" and Claim.objects.get(request=request).reviewer_name == "oona@example.com"


@RACE
def test_a_decision_racing_a_new_claim_gives_one_consistent_outcome(request_approval, people):
    for _ in range(3):
        request = request_approval("medium")
        work = [
            lambda: approval_decide(action_id=request.action_id, actor=people["operator2"], decision="approve"),
            lambda: claim_take(action_id=request.action_id, actor=people["operator"]),
        ]
        decided, claimed = run_at_once(2, lambda i: work[i]())
        state = ApprovalRequest.objects.get(pk=request.pk).state
        if isinstance(decided, ApprovalRequest):
            assert state == "approved" and isinstance(claimed, Conflict)
            assert not Claim.objects.filter(request=request).exists()
        else:
            assert isinstance(claimed, Claim) and isinstance(decided, Conflict) and state == "pending"


def _lock_waiters() -> int:
    """Connections of this test database waiting for a row lock."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@RACE
@pytest.mark.postgresql
def test_leaving_the_page_as_the_decision_commits_never_deadlocks(request_approval, people):
    """The holder decides and their page is left at the same moment: the decision ends
    the claim, the release ends it too. Both take their locks in the one order, so one
    waits for the other and neither fails. (A third connection holds the request's row
    so that both are in flight at once, the decision first.)"""
    request = request_approval("medium")
    claim_take(action_id=request.action_id, actor=people["operator"])
    held, go = threading.Event(), threading.Event()
    results = {}

    def hold_the_request():
        with transaction.atomic():
            ApprovalRequest.objects.select_for_update().get(pk=request.pk)
            held.set()
            go.wait(30)
        connections.close_all()

    def run(name, work):
        try:
            results[name] = work()
        except Exception as exc:  # asserted below
            results[name] = exc
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_request)
    holder.start()
    held.wait(10)
    decide = threading.Thread(target=run, args=("decide", lambda: approval_decide(
        action_id=request.action_id, actor=people["operator"], decision="approve"
    )))
    decide.start()
    _until(lambda: _lock_waiters() == 1)
    release = threading.Thread(target=run, args=("release", lambda: claim_release(
        action_id=request.action_id, actor=people["operator"]
    )))
    release.start()
    _until(lambda: _lock_waiters() == 2)
    go.set()
    for thread in (holder, decide, release):
        thread.join(30)

    assert isinstance(results["decide"], ApprovalRequest) and results["decide"].state == "approved", results
    assert results["release"] is False, results  # the decision had ended the claim already
    assert ApprovalRequest.objects.get(pk=request.pk).state == "approved"
    assert not Claim.objects.filter(request=request).exists()


# --- every door -------------------------------------------------------------------------


@pytest.mark.parametrize("decision", DECISIONS)
def test_the_api_answers_409_with_the_claim_then_decides_after_a_takeover(decision, api, make_reviewer, request_approval, people):
    request = request_approval("medium")
    claim = claim_take(action_id=request.action_id, actor=people["operator"])
    client = person(api, make_reviewer("operator", "carl@example.com"))
    path = f"/api/hitl/actions/{request.action_id}/{decision}"

    refused = post(client, path, {"reason": DECISIONS[decision]})
    assert refused.status_code == 409
    body = refused.json()
    assert "olu@example.com" in body["detail"] and body["claimed_by"] == "olu@example.com"
    assert body["claimed_at"].startswith(claim.taken_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert body["claim_expires_at"].startswith(claim.expires_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"

    assert post(client, f"/api/hitl/actions/{request.action_id}/claim", {"takeover": True}).status_code == 200
    assert post(client, path, {"reason": DECISIONS[decision]}).status_code == 200
    assert ApprovalRequest.objects.get(pk=request.pk).state != "pending"


def test_bulk_decisions_report_a_claimed_row_and_decide_the_rest(api, make_reviewer, request_approval, people):
    free, held = request_approval("medium"), request_approval("medium")
    claim_take(action_id=held.action_id, actor=people["operator"])
    client = person(api, make_reviewer("operator", "carl@example.com"))
    answer = post(client, "/api/hitl/decisions", {"decisions": [
        {"action_id": free.action_id, "decision": "approve"},
        {"action_id": held.action_id, "decision": "reject", "reason": "no"},
    ]})
    assert answer.status_code == 200
    decided, claimed = answer.json()["outcomes"]
    assert decided["outcome"] == "decided"
    assert claimed["outcome"] == "claimed" and "claimed by olu@example.com" in claimed["detail"].lower()
    assert claimed["conflict"]["claimed_by"] == "olu@example.com" and claimed["conflict"]["claim_expires_at"]
    assert ApprovalRequest.objects.get(pk=held.pk).state == "pending"


def test_the_detail_panel_refuses_and_offers_the_takeover(client, make_reviewer, request_approval, people):
    request = request_approval("medium")
    claim_take(action_id=request.action_id, actor=people["operator"])
    person(client, make_reviewer("operator", "carl@example.com"))
    response = client.post(f"/actions/{request.action_id}/decide", {"decision": "approve"}, **HX)
    body = response.content.decode()
    assert response.status_code == 200 and 'id="decision-panel"' in body
    assert "Not decided: Claimed by olu@example.com since" in body and 'id="takeover"' in body
    assert 'value="approve"' not in body
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"


def test_a_queue_row_keeps_a_claimed_request_and_says_who_holds_it(client, make_reviewer, request_approval, people):
    request = request_approval("medium")
    claim_take(action_id=request.action_id, actor=people["operator"])
    person(client, make_reviewer("operator", "carl@example.com"))
    response = client.post(f"/actions/{request.action_id}/decide", {"decision": "reject", "reason": "No", "where": "row"}, **HX)
    body = response.content.decode()
    assert response["HX-Reswap"] == "none"  # the row stays, with its claim shown
    assert "not rejected" in body and "Claimed by olu@example.com" in body
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"


def test_the_bulk_page_lists_a_claimed_row_and_leaves_it_in_the_queue(client, make_reviewer, request_approval, people):
    free, held = request_approval("medium"), request_approval("medium")
    claim_take(action_id=held.action_id, actor=people["operator"])
    person(client, make_reviewer("operator", "carl@example.com"))
    response = client.post("/decisions/bulk", {"decision": "approve", "action_ids": [free.action_id, held.action_id]}, **HX)
    body = response.content.decode()
    outcomes = dict(re.findall(r'data-action-id="([^"]+)" data-outcome="([^"]+)"', body))
    assert outcomes == {free.action_id: "decided", held.action_id: "claimed"}
    assert "Claimed by olu@example.com" in body
    assert f'id="row-{held.pk}" hx-swap-oob="delete"' not in body
    assert ApprovalRequest.objects.get(pk=held.pk).state == "pending"


def test_approvals_decide_many_reports_claimed_rows(request_approval, people):
    held = request_approval("medium")
    claim_take(action_id=held.action_id, actor=people["operator"])
    [outcome] = approvals_decide_many(actor=people["operator2"], decisions=[(held.action_id, "approve", "")])
    assert outcome.outcome == "claimed" and outcome.conflict["claimed_by"] == "olu@example.com"


# --- only an explicit POST claims -------------------------------------------------------


def test_opening_the_detail_page_claims_nothing(client, make_reviewer, request_approval):
    request = request_approval("medium")
    person(client, make_reviewer("operator", "carl@example.com"))
    response = client.get(f"/actions/{request.action_id}/")
    assert response.status_code == 200 and 'value="approve"' in response.content.decode()
    assert not Claim.objects.exists()
    assert ApprovalRequest.objects.get(pk=request.pk).updated_at == request.updated_at


def test_the_page_claims_by_a_post_with_the_csrf_token(make_reviewer, request_approval):
    request = request_approval("medium")
    client = person(Client(enforce_csrf_checks=True), make_reviewer("operator", "carl@example.com"))
    page = client.get(f"/actions/{request.action_id}/").content.decode()
    assert 'hx-post="/actions/%s/claim"' % request.action_id in page and 'hx-trigger="load"' in page

    assert client.post(f"/actions/{request.action_id}/claim", **HX).status_code == 403
    assert not Claim.objects.exists()

    token = client.cookies["csrftoken"].value
    assert client.post(f"/actions/{request.action_id}/claim", HTTP_X_CSRFTOKEN=token, **HX).status_code == 204
    assert Claim.objects.get().reviewer_name == "carl@example.com"
    assert client.post(f"/actions/{request.action_id}/release", HTTP_X_CSRFTOKEN=token).status_code == 204
    assert not Claim.objects.exists()


def test_the_page_learns_in_place_that_its_review_was_taken_over(client, make_reviewer, request_approval, people):
    request = request_approval("medium")
    person(client, make_reviewer("operator", "carl@example.com"))
    assert client.post(f"/actions/{request.action_id}/claim", **HX).status_code == 204
    page = client.get(f"/actions/{request.action_id}/").content.decode()
    assert 'hx-trigger="every' in page  # the open page renews the claim, and so hears of a takeover
    claim_take(action_id=request.action_id, actor=people["operator"], takeover=True)

    renewal = client.post(f"/actions/{request.action_id}/claim", {"renew": "1"}, **HX)
    body = renewal.content.decode()
    assert renewal.status_code == 200
    assert (renewal["HX-Retarget"], renewal["HX-Reswap"]) == ("#decision-panel", "outerHTML")
    assert "olu@example.com took over this review at" in body and 'id="takeover"' in body
    assert 'value="approve"' not in body
    decided = client.post(f"/actions/{request.action_id}/decide", {"decision": "approve"}, **HX).content.decode()
    assert "Claimed by olu@example.com since" in decided
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"


def test_a_voter_is_not_asked_to_claim_again(client, make_reviewer, request_approval, people):
    request = request_approval("critical")
    ada = make_reviewer("admin", "ada2@example.com")
    approval_decide(action_id=request.action_id, actor=actor_of(ada), decision="approve", reason="Checked.")
    page = person(client, ada).get(f"/actions/{request.action_id}/").content.decode()
    assert "review-claim" not in page and f"/actions/{request.action_id}/claim" not in page


# --- who may claim, release and decide in bulk -------------------------------------------


@pytest.fixture
def outsiders(make_reviewer):
    service = service_account_ensure(name="action-engine")
    viewer = APIClient()
    viewer.force_login(make_reviewer("viewer", "val@example.com"))
    viewer_token = APIClient()
    viewer_token.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=make_reviewer('viewer'), name='t')[1]}")
    engine = APIClient()
    engine.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=service, name='t')[1]}")
    return {"viewer": viewer, "viewer token": viewer_token, "service": engine}


@pytest.mark.parametrize("caller", ["viewer", "viewer token", "service"])
@pytest.mark.parametrize("path", ["claim", "release", "decisions", "approve"])
def test_viewers_and_service_accounts_get_403_and_nothing_changes(caller, path, outsiders, request_approval, people):
    request = request_approval("medium")
    claim_take(action_id=request.action_id, actor=people["operator"])
    url = "/api/hitl/decisions" if path == "decisions" else f"/api/hitl/actions/{request.action_id}/{path}"
    body = {"decisions": [{"action_id": request.action_id, "decision": "approve"}]} if path == "decisions" else {}
    before = written(request.action_id)

    response = post(outsiders[caller], url, body)

    assert response.status_code == 403, response.json()
    assert ("Viewers" if caller.startswith("viewer") else "Service accounts") in response.json()["detail"]
    assert written(request.action_id) == before and Claim.objects.get().reviewer_name == "olu@example.com"


@pytest.mark.parametrize("kind", ["service", "viewer"])
def test_the_services_refuse_them_too(kind, request_approval, people, engine):
    from approvals.services.claims import claim_release
    from common.errors import NotAllowed

    actor = engine if kind == "service" else people["viewer"]
    request = request_approval("medium")
    for call in (
        lambda: claim_take(action_id=request.action_id, actor=actor),
        lambda: claim_renew(action_id=request.action_id, actor=actor),
        lambda: claim_release(action_id=request.action_id, actor=actor),
        lambda: approvals_decide_many(actor=actor, decisions=[(request.action_id, "approve", "")]),
    ):
        with pytest.raises(NotAllowed):
            call()


# --- Idempotency-Key on claim, release and decisions -------------------------------------


@pytest.mark.parametrize("path", ["claim", "release", "decisions"])
def test_the_same_key_replays_and_another_body_is_422(path, api, make_reviewer, request_approval):
    request, other = request_approval("medium"), request_approval("medium")
    client = person(api, make_reviewer("operator", "carl@example.com"))
    if path == "release":
        post(client, f"/api/hitl/actions/{request.action_id}/claim")
    url = "/api/hitl/decisions" if path == "decisions" else f"/api/hitl/actions/{request.action_id}/{path}"
    body = {"decisions": [{"action_id": request.action_id, "decision": "approve"}]} if path == "decisions" else {}

    first = post(client, url, body, HTTP_IDEMPOTENCY_KEY="k-1")
    events = DealEvent.objects.count()
    again = post(client, url, body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert DealEvent.objects.count() == events
    if path == "decisions":
        assert first.json()["outcomes"][0]["outcome"] == "decided"
        assert post(client, url, body).json()["outcomes"][0]["outcome"] == "conflict"  # without the key: a new attempt
    if path == "release":
        assert first.json()["released"] is True and not Claim.objects.exists()

    if path == "decisions":
        another = {"decisions": [{"action_id": other.action_id, "decision": "approve"}]}
    else:
        another = {"takeover": True} if path == "claim" else {"note": 1}
    reused = post(client, url, another, HTTP_IDEMPOTENCY_KEY="k-1")
    assert reused.status_code == 422 and "different request" in reused.json()["detail"]
    assert ApprovalRequest.objects.get(pk=other.pk).state == "pending"


def test_the_schema_lists_the_key_and_422_for_claim_release_and_decisions(engine_api):
    schema = engine_api.get("/api/hitl/schema/").json()
    for path in ("/api/hitl/actions/{action_id}/claim", "/api/hitl/actions/{action_id}/release", "/api/hitl/decisions"):
        operation = schema["paths"][path]["post"]
        assert {"403", "422"} <= set(operation["responses"]), path
        assert "Idempotency-Key" in {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}, path
    assert "claimed" in schema["components"]["schemas"]["OutcomeEnum"]["enum"]
