"""The detail page through Django's test client: its place in the queue it was opened
from, the History refreshed with the panel, the approve form's reason, and the edit of
the inputs as fields with its diff before the approval is sent."""

import html
import re

import pytest

from approvals.models import ApprovalRequest
from approvals.services.requests import approval_request
from common.errors import InvalidInput
from zakops.models import Action, DealEvent

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def link(body: str, element_id: str) -> str | None:
    match = re.search(rf'<a href="([^"]*)" id="{element_id}"', body)
    return html.unescape(match.group(1)) if match else None


def row_ids_of(body: str) -> list[str]:
    return re.findall(r'<tr id="row-[^"]+" class="row[^"]*"[^>]*?data-action-id="([^"]+)"', body, re.S)


def loi(engine, action_id, inputs, title="LOI"):
    request, _ = approval_request(
        action_id=action_id, action_type="DOCUMENT.GENERATE_LOI", inputs=inputs, requester=engine, title=title
    )
    return request


@pytest.fixture
def operator(client, people):
    client.force_login(_user(people["operator"]))
    return client


def _user(actor):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(email=actor.name)


# --- the queue it was opened from ---------------------------------------------------------


def test_the_detail_page_knows_the_queue_s_filters_its_neighbours_and_the_way_back(operator, request_approval):
    critical = request_approval("critical")
    first, second, third = (request_approval("medium") for _ in range(3))
    high = request_approval("high")  # filtered out by risk_level=medium

    body = operator.get(f"/actions/{second.action_id}/?risk_level=medium&tab=pending&page=1").content.decode()
    assert link(body, "queue-back") == f"/?risk_level=medium&selected={second.action_id}"
    assert link(body, "queue-previous") == f"/actions/{first.action_id}/?risk_level=medium"
    assert link(body, "queue-next") == f"/actions/{third.action_id}/?risk_level=medium"

    # At the ends of the filtered queue there is nothing further that way.
    body = operator.get(f"/actions/{third.action_id}/?risk_level=medium").content.decode()
    assert link(body, "queue-next") is None and link(body, "queue-previous") == f"/actions/{second.action_id}/?risk_level=medium"
    # Unfiltered, the queue's order: critical, high, then the medium ones oldest first.
    body = operator.get(f"/actions/{first.action_id}/").content.decode()
    assert link(body, "queue-previous") == f"/actions/{high.action_id}/"
    assert link(body, "queue-back") == f"/?selected={first.action_id}"
    body = operator.get(f"/actions/{high.action_id}/").content.decode()
    assert link(body, "queue-previous") == f"/actions/{critical.action_id}/"
    assert link(body, "queue-next") == f"/actions/{first.action_id}/"


def test_back_to_the_queue_goes_to_the_page_that_holds_the_request(operator, request_approval, monkeypatch):
    from approvals import selectors

    for function in (selectors.queue_neighbours, selectors.review_queue):  # two rows a page
        monkeypatch.setattr(function, "__kwdefaults__", {"per_page": 2})
    requests = [request_approval("medium") for _ in range(5)]
    pages = {}
    for n, request in enumerate(requests):
        back = link(operator.get(f"/actions/{request.action_id}/?q=ACT").content.decode(), "queue-back")
        pages[n] = back
    assert pages[0] == f"/?q=ACT&selected={requests[0].action_id}"
    assert pages[1] == f"/?q=ACT&selected={requests[1].action_id}"
    assert pages[2] == f"/?q=ACT&page=2&selected={requests[2].action_id}"
    assert pages[4] == f"/?q=ACT&page=3&selected={requests[4].action_id}"
    # The queue's own pages hold those rows.
    assert row_ids_of(operator.get("/?q=ACT&page=2").content.decode()) == [requests[2].action_id, requests[3].action_id]
    assert row_ids_of(operator.get("/?q=ACT&page=3").content.decode()) == [requests[4].action_id]


