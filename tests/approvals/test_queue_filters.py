"""The queue's filters through Django's test client: each narrows the rows as a reviewer
expects, every value of every filter (hostile ones too) answers a page, never a 500."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from approvals.models import ApprovalRequest, Claim
from approvals.services.claims import claim_take
from approvals.services.decisions import approval_decide
from zakops.models import Deal

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr id="row-[^"]+" class="row[^"]*"[^>]*?data-action-id="([^"]+)"', html, re.S)


@pytest.fixture
def deals(db):
    return {
        "DEMO-0002": Deal.objects.create(deal_id="DEMO-0002", canonical_name="Borealis Holdings", display_name="Borealis"),
        "DEMO-0003": Deal.objects.create(deal_id="DEMO-0003", canonical_name="Cobalt Mining Ltd"),
    }


def signed_in_as(client, email):
    client.force_login(get_user_model().objects.get(email=email))
    return client


@pytest.fixture
def admin_client(client, people):
    return signed_in_as(client, "ada@example.com")


@pytest.fixture
def operator_client(client, people):
    return signed_in_as(client, "olu@example.com")


def test_the_deal_filter_takes_an_id_or_a_name_in_any_case_and_in_part(admin_client, request_approval, deals):
    borealis = request_approval("medium", deal_id="DEMO-0002")
    cobalt = request_approval("high", deal_id="DEMO-0003")
    request_approval("medium")  # no deal
    for typed, expected in [
        ("DEMO-0002", [borealis]), ("demo-0002", [borealis]), ("0003", [cobalt]), ("DEMO", [cobalt, borealis]),
        ("boreal", [borealis]), ("COBALT MINING", [cobalt]), ("holdings", [borealis]), ("nobody", []),
    ]:
        response = admin_client.get("/", {"deal": typed})
        assert response.status_code == 200, typed
        assert row_ids(response.content.decode()) == [r.action_id for r in expected], typed


def test_the_action_type_filter_matches_a_prefix(admin_client, request_approval):
    draft, loi, send = request_approval("medium"), request_approval("high"), request_approval("critical")
    assert draft.action_type == "COMMUNICATION.DRAFT_EMAIL" and loi.action_type == "DOCUMENT.GENERATE_LOI"
    assert row_ids(admin_client.get("/", {"action_type": "DOCUMENT"}).content.decode()) == [loi.action_id]
    assert row_ids(admin_client.get("/", {"action_type": "communication."}).content.decode()) == [send.action_id, draft.action_id]
    assert row_ids(admin_client.get("/", {"action_type": "document.generate_loi"}).content.decode()) == [loi.action_id]
    assert row_ids(admin_client.get("/", {"action_type": "GENERATE"}).content.decode()) == []  # a prefix, not any part


HOSTILE = [
    "%", "_", "%%", "\\", "'", '"', "' OR 1=1 --", "\x00", "a\x00b", "😀", "ＤＥＭＯ", "x" * 300,
    "<script>", "[", "(", ".*", "$1", " ", "\t", "null", "None", "0",
]


@pytest.mark.parametrize("name", ["deal", "action_type", "q", "risk_level", "claim", "sort", "decidable", "tab", "page"])
def test_no_value_of_any_filter_is_a_500(admin_client, request_approval, deals, name):
    request_approval("medium", deal_id="DEMO-0002")
    for value in HOSTILE:
        for headers in ({}, HX):
            response = admin_client.get("/", {name: value}, **headers)
            assert response.status_code == 200, (name, value)
    for raw in ("%ED%A0%80", "%FF%FE", "%C0%80", "%00"):  # a lone surrogate, bytes that are no UTF-8, NUL
        assert admin_client.get(f"/?{name}={raw}").status_code == 200, (name, raw)
    if name in ("deal", "action_type", "q"):  # % is a plain character, no wildcard
        assert row_ids(admin_client.get("/", {name: "%"}).content.decode()) == []


def test_i_can_decide_hides_what_the_reviewer_may_not_decide(operator_client, request_approval, people):
    mine = request_approval("medium", requested_by="olu@example.com")  # four-eyes
    spelled = request_approval("medium", requested_by="Olu <OLU@example.com>")  # the same person, otherwise spelled
    critical = request_approval("critical")  # an operator may not
    held = request_approval("medium")
    claim_take(action_id=held.action_id, actor=people["operator2"])  # someone else is reviewing it
    free = request_approval("high")
    everything = row_ids(operator_client.get("/").content.decode())
    assert set(everything) == {r.action_id for r in (mine, spelled, critical, held, free)}

    html = operator_client.get("/", {"decidable": "1"}).content.decode()
    assert row_ids(html) == [free.action_id]
    assert 'id="id_decidable" value="1" checked' in html

    claim_take(action_id=free.action_id, actor=people["operator"])
    html = operator_client.get("/", {"decidable": "1"}).content.decode()
    assert row_ids(html) == [free.action_id]  # the reviewer's own claim does not hide it


def test_i_can_decide_for_an_admin_keeps_critical_and_quarantined(client, request_approval, people):
    critical = request_approval("critical")
    quarantined = request_approval("high")
    approval_decide(action_id=quarantined.action_id, actor=people["operator"], decision="quarantine", reason="Odd counterparty.")
    signed_in_as(client, "abe@example.com")
    assert row_ids(client.get("/", {"decidable": "1"}).content.decode()) == [critical.action_id]
    assert row_ids(client.get("/", {"decidable": "1", "tab": "quarantined"}).content.decode()) == [quarantined.action_id]


def test_a_viewer_who_asks_for_what_they_can_decide_gets_nothing(client, make_reviewer, request_approval):
    request_approval("medium")
    client.force_login(make_reviewer("viewer"))
    response = client.get("/", {"decidable": "1"})
    assert response.status_code == 200 and row_ids(response.content.decode()) == []


def test_unclaimed_and_mine(operator_client, request_approval, people):
    by_me, by_other, free = request_approval("medium"), request_approval("medium"), request_approval("medium")
    lapsed = request_approval("medium")
    claim_take(action_id=by_me.action_id, actor=people["operator"])
    claim_take(action_id=by_other.action_id, actor=people["operator2"])
    claim_take(action_id=lapsed.action_id, actor=people["operator2"])
    Claim.objects.filter(request=lapsed).update(expires_at=timezone.now() - timedelta(seconds=1))  # no claim any more

    assert row_ids(operator_client.get("/", {"claim": "mine"}).content.decode()) == [by_me.action_id]
    assert row_ids(operator_client.get("/", {"claim": "unclaimed"}).content.decode()) == [free.action_id, lapsed.action_id]


def test_sort_by_deadline_risk_or_age(admin_client, request_approval):
    old_medium, new_critical, mid_high = request_approval("medium"), request_approval("critical"), request_approval("high")
    now = timezone.now()
    for request, age, left in ((old_medium, 3, 20), (new_critical, 1, 3), (mid_high, 2, 1)):
        ApprovalRequest.objects.filter(pk=request.pk).update(created_at=now - timedelta(hours=age), expires_at=now + timedelta(hours=left))
    ids = {r.action_id: name for r, name in ((old_medium, "medium"), (new_critical, "critical"), (mid_high, "high"))}

    def order(**params):
        return [ids[i] for i in row_ids(admin_client.get("/", params).content.decode())]

    assert order() == ["critical", "high", "medium"]
    assert order(sort="risk") == ["critical", "high", "medium"]
    assert order(sort="deadline") == ["high", "critical", "medium"]
    assert order(sort="age") == ["medium", "high", "critical"]


def test_every_filter_is_kept_in_the_page_links_and_the_refresh(admin_client, request_approval):
    request_approval("medium")
    html = admin_client.get(
        "/", {"deal": "x", "action_type": "DOCUMENT", "q": "y", "decidable": "1", "claim": "unclaimed", "sort": "deadline"}
    ).content.decode()
    refresh = re.search(r'hx-get="/\?([^"]+)" hx-trigger="every 4s"', html).group(1).replace("&amp;", "&")
    for part in ("action_type=DOCUMENT", "deal=x", "q=y", "decidable=1", "claim=unclaimed", "sort=deadline"):
        assert part in refresh, part
    assert '<option value="deadline" selected>' in html and '<option value="unclaimed" selected>' in html
