"""The engine path and the view answer the same call the same way: status, JSON body and
headers (all but the request id), for the known cases and for generated ones. Both are
called through the WSGI application; the view is made to answer by a query string, which
the engine path always leaves to it."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.selectors import actor_of
from accounts.services import api_token_create, operator_upsert, service_account_ensure
from approvals.models import ApprovalRequest
from approvals.services.cancel import approval_cancel
from approvals.services.decisions import approval_decide
from approvals.services.requests import approval_request
from tests.approvals.test_adoption import legacy_action
from tests.zakops_hitl.test_engine import UNUSUAL, USUAL
from tests.zakops_hitl.wsgi_calls import call, server_environ
from zakops_hitl.engine import HitlWSGIHandler

pytestmark = pytest.mark.django_db
ASSESS = "/api/hitl/assess-risk"
THE_VIEW = "from=test"
PROPERTIES = settings(
    derandomize=True, deadline=None, max_examples=250, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def application():
    return HitlWSGIHandler()


@pytest.fixture
def tokens(db):
    engine = service_account_ensure(name="action-engine")
    person = operator_upsert(email="olu@example.com", role="operator", password="x" * 20, name="Olu")
    return {
        "engine": api_token_create(user=engine, name="tests")[1],
        "person": api_token_create(user=person, name="tests")[1],
        "unknown": "not-a-token",
    }


def both(application, method, path, *, body: bytes | None = None, query="", **headers):
    """(engine path's answer, view's answer) of one call, each as (status, headers but the
    request id, JSON body)."""
    answers = []
    for extra in ("", THE_VIEW):
        environ = server_environ(method, path, query="&".join(q for q in (query, extra) if q), body=body, **headers)
        found = call(environ, application)
        found.headers.pop("X-Request-ID")
        answers.append((found.status, found.headers, found.json() if found.body else None))
    return answers


def assert_agree(engine_path, view):
    assert engine_path == view


# --- assess-risk -------------------------------------------------------------------------


def assess(application, token, body, **headers):
    raw = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()
    headers = {"CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": f"Bearer {token}", **headers}
    return both(application, "POST", ASSESS, body=raw, **headers)


@pytest.mark.parametrize("body,extra", [(body, {}) for body in USUAL] + UNUSUAL)
def test_the_known_assessments_agree(application, tokens, body, extra):
    extra = dict(extra)
    query = extra.pop("query", "")
    token = extra.pop("HTTP_AUTHORIZATION", f"Bearer {tokens['engine']}").removeprefix("Bearer").strip()
    engine_path, view = assess(application, token, body, query=query, **extra)
    assert_agree(engine_path, view)


@pytest.fixture
def long_reference_rule(db):
    """A rule that reads a long numeric reference in the inputs."""
    from risk.models import RiskRule
    from risk.rulebook import rulebook_changed

    RiskRule.objects.create(name="long_references", risk_level="critical", action_types=["PAYMENT.RECONCILE"],
                            input_patterns={"reference": r"^[0-9]{25,}$"})
    rulebook_changed()


def test_a_number_beyond_64_bits_reaches_the_rules_as_sent_on_both_paths(application, tokens, long_reference_rule):
    """The rule sees the integer the engine sent, not a float rounded from it, whichever
    path answers."""
    body = '{"action_type": "PAYMENT.RECONCILE", "action_data": {"reference": 1234567890123456789012345678}}'
    engine_path, view = assess(application, tokens["engine"], body)
    assert view[0] == 200 and "long_references" in view[2]["matched_rules"]
    assert_agree(engine_path, view)


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**100), max_value=2**100),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
spaces = st.sampled_from(["", " ", "\t", "\n", "\u00a0", "\u2003"])
input_keys = st.one_of(st.sampled_from(["reference", "amount", "to", "recipients", "bulk"]), st.text(max_size=8))
action_types = st.one_of(
    st.builds(lambda n, before, after: before + "X" * n + after, st.integers(97, 103), spaces, spaces),
    st.builds(lambda name, before, after: before + name + after,
              st.sampled_from(["DEAL.GET_DETAILS", "COMMUNICATION.SEND_EMAIL", "DOCUMENT.GENERATE_LOI", "crm.get_contact",
                               "PAYMENT.RECONCILE"]),
              spaces, spaces),
    st.text(max_size=110),
    json_values,
)
bodies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "action_type": action_types,
            "action_data": st.one_of(st.none(), st.dictionaries(input_keys, json_values, max_size=5), json_values),
            "context": st.one_of(
                st.none(), st.fixed_dictionaries({}, optional={"deal_stage": st.sampled_from(["closed", "open", 5]),
                                                               "is_test_mode": st.booleans()}),
                json_values,
            ),
            "extra": json_values,
        },
    ),
    json_values,
)


@PROPERTIES
@given(body=bodies, who=st.sampled_from(["engine", "engine", "engine", "person", "unknown"]),
       accept=st.sampled_from(["", "*/*", "application/json", "text/html"]))
def test_generated_assessments_agree(application, tokens, long_reference_rule, body, who, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    engine_path, view = assess(application, tokens[who], body, **headers)
    assert_agree(engine_path, view)


@PROPERTIES
@given(raw=st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode)))
def test_generated_raw_bodies_agree(application, tokens, raw):
    engine_path, view = assess(application, tokens["engine"], raw)
    assert_agree(engine_path, view)


# --- the poll ----------------------------------------------------------------------------


@pytest.fixture
def actions(tokens):
    """Action ids with a request in every state the poll shows, and actions the engine set
    pending by itself (adopted by its first poll), with or without an earlier decision."""
    engine = actor_of(service_account_ensure(name="action-engine"))
    person = actor_of(operator_upsert(email="ana@example.com", role="admin", password="x" * 20, name="Ana"))
    ids = {}
    for state in ("pending", "approved", "rejected", "quarantined", "cancelled", "overdue"):
        request, _ = approval_request(action_id=f"ACT-{state}", action_type="DOCUMENT.GENERATE_LOI", requester=engine)
        ids[state] = request.action_id
        if state in ("approved", "rejected", "quarantined"):
            decision = {"approved": "approve", "rejected": "reject", "quarantined": "quarantine"}[state]
            approval_decide(action_id=request.action_id, decision=decision, actor=person, reason="checked")
        elif state == "cancelled":
            approval_cancel(action_id=request.action_id, actor=engine, reason="withdrawn")
        elif state == "overdue":
            ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    legacy_action("ACT-held")
    ids["held"] = "ACT-held"
    legacy_action("ACT-held-again")
    approval_decide(action_id="ACT-held-again", decision="reject", actor=person, reason="wrong")
    from zakops.models import Action

    Action.objects.filter(pk="ACT-held-again").update(status="PENDING_APPROVAL")
    ids["held again"] = "ACT-held-again"
    legacy_action("ACT-not-held", status="QUEUED")
    ids["not held"] = "ACT-not-held"
    return ids


def poll(application, token, action_id, **headers):
    return both(application, "GET", f"/api/hitl/actions/{action_id}/approval",
                HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


@pytest.mark.parametrize("who", ["engine", "person", "unknown"])
def test_the_known_polls_agree(application, tokens, actions, who):
    for name in [*actions, "ACT-NO-SUCH"]:
        engine_path, view = poll(application, tokens[who], actions.get(name, name))
        assert_agree(engine_path, view)
        if who == "engine" and name != "ACT-NO-SUCH":
            assert engine_path[0] == (404 if name == "not held" else 200), name


@PROPERTIES
@given(
    action=st.one_of(st.sampled_from(["pending", "approved", "rejected", "quarantined", "cancelled", "overdue", "held",
                                      "held again", "not held"]),
                     st.text(st.characters(blacklist_characters="/", blacklist_categories=["Cs"]), min_size=1, max_size=60)),
    who=st.sampled_from(["engine", "engine", "person", "unknown"]),
    accept=st.sampled_from(["", "*/*", "application/json", "text/html", "application/json; indent=4"]),
)
def test_generated_polls_agree(application, tokens, actions, action, who, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    engine_path, view = poll(application, tokens[who], actions.get(action, action), **headers)
    assert_agree(engine_path, view)


@pytest.mark.parametrize("who", ["engine", "person"])
def test_conditional_polls_agree(application, tokens, actions, who):
    for name in ["pending", "approved", "overdue", "held again"]:
        (status, headers, body), _ = poll(application, tokens[who], actions[name])
        etag = headers["ETag"]
        for sent, expected in [(etag, 304), (f"W/{etag}", 304), (f'"other", {etag}', 304), ("*", 304),
                               ('"other"', 200), (etag[:-2] + '"', 200)]:
            engine_path, view = poll(application, tokens[who], actions[name], HTTP_IF_NONE_MATCH=sent)
            assert_agree(engine_path, view)
            assert engine_path[0] == expected, (name, sent)
            assert engine_path[1]["ETag"] == etag
            assert engine_path[2] == (None if expected == 304 else body)