def test_a_request_decided_meanwhile_keeps_its_place_between_its_neighbours(operator, request_approval, people):
    from approvals.services.decisions import approval_decide

    first, second, third = (request_approval("medium") for _ in range(3))
    approval_decide(action_id=second.action_id, actor=people["admin"], decision="approve")
    body = operator.get(f"/actions/{second.action_id}/?q=ACT-T").content.decode()
    assert link(body, "queue-previous") == f"/actions/{first.action_id}/?q=ACT-T"
    assert link(body, "queue-next") == f"/actions/{third.action_id}/?q=ACT-T"


def test_bad_filter_values_on_the_detail_page_are_left_out_not_an_error(operator, request_approval):
    request = request_approval("medium")
    response = operator.get(f"/actions/{request.action_id}/?risk_level=nope&page=x&tab=%00&q=" + "x" * 500)
    assert response.status_code == 200
    assert link(response.content.decode(), "queue-back") == f"/?selected={request.action_id}"


def test_the_panel_s_forms_post_with_the_filters_so_the_answer_keeps_the_links(operator, request_approval):
    request = request_approval("medium")
    later = request_approval("medium")
    body = operator.get(f"/actions/{request.action_id}/?risk_level=medium").content.decode()
    assert f'hx-post="/actions/{request.action_id}/decide?risk_level=medium"' in body
    assert f'<div class="claim-take" hidden hx-post="/actions/{request.action_id}/claim?risk_level=medium"' in body
    answer = operator.post(
        f"/actions/{request.action_id}/decide?risk_level=medium", {"decision": "reject", "reason": "No."}, **HX
    ).content.decode()
    assert "Done: Rejected." in answer
    assert f'hx-post="/actions/{request.action_id}/decide?risk_level=medium"' not in answer  # decided: no forms
    page = operator.get(f"/actions/{request.action_id}/?risk_level=medium").content.decode()
    assert link(page, "queue-next") == f"/actions/{later.action_id}/?risk_level=medium"


def test_the_keys_are_listed_in_a_labelled_dialog(operator, request_approval):
    body = operator.get(f"/actions/{request_approval('medium').action_id}/").content.decode()
    dialog = re.search(r'<dialog id="detail-keys-dialog" aria-labelledby="detail-keys-title">(.*?)</dialog>', body, re.S).group(1)
    for key in ("a", "r", "q", "e", "j", "k", "u", "Esc", "?"):
        assert f"<kbd>{key}</kbd>" in dialog
    assert '<script src="/static/js/detail.js" defer></script>' in body.split("</head>")[0]
    assert "detail.js" not in operator.get("/").content.decode()  # its keys are the detail page's only


# --- the History refreshes with the panel -------------------------------------------------


def test_a_decision_in_place_answers_the_history_out_of_band(operator, request_approval):
    request = request_approval("medium")
    body = operator.post(f"/actions/{request.action_id}/decide", {"decision": "reject", "reason": "Wrong deal."}, **HX).content.decode()
    history = re.search(r'<section id="history"[^>]*hx-swap-oob="true"[^>]*>(.*?)</section>', body, re.S)
    assert history, body
    assert "hitl.rejected" in history.group(1) and "Wrong deal." in history.group(1)
    assert body.index('id="decision-panel"') < body.index('id="history"')


def test_a_take_over_in_place_answers_the_history_too(client, make_reviewer, request_approval):
    from accounts.selectors import actor_of
    from approvals.services.claims import claim_take

    request = request_approval("medium")
    claim_take(action_id=request.action_id, actor=actor_of(make_reviewer("operator", "ana@example.com")))
    client.force_login(make_reviewer("operator", "bob@example.com"))
    body = client.post(f"/actions/{request.action_id}/claim", {"takeover": "1", "confirm": "on"}, **HX).content.decode()
    assert "You are reviewing this request now." in body
    assert re.search(r'<section id="history"[^>]*hx-swap-oob="true"', body)


def test_the_page_itself_has_no_out_of_band_history(operator, request_approval):
    body = operator.get(f"/actions/{request_approval('medium').action_id}/").content.decode()
    assert '<section id="history"' in body and "hx-swap-oob" not in body


# --- approving with a reason --------------------------------------------------------------


def approve_reason(body: str) -> str:
    return re.search(r'<textarea id="approve-reason"[^>]*>', body).group(0)


