"""The reviewer pages through Django's test client: what a reviewer sees and may do, and
that the server refuses what the page does not offer."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.services.decisions import approval_decide
from checkpoints.services import checkpoint_save
from zakops.models import Action, DealEvent

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def signed_in(client, user):
    client.force_login(user)
    return client


def row_ids(html: str) -> list[str]:
    return re.findall(r'data-action-id="([^"]+)"', html)


def offered(html: str, action_id: str) -> str:
    """The decisions a row offers, as its data-decisions attribute says."""
    match = re.search(rf'data-action-id="{re.escape(action_id)}"[^>]*?data-decisions="([^"]*)"', html, re.S)
    return match.group(1) if match else None


@pytest.mark.parametrize("path", ["/", "/actions/ACT-1/", "/decisions/bulk", "/actions/ACT-1/decide"])
def test_every_page_needs_a_signed_in_person(client, path):
    response = client.get(path) if not path.endswith(("bulk", "decide")) else client.post(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_queue_lists_pending_requests_critical_first_with_what_each_person_may_do(client, make_reviewer, request_approval):
    medium, critical = request_approval("medium"), request_approval("critical")
    html = signed_in(client, make_reviewer("operator", "olu@example.com")).get("/").content.decode()
    assert row_ids(html)[:2] == [critical.action_id, medium.action_id]
    assert offered(html, medium.action_id) == "approve reject quarantine"
    assert offered(html, critical.action_id) == ""  # an operator on a critical request
    assert "Only an admin can decide a critical request." in html
    assert "critical 1" in html and "medium 1" in html  # counts per level

    admin_html = signed_in(Client(), make_reviewer("admin")).get("/").content.decode()
    assert offered(admin_html, critical.action_id) == "approve reject quarantine"


def test_a_viewer_sees_no_buttons_and_the_server_refuses_anyway(client, make_reviewer, request_approval):
    request = request_approval("medium")
    signed_in(client, make_reviewer("viewer"))
    html = client.get("/").content.decode()
    assert offered(html, request.action_id) == "" and 'id="bulk-form"' not in html
    response = client.post(f"/actions/{request.action_id}/decide", {"decision": "approve", "where": "row"}, **HX)
    assert response["HX-Reswap"] == "none"
    assert "Viewers can not decide" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"


def test_the_requester_is_offered_nothing_on_their_own_request(client, make_reviewer, request_approval):
    rita = make_reviewer("admin", "rita@example.com")
    request = request_approval("medium", requested_by="rita@example.com")
    html = signed_in(client, rita).get("/").content.decode()
    assert offered(html, request.action_id) == ""
    assert "four-eyes" in html


def test_filters_live_in_the_url_and_bad_values_are_ignored(client, make_reviewer, request_approval):
    medium, high = request_approval("medium"), request_approval("high")
    signed_in(client, make_reviewer("admin"))
    assert row_ids(client.get("/", {"risk_level": "high"}).content.decode()) == [high.action_id]
    assert row_ids(client.get("/", {"action_type": "communication.draft_email"}).content.decode()) == [medium.action_id]
    assert row_ids(client.get("/", {"q": high.action_id}).content.decode()) == [high.action_id]
    response = client.get("/", {"risk_level": "extreme", "page": "abc", "tab": "nope"})
    assert response.status_code == 200 and set(row_ids(response.content.decode())) == {medium.action_id, high.action_id}


def test_quarantined_requests_have_their_own_tab_for_admins(client, make_reviewer, request_approval, people):
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["admin"], decision="quarantine", reason="Check with legal")
    signed_in(client, make_reviewer("admin", "abe2@example.com"))
    assert request.action_id not in row_ids(client.get("/").content.decode())
    assert row_ids(client.get("/", {"tab": "quarantined"}).content.decode()) == [request.action_id]
    operator = signed_in(Client(), make_reviewer("operator"))
    html = operator.get("/", {"tab": "quarantined"}).content.decode()
    assert request.action_id not in row_ids(html) and ">Quarantined<" not in html  # operators get the pending tab


def test_the_decided_tab_says_who_decided_what_when_and_why(client, make_reviewer, request_approval, people):
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="reject", reason="Wrong recipient")
    html = signed_in(client, make_reviewer("viewer")).get("/", {"tab": "decided"}).content.decode()
    assert row_ids(html) == [request.action_id]
    assert "olu@example.com" in html and "Wrong recipient" in html and "rejected" in html


def test_approving_from_a_row_removes_it_and_says_so(client, make_reviewer, request_approval):
    request = request_approval("medium")
    signed_in(client, make_reviewer("operator"))
    response = client.post(f"/actions/{request.action_id}/decide", {"decision": "approve", "reason": "", "where": "row"}, **HX)
    body = response.content.decode()
    assert response.status_code == 200 and "<tr" not in body  # the row is swapped for nothing
    assert 'hx-swap-oob="afterbegin"' in body and "Approved:" in body
    assert ApprovalRequest.objects.get(pk=request.pk).state == "approved"
    assert Action.objects.get(pk=request.action_id).status == "QUEUED"


def test_a_conflict_is_shown_in_place_with_who_what_and_when(client, make_reviewer, request_approval, people):
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator2"], decision="approve", reason="Looks right")
    signed_in(client, make_reviewer("operator"))
    response = client.post(f"/actions/{request.action_id}/decide", {"decision": "reject", "reason": "No", "where": "row"}, **HX)
    body = response.content.decode()
    assert response.status_code == 200 and "HX-Reswap" not in response
    assert 'class="row conflict"' in body and "Already approved by oona@example.com at" in body and "Looks right" in body


def test_a_reject_without_a_reason_is_refused_and_the_row_stays(client, make_reviewer, request_approval):
    request = request_approval("medium")
    signed_in(client, make_reviewer("operator"))
    response = client.post(f"/actions/{request.action_id}/decide", {"decision": "reject", "reason": "  ", "where": "row"}, **HX)
    assert response["HX-Reswap"] == "none" and "a reason is required" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"


def test_decisions_need_the_csrf_token(make_reviewer, request_approval):
    request = request_approval("medium")
    client = signed_in(Client(enforce_csrf_checks=True), make_reviewer("operator"))
    assert client.post(f"/actions/{request.action_id}/decide", {"decision": "approve"}).status_code == 403
    assert client.post("/decisions/bulk", {"decision": "approve", "action_ids": [request.action_id]}).status_code == 403
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"


def test_the_detail_panel_decides_and_then_shows_the_decision(client, make_reviewer, request_approval):
    request = request_approval("high")
    signed_in(client, make_reviewer("operator", "olu@example.com"))
    response = client.post(f"/actions/{request.action_id}/decide", {"decision": "quarantine", "reason": "Legal must look"}, **HX)
    body = response.content.decode()
    assert 'id="decision-panel"' in body and "Done:" in body and "quarantined" in body
    assert "Only an admin decides it now." in body
    assert 'value="approve"' not in body  # an operator may not decide a quarantined request


@pytest.mark.parametrize("where", ["row", "panel"])
def test_a_single_decision_from_the_page_enters_as_the_api_s_does_not_as_a_batch(where, client, make_reviewer, request_approval, monkeypatch):
    """The same decision enters by the same service whichever door it came through: the
    page's one decision is approval_decide's, as the API's is; only bulk decides a batch."""
    import approvals.views

    def batch(**kwargs):
        raise AssertionError("a single decision went through the batch service")

    monkeypatch.setattr(approvals.views, "approvals_decide_many", batch)
    request = request_approval("medium")
    signed_in(client, make_reviewer("operator", "olu@example.com"))
    response = client.post(f"/actions/{request.action_id}/decide", {"decision": "approve", "where": where}, **HX)
    assert response.status_code == 200 and "Approved" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=request.pk).state == "approved"


