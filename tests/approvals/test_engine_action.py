import json

import pytest

from accounts.selectors import actor_of
from approvals.services.decisions import approval_decide

pytestmark = pytest.mark.django_db
ACTION = "ACT-20260119T101500-e0e0e0e0"


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def test_the_engine_reads_the_inputs_a_reviewer_approved_with_edits(engine_api, make_reviewer):
    post(engine_api, "/api/hitl/approval-requests", {
        "action_id": ACTION, "action_type": "DOCUMENT.GENERATE_LOI", "inputs": {"template": "standard", "price": 10},
    })
    before = engine_api.get(f"/api/hitl/actions/{ACTION}")
    assert before.status_code == 200
    assert before.json()["inputs"] == {"template": "standard", "price": 10}
    assert before.json()["status"] == "PENDING_APPROVAL"

    admin = make_reviewer("admin")
    approval_decide(action_id=ACTION, actor=actor_of(admin), decision="approve", reason="", inputs={"template": "short", "price": 9})

    after = engine_api.get(f"/api/hitl/actions/{ACTION}").json()
    assert (after["status"], after["inputs"], after["action_type"]) == ("QUEUED", {"template": "short", "price": 9}, "DOCUMENT.GENERATE_LOI")


def test_an_unknown_action_is_a_404_with_detail(engine_api, api):
    missing = engine_api.get("/api/hitl/actions/ACT-nope")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "No action ACT-nope."
    assert api.get(f"/api/hitl/actions/{ACTION}").status_code == 401