def test_the_approve_reason_is_required_for_a_critical_request_only(client, people, request_approval):
    client.force_login(_user(people["admin"]))
    critical = client.get(f"/actions/{request_approval('critical').action_id}/").content.decode()
    assert " required" in approve_reason(critical)
    assert "a critical request's approval is recorded with its reason" in critical
    medium = client.get(f"/actions/{request_approval('medium').action_id}/").content.decode()
    assert " required" not in approve_reason(medium) and "Reason (optional)" in medium


def test_the_approve_reason_is_required_for_a_quarantined_request(client, people, request_approval):
    from approvals.services.decisions import approval_decide

    request = request_approval("high")
    approval_decide(action_id=request.action_id, actor=people["operator"], decision="quarantine", reason="Legal must look")
    client.force_login(_user(people["admin"]))
    body = client.get(f"/actions/{request.action_id}/").content.decode()
    assert " required" in approve_reason(body) and "a quarantined request's approval" in body


def test_the_server_s_refusal_of_a_reason_shows_at_the_reason_box(operator, request_approval, monkeypatch):
    from approvals import views

    def refuse(**kwargs):
        raise InvalidInput("reason: a reason is required.", field="reason")

    monkeypatch.setattr(views, "approval_decide", refuse)
    request = request_approval("medium")
    body = operator.post(f"/actions/{request.action_id}/decide", {"decision": "approve", "reason": "  "}, **HX).content.decode()
    assert 'aria-invalid="true" aria-describedby="approve-reason-error"' in approve_reason(body)
    assert '<p class="field-error" id="approve-reason-error">reason: a reason is required.</p>' in body
    assert ApprovalRequest.objects.get(pk=request.pk).state == "pending"


# --- the edit of the inputs as fields -----------------------------------------------------


INPUTS = {"amount": 100, "buyer": "Acme", "tags": ["loi", "draft"], "binding": False, "terms": {"days": 30}}