def test_bulk_decides_each_row_on_its_own_and_lists_every_outcome(client, make_reviewer, request_approval, people):
    fine, taken, critical = request_approval("medium"), request_approval("medium"), request_approval("critical")
    approval_decide(action_id=taken.action_id, actor=people["operator2"], decision="approve")
    signed_in(client, make_reviewer("operator", "olu@example.com"))
    response = client.post("/decisions/bulk", {
        "decision": "approve", "reason": "Batch checked", "action_ids": [fine.action_id, taken.action_id, critical.action_id, "ACT-NOPE"],
    }, **HX)
    body = response.content.decode()
    outcomes = dict(re.findall(r'data-action-id="([^"]+)" data-outcome="([^"]+)"', body))
    assert outcomes == {fine.action_id: "decided", taken.action_id: "conflict", critical.action_id: "refused", "ACT-NOPE": "missing"}
    assert "Already approved by oona@example.com" in body and "Only an admin can decide a critical request." in body
    assert ApprovalRequest.objects.get(pk=fine.pk).reason == "Batch checked"
    assert ApprovalRequest.objects.get(pk=critical.pk).state == "pending"
    assert f'id="row-{fine.pk}" hx-swap-oob="delete"' in body


def test_a_bulk_reject_needs_a_reason_and_a_selection(client, make_reviewer, request_approval):
    request = request_approval("medium")
    signed_in(client, make_reviewer("operator"))
    assert "needs a reason" in client.post("/decisions/bulk", {"decision": "reject", "action_ids": [request.action_id]}).content.decode()
    assert "Select at least one row" in client.post("/decisions/bulk", {"decision": "approve"}).content.decode()
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"


def test_an_unchanged_queue_answers_204_and_a_changed_one_the_new_rows(client, make_reviewer, request_approval):
    request_approval("medium")
    signed_in(client, make_reviewer("operator"))
    html = client.get("/").content.decode()
    version = re.search(r'data-version="([0-9a-f]+)"', html).group(1)
    unchanged = client.get("/", {"v": version}, **HX)
    assert unchanged.status_code == 204 and unchanged.content == b""
    assert "HX-Request" in unchanged["Vary"]
    new = request_approval("high")
    changed = client.get("/", {"v": version}, **HX)
    assert changed.status_code == 200 and new.action_id in row_ids(changed.content.decode())
    assert "<html" not in changed.content.decode()  # the results partial only


