"""A first approval of a request that needs two reads as a vote on the queue: the row
stays, says how many approvals it has and waits for, and its voter is not offered Approve
again."""

import re

import pytest
from django.contrib.auth import get_user_model

from approvals.models import ApprovalRequest

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def signed_in(client, email):
    client.force_login(get_user_model().objects.get(email=email))
    return client


def row_html(html: str, action_id: str) -> str:
    match = re.search(rf'<tr id="row-[^"]+"[^>]*data-action-id="{re.escape(action_id)}".*?</tr>', html, re.S)
    assert match, action_id
    return match.group(0)


def test_a_first_vote_keeps_the_row_in_place_saying_one_of_two(client, request_approval, people):
    critical = request_approval("critical")
    signed_in(client, "ada@example.com")
    before = row_html(client.get("/").content.decode(), critical.action_id)
    assert 'data-decisions="approve reject quarantine"' in before
    assert 'data-approvals-needed="2"' in before and 'data-voters=""' in before and 'data-approver="admin"' in before

    answer = client.post(f"/actions/{critical.action_id}/decide", {"decision": "approve", "reason": "Recipient checked.", "where": "row"}, **HX)
    html = answer.content.decode()
    assert answer.status_code == 200 and "HX-Reswap" not in answer
    row = row_html(html, critical.action_id)  # the row, not its removal
    assert "1 of 2 approvals</strong>, waiting for another admin" in row
    assert 'data-decisions="reject quarantine"' in row and 'data-voted="true"' in row
    assert 'data-decision="approve"' not in row
    assert "Your approval is recorded: 1 of 2 approvals" in html
    assert ApprovalRequest.objects.get(pk=critical.pk).state == "pending"

    # The refresh says the same; the other admin is offered Approve and sees who voted.
    assert "1 of 2 approvals</strong>, waiting for another admin · approved by you" in row_html(client.get("/").content.decode(), critical.action_id)
    other = row_html(signed_in(client, "abe@example.com").get("/").content.decode(), critical.action_id)
    assert 'data-decisions="approve reject quarantine"' in other and 'data-voters="ada@example.com"' in other
    assert "approved by ada@example.com" in other