def posted(body: str) -> dict:
    """What the approve form posts as the page shows it, as a browser would send it."""
    form = re.search(r'<form class="decide-form approve-form".*?</form>', body, re.S).group(0)
    data = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form):
        data[name] = html.unescape(value)
    for tag in re.findall(r"<input type=\"(?:text|checkbox)\"[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag).group(1)
        if 'type="checkbox"' in tag:
            if " checked" in tag:
                data[name] = "on"
        else:
            data[name] = html.unescape(re.search(r'value="([^"]*)"', tag).group(1))
    for name, text in re.findall(r'<textarea id="[^"]+" name="([^"]+)"[^>]*>\n(.*?)</textarea>', form, re.S):
        data[name] = html.unescape(text)
    return data


def field_name(body: str, key: str) -> str:
    return re.search(rf'<label for="(input-\d+)"><code>{re.escape(key)}</code>', body).group(1)


def test_the_inputs_show_as_typed_fields(operator, engine):
    loi(engine, "ACT-FORM-1", INPUTS)
    body = operator.get("/actions/ACT-FORM-1/").content.decode()
    assert re.search(r'<input type="text" id="input-\d+" name="input-\d+" value="100" inputmode="decimal"', body)
    assert re.search(r'<input type="checkbox" id="input-\d+" name="input-\d+"> <code>binding</code>', body)
    assert "<code>tags</code> <span class=\"muted\">(one per line)</span>" in body
    assert "<code>terms</code> <span class=\"muted\">(JSON)</span>" in body
    assert '<summary>Edit as JSON</summary>' in body
    data = posted(body)
    assert data["inputs_fields"] == "1" and "reason" in data


def test_a_field_edit_shows_its_diff_first_and_approves_typed_once_confirmed(operator, engine):
    loi(engine, "ACT-FORM-2", INPUTS)
    body = operator.get("/actions/ACT-FORM-2/").content.decode()
    data = posted(body)
    data.update({field_name(body, "amount"): "250", field_name(body, "buyer"): "Acme Holdings", "decision": "approve",
                 "reason": "Price agreed on the call."})
    data[re.search(r'id="(input-\d+)" name="input-\d+"> <code>binding</code>', body).group(1)] = "on"

    confirm = operator.post("/actions/ACT-FORM-2/decide", data, **HX).content.decode()
    rows = re.findall(r"<tr>\s*<th scope=\"row\"><code>(\w+)</code></th>\s*<td[^>]*>(.*?)</td>\s*<td[^>]*>(.*?)</td>", confirm, re.S)
    assert [(key, re.sub(r"<[^>]+>", "", before), re.sub(r"<[^>]+>", "", after)) for key, before, after in rows] == [
        ("amount", "100", "250"), ("binding", "false", "true"), ("buyer", html.escape('"Acme"'), html.escape('"Acme Holdings"')),
    ]
    assert "Approve with these changes" in confirm and "Reason: “Price agreed on the call.”" in confirm
    assert ApprovalRequest.objects.get(action_id="ACT-FORM-2").state == "pending"  # nothing sent yet
    assert Action.objects.get(pk="ACT-FORM-2").inputs == INPUTS

    sent = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', confirm))
    sent = {name: html.unescape(value) for name, value in sent.items()}
    done = operator.post("/actions/ACT-FORM-2/decide", sent, **HX).content.decode()
    assert "Done: Approved." in done
    inputs = Action.objects.get(pk="ACT-FORM-2").inputs
    assert inputs == {**INPUTS, "amount": 250, "buyer": "Acme Holdings", "binding": True}
    assert isinstance(inputs["amount"], int) and inputs["binding"] is True
    request = ApprovalRequest.objects.get(action_id="ACT-FORM-2")
    assert (request.state, request.reason, request.original_inputs) == ("approved", "Price agreed on the call.", INPUTS)
    edit = DealEvent.objects.get(event_type="hitl.inputs_edited", details__action_id="ACT-FORM-2")
    assert edit.details["diff"]["changed"]["amount"] == {"from": 100, "to": 250}
    assert "hitl.inputs_edited" in re.search(r'<section id="history".*?</section>', done, re.S).group(0)


def test_change_the_edit_goes_back_to_the_fields_filled_with_it(operator, engine):
    loi(engine, "ACT-FORM-3", INPUTS)
    body = operator.get("/actions/ACT-FORM-3/").content.decode()
    data = {**posted(body), field_name(body, "amount"): "250", "decision": "approve", "reason": "r"}
    confirm = operator.post("/actions/ACT-FORM-3/decide", data, **HX).content.decode()
    sent = {name: html.unescape(value) for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', confirm)}
    back = operator.post("/actions/ACT-FORM-3/decide", {**sent, "step": "edit"}, **HX).content.decode()
    assert '<details class="edit-inputs" id="edit-inputs" open>' in back
    assert re.search(rf'name="{field_name(back, "amount")}" value="250"', back)
    assert "\nr</textarea>" in back  # the reason kept
    # Approving again unchanged shows the same diff: the edit is still the one to confirm.
    again = operator.post("/actions/ACT-FORM-3/decide", {**posted(back), "decision": "approve"}, **HX).content.decode()
    assert "Approve with these changes" in again and "<ins>250</ins>" in again
    assert Action.objects.get(pk="ACT-FORM-3").inputs == INPUTS


def test_a_bad_field_is_named_kept_and_nothing_is_sent(operator, engine):
    loi(engine, "ACT-FORM-4", INPUTS)
    body = operator.get("/actions/ACT-FORM-4/").content.decode()
    amount = field_name(body, "amount")
    answer = operator.post("/actions/ACT-FORM-4/decide", {**posted(body), amount: "ten", "decision": "approve"}, **HX).content.decode()
    assert "Not decided: amount: enter a number." in answer
    assert f'<p class="field-error" id="{amount}-error">amount: enter a number</p>' in answer
    assert re.search(rf'id="{amount}" name="{amount}" value="ten"[^>]*aria-invalid="true"', answer)
    assert ApprovalRequest.objects.get(action_id="ACT-FORM-4").state == "pending"
    assert '<details class="edit-json">' in answer  # the JSON was not touched: it stays folded
    assert Action.objects.get(pk="ACT-FORM-4").inputs == INPUTS


def test_an_edit_as_json_goes_through_the_same_diff(operator, engine):
    loi(engine, "ACT-FORM-5", INPUTS)
    body = operator.get("/actions/ACT-FORM-5/").content.decode()
    edited = {**INPUTS, "note": "added"}
    del edited["terms"]
    import json

    answer = operator.post("/actions/ACT-FORM-5/decide", {**posted(body), "inputs": json.dumps(edited), "decision": "approve"}, **HX)
    confirm = answer.content.decode()
    assert re.search(r'<code>note</code></th>\s*<td[^>]*><span class="muted">\(not there\)</span></td>\s*<td[^>]*><ins>&quot;added&quot;</ins>', confirm)
    assert re.search(r'<code>terms</code></th>\s*<td[^>]*><del>\{&quot;days&quot;: 30\}</del></td>\s*<td[^>]*><span class="muted">\(removed\)</span>', confirm)


def test_changing_both_the_fields_and_the_json_is_refused(operator, engine):
    loi(engine, "ACT-FORM-6", INPUTS)
    body = operator.get("/actions/ACT-FORM-6/").content.decode()
    data = {**posted(body), field_name(body, "amount"): "1", "inputs": '{"amount": 2}', "decision": "approve"}
    answer = operator.post("/actions/ACT-FORM-6/decide", data, **HX).content.decode()
    assert "you changed both the fields and the JSON" in answer
    assert '<details class="edit-json" open>' in answer  # the JSON typed is in sight, to fix it
    assert Action.objects.get(pk="ACT-FORM-6").inputs == INPUTS


def test_an_unchanged_form_approves_at_once_without_an_edit(operator, engine):
    loi(engine, "ACT-FORM-7", INPUTS)
    body = operator.get("/actions/ACT-FORM-7/").content.decode()
    done = operator.post("/actions/ACT-FORM-7/decide", {**posted(body), "decision": "approve"}, **HX).content.decode()
    assert "Done: Approved." in done
    assert ApprovalRequest.objects.get(action_id="ACT-FORM-7").original_inputs is None


def test_a_field_edit_that_raises_the_risk_is_held_by_the_service_s_rules(operator, engine):
    """The edit enters approval_decide as the API's does: a recipient outside the company
    makes the request critical, and an operator's approval is then not recorded."""
    loi(engine, "ACT-FORM-8", {"amount": 5_000_000, "cc": ""})
    body = operator.get("/actions/ACT-FORM-8/").content.decode()
    data = {**posted(body), field_name(body, "cc"): "partner@rival.example", "decision": "approve"}
    confirm = operator.post("/actions/ACT-FORM-8/decide", data, **HX).content.decode()
    sent = {name: html.unescape(value) for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', confirm)}
    answer = operator.post("/actions/ACT-FORM-8/decide", sent, **HX).content.decode()
    assert "raised the risk from high to critical" in answer
    request = ApprovalRequest.objects.get(action_id="ACT-FORM-8")
    assert (request.state, request.risk_level) == ("pending", "critical")


def test_the_queue_s_rows_open_the_detail_page_with_the_queue_s_filters(operator, request_approval):
    request = request_approval("medium")
    body = operator.get("/?risk_level=medium&q=ACT").content.decode()
    assert f'<a href="/actions/{request.action_id}/?risk_level=medium&amp;q=ACT" class="title">' in body
    assert f'data-detail-url="/actions/{request.action_id}/?risk_level=medium&amp;q=ACT"' in body
    body = operator.get("/").content.decode()
    assert f'<a href="/actions/{request.action_id}/" class="title">' in body


def test_inputs_that_are_not_an_object_leave_the_json_box_alone(operator, engine):
    loi(engine, "ACT-FORM-9", INPUTS)
    Action.objects.filter(pk="ACT-FORM-9").update(inputs=["written", "by", "hand"])
    body = operator.get("/actions/ACT-FORM-9/").content.decode()
    assert 'name="inputs_fields"' not in body and 'id="edit-inputs-json"' in body
    answer = operator.post("/actions/ACT-FORM-9/decide", {**posted(body), "decision": "approve"}, **HX)
    assert answer.status_code == 200
    assert "inputs: must be a JSON object" in answer.content.decode()
    assert ApprovalRequest.objects.get(action_id="ACT-FORM-9").state == "pending"