def test_the_queue_notices_a_deadline_passing(client, make_reviewer, request_approval):
    request = request_approval("medium")
    signed_in(client, make_reviewer("operator"))
    version = re.search(r'data-version="([0-9a-f]+)"', client.get("/").content.decode()).group(1)
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    from approvals import selectors

    selectors._queue_version = (version, timezone.now() - timedelta(seconds=1))  # as if this deadline was the next one
    refreshed = client.get("/", {"v": version}, **HX)
    assert refreshed.status_code == 200
    html = refreshed.content.decode()
    assert "expired" in html and offered(html, request.action_id) == ""


def test_the_detail_page_shows_the_action_breakdown_precedent_checkpoints_and_history(client, make_reviewer, request_approval, people):
    earlier = request_approval("critical")
    approval_decide(action_id=earlier.action_id, actor=people["admin"], decision="reject", reason="Competitor address")
    request = request_approval("critical")
    checkpoint = checkpoint_save(action_id=request.action_id, checkpoint_name="before_send", checkpoint_data={"step": 2, "note": "<b>bold</b>"})
    signed_in(client, make_reviewer("viewer"))
    html = client.get(f"/actions/{request.action_id}/").content.decode()
    assert "Base for level critical" in html and "External communication: to includes cfo@seller.example" in html
    assert "+0.10" in html and "1.00" in html
    assert "0 approved" not in html and "<strong>1</strong> rejected" in html and "Competitor address" in html
    assert "before_send" in html and "approval_gate" not in html
    assert "hitl.approval_requested" in html
    data = client.get(f"/actions/{request.action_id}/checkpoints/{checkpoint.id}/data").content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt;" in data and "<b>" not in data
    assert client.get(f"/actions/OTHER/checkpoints/{checkpoint.id}/data").status_code == 404


def test_history_is_newest_first(client, make_reviewer, request_approval, people):
    request = request_approval("medium")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="quarantine", reason="Look")
    html = signed_in(client, make_reviewer("viewer")).get(f"/actions/{request.action_id}/").content.decode()
    assert html.index("hitl.escalated") < html.index("hitl.approval_requested")


def test_hostile_inputs_and_titles_are_escaped(client, make_reviewer, engine):
    from approvals.services.requests import approval_request

    approval_request(
        action_id="ACT-XSS", action_type="COMMUNICATION.DRAFT_EMAIL", requester=engine,
        title='<script>alert(1)</script>', inputs={"body": '<img src=x onerror="alert(2)">'},
    )
    signed_in(client, make_reviewer("operator"))
    for html in (client.get("/").content.decode(), client.get("/actions/ACT-XSS/").content.decode()):
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<img src=x" not in html
    assert "&lt;img src=x onerror=" in client.get("/actions/ACT-XSS/").content.decode()


def test_an_unknown_action_is_a_404_page(client, make_reviewer):
    assert signed_in(client, make_reviewer("viewer")).get("/actions/ACT-NOPE/").status_code == 404


@pytest.mark.parametrize("path", ["/actions/A%00B/", "/?q=a%00b", "/?deal=%00", "/?action_type=x%00"])
def test_a_nul_in_a_page_address_is_no_database_error(client, make_reviewer, request_approval, path):
    request_approval("medium")
    response = signed_in(client, make_reviewer("operator")).get(path)
    assert response.status_code in (200, 404)


def test_a_nul_in_a_posted_reason_or_id_is_refused_not_stored(client, make_reviewer, request_approval):
    request = request_approval("medium")
    signed_in(client, make_reviewer("operator"))
    response = client.post(f"/actions/{request.action_id}/decide", {"decision": "reject", "reason": "a\x00b", "where": "row"}, **HX)
    assert response.status_code == 200 and response["HX-Reswap"] == "none"
    bulk = client.post("/decisions/bulk", {"decision": "approve", "action_ids": ["A\x00B"]}, **HX)
    assert bulk.status_code == 200
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"


def test_pages_send_a_strict_content_security_policy(client, make_reviewer, request_approval):
    request_approval("medium")
    response = signed_in(client, make_reviewer("operator")).get("/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script>" not in response.content.decode() and " style=" not in response.content.decode()


def test_decided_events_are_written_once_from_the_pages(client, make_reviewer, request_approval):
    request = request_approval("medium")
    signed_in(client, make_reviewer("operator"))
    for _ in range(2):
        client.post(f"/actions/{request.action_id}/decide", {"decision": "approve", "where": "row"}, **HX)
    assert DealEvent.objects.filter(details__action_id=request.action_id, event_type="hitl.approved").count() == 1
