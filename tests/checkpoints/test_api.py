import json
import uuid

import pytest

from checkpoints.services import checkpoint_save
from zakops.models import Action, ExecutionCheckpoint

pytestmark = pytest.mark.django_db
BASE = "/api/hitl/actions/ACT-1/checkpoints"
BY_ID = "/api/hitl/checkpoints"  # + /{checkpoint_id}
BY_CORRELATION = "/api/hitl/checkpoints/latest"
ALL_COLUMNS = {
    "checkpoint_id", "correlation_id", "action_id", "run_id", "checkpoint_name", "checkpoint_type",
    "checkpoint_data", "sequence_number", "status", "expires_at", "resumed_at", "resumed_by", "created_at",
}


@pytest.fixture(autouse=True)
def action(db):
    return Action.objects.create(action_id="ACT-1", action_type="DOCUMENT.GENERATE_LOI")


def save(client, name="step", data=None, **fields):
    body = {"checkpoint_name": name, "checkpoint_data": data if data is not None else {"step": name}, **fields}
    return client.post(BASE, json.dumps(body), content_type="application/json")


def test_the_engine_saves_reads_resumes_once_lists_and_cancels(engine_api, service_token):
    saved = [save(engine_api, name).json() for name in ("generated", "reviewed", "before_send")]
    assert [c["sequence_number"] for c in saved] == [0, 1, 2]
    assert set(saved[0]) == ALL_COLUMNS

    latest = engine_api.get(f"{BASE}/latest").json()
    assert latest["checkpoint_id"] == saved[2]["checkpoint_id"]
    assert latest["checkpoint_data"] == {"step": "before_send"}

    resumed = engine_api.post(f"{BASE}/{latest['checkpoint_id']}/resume")
    assert resumed.status_code == 200
    from accounts.models import Account

    engine_id = str(Account.objects.get(user__username="action-engine").actor_id)
    assert resumed.json() == {"status": "resumed", "checkpoint_id": latest["checkpoint_id"], "resumed_by": engine_id}
    again = engine_api.post(f"{BASE}/{latest['checkpoint_id']}/resume")
    assert again.status_code == 409
    assert again.json()["status"] == "resumed"
    assert again.json()["resumed_by"] == engine_id
    assert "resumed by" in again.json()["detail"]

    active = engine_api.get(BASE).json()
    assert [c["checkpoint_name"] for c in active] == ["generated", "reviewed"]
    assert set(active[0]) == {"checkpoint_id", "checkpoint_name", "sequence_number", "status", "created_at"}
    everything = engine_api.get(BASE, {"include_resumed": "true"}).json()
    assert [c["status"] for c in everything] == ["active", "active", "resumed"]

    for checkpoint in active:
        cancelled = engine_api.post(f"{BASE}/{checkpoint['checkpoint_id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert engine_api.get(BASE).json() == []
    assert engine_api.get(f"{BASE}/latest").status_code == 404

    rows = {row.checkpoint_name: row for row in ExecutionCheckpoint.objects.all()}
    assert {name: row.status for name, row in rows.items()} == {"generated": "cancelled", "reviewed": "cancelled", "before_send": "resumed"}
    assert str(rows["before_send"].resumed_by) == engine_id
    assert {row.checkpoint_type for row in rows.values()} == {"state"}


def test_get_by_name_returns_the_latest_active_of_that_name(engine_api):
    save(engine_api, "page", {"n": 1})
    save(engine_api, "other")
    save(engine_api, "page", {"n": 2})
    body = engine_api.get(f"{BASE}/page").json()
    assert (body["checkpoint_data"], body["sequence_number"]) == ({"n": 2}, 2)
    assert {"checkpoint_id", "checkpoint_name", "checkpoint_type", "checkpoint_data", "sequence_number", "status", "created_at"} <= set(body)
    missing = engine_api.get(f"{BASE}/nothing-here")
    assert missing.status_code == 404 and missing.json()["detail"]


def test_latest_filters_by_name(engine_api):
    save(engine_api, "a")
    save(engine_api, "b")
    assert engine_api.get(f"{BASE}/latest", {"checkpoint_name": "a"}).json()["checkpoint_name"] == "a"


def test_save_takes_type_run_correlation_and_expiry(engine_api):
    run, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    body = save(engine_api, checkpoint_type="approval_gate", run_id=run, correlation_id=correlation, expires_in_hours=1.5).json()
    assert (body["checkpoint_type"], body["run_id"], body["correlation_id"]) == ("approval_gate", run, correlation)
    assert body["expires_at"] is not None


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"checkpoint_type": "nap"}, "checkpoint_type", "state, approval_gate, external_call, timer, error_recovery"),
        ({"checkpoint_data": [1, 2]}, "checkpoint_data", "JSON object"),
        ({"checkpoint_data": "text"}, "checkpoint_data", "JSON object"),
        ({"checkpoint_data": None}, "checkpoint_data", "null"),
        ({"checkpoint_name": ""}, "checkpoint_name", "blank"),
        ({"checkpoint_name": "n" * 256}, "checkpoint_name", "255"),
        ({"checkpoint_name": 5}, "checkpoint_name", "valid string"),
        ({"run_id": "not-a-uuid"}, "run_id", "UUID"),
        ({"correlation_id": "123"}, "correlation_id", "UUID"),
        ({"expires_in_hours": 0}, "expires_in_hours", "greater than or equal"),
        ({"expires_in_hours": -3}, "expires_in_hours", "greater than or equal"),
        ({"expires_in_hours": "soon"}, "expires_in_hours", "number"),
    ],
)
def test_bad_input_is_400_naming_the_field(engine_api, fields, field, message):
    body = {"checkpoint_name": "step", "checkpoint_data": {}, **fields}
    response = engine_api.post(BASE, json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}:")
    assert message in response.json()["detail"]
    assert not ExecutionCheckpoint.objects.exists()


def test_missing_data_is_400(engine_api):
    response = engine_api.post(BASE, json.dumps({"checkpoint_name": "x"}), content_type="application/json")
    assert response.status_code == 400 and response.json()["detail"].startswith("checkpoint_data:")


def test_name_of_255_characters_is_fine(engine_api):
    assert save(engine_api, "n" * 255).status_code == 201


def test_data_over_the_limit_is_413(engine_api, settings):
    settings.HITL_CHECKPOINT_MAX_BYTES = 1000
    assert save(engine_api, data={"blob": "x" * 900}).status_code == 201
    response = save(engine_api, data={"blob": "x" * 1000})
    assert response.status_code == 413
    assert "HITL_CHECKPOINT_MAX_BYTES" in response.json()["detail"]


def test_a_body_far_over_the_limit_is_413_before_parsing(engine_api):
    response = save(engine_api, data={"blob": "x" * (1024 * 1024 + 100_000)})
    assert response.status_code == 413


def test_unknown_action_is_404_everywhere(engine_api):
    other = "/api/hitl/actions/ACT-NOPE/checkpoints"
    response = engine_api.post(other, json.dumps({"checkpoint_name": "x", "checkpoint_data": {}}), content_type="application/json")
    assert response.status_code == 404 and "ACT-NOPE" in response.json()["detail"]
    for path in (other, f"{other}/latest", f"{other}/some-name"):
        assert engine_api.get(path).status_code == 404
    assert engine_api.post(f"{other}/{uuid.uuid4()}/resume").status_code == 404


def test_a_checkpoint_of_another_action_is_404(engine_api):
    Action.objects.create(action_id="ACT-2", action_type="X")
    checkpoint_id = save(engine_api).json()["checkpoint_id"]
    assert engine_api.post(f"/api/hitl/actions/ACT-2/checkpoints/{checkpoint_id}/resume").status_code == 404
    assert engine_api.post(f"/api/hitl/actions/ACT-2/checkpoints/{checkpoint_id}/cancel").status_code == 404


def test_cancel_of_a_finished_checkpoint_is_409(engine_api):
    checkpoint_id = save(engine_api).json()["checkpoint_id"]
    engine_api.post(f"{BASE}/{checkpoint_id}/resume")
    response = engine_api.post(f"{BASE}/{checkpoint_id}/cancel")
    assert response.status_code == 409 and response.json()["status"] == "resumed"


def test_include_resumed_must_be_a_boolean(engine_api):
    response = engine_api.get(BASE, {"include_resumed": "perhaps"})
    assert response.status_code == 400 and response.json()["detail"].startswith("include_resumed:")


def test_a_viewer_reads_but_can_not_save_resume_or_cancel(api, make_reviewer, engine_api):
    checkpoint_id = save(engine_api).json()["checkpoint_id"]
    api.force_login(make_reviewer("viewer"))
    assert api.get(BASE).status_code == 200
    for response in (save(api), api.post(f"{BASE}/{checkpoint_id}/resume"), api.post(f"{BASE}/{checkpoint_id}/cancel")):
        assert response.status_code == 403
        assert "Viewers" in response.json()["detail"]
    assert ExecutionCheckpoint.objects.get().status == "active"


def test_an_operator_resume_records_their_operators_row(api, make_reviewer, engine_api):
    from zakops.models import Operator

    person = make_reviewer("operator")
    checkpoint_id = save(engine_api).json()["checkpoint_id"]
    api.force_login(person)
    assert api.post(f"{BASE}/{checkpoint_id}/resume").json()["resumed_by"] == str(Operator.objects.get(email=person.email).id)


def test_anonymous_is_401(api):
    assert api.get(BASE).status_code == 401
    assert save(api).status_code == 401


def test_endpoints_are_in_the_schema(engine_api):
    paths = engine_api.get("/api/hitl/schema/").json()["paths"]
    prefix = "/api/hitl/actions/{action_id}/checkpoints"
    assert {"get", "post"} <= set(paths[prefix])
    for suffix in ("/latest", "/{checkpoint_id}/resume", "/{checkpoint_id}/cancel", "/{checkpoint_name}"):
        assert prefix + suffix in paths

    by_id = paths["/api/hitl/checkpoints/{checkpoint_id}"]["get"]
    assert {"200", "404"} <= set(by_id["responses"])
    assert [(p["name"], p["schema"].get("format")) for p in by_id["parameters"]] == [("checkpoint_id", "uuid")]
    by_correlation = paths["/api/hitl/checkpoints/latest"]["get"]
    assert {"200", "400", "404"} <= set(by_correlation["responses"])
    parameters = {p["name"]: p for p in by_correlation["parameters"]}
    assert parameters["correlation_id"]["required"] is True
    assert parameters["correlation_id"]["schema"]["format"] == "uuid"
    assert not parameters["checkpoint_name"].get("required", False)


def test_get_by_id_returns_every_column_whatever_the_status(engine_api):
    run = str(uuid.uuid4())
    saved = save(engine_api, "gate", {"x": [1, "ü"]}, checkpoint_type="approval_gate", run_id=run, expires_in_hours=2).json()
    resumed = engine_api.post(f"{BASE}/{saved['checkpoint_id']}/resume").json()

    response = engine_api.get(f"{BY_ID}/{saved['checkpoint_id']}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == ALL_COLUMNS
    unchanged = ALL_COLUMNS - {"status", "resumed_at", "resumed_by"}
    assert {k: body[k] for k in unchanged} == {k: saved[k] for k in unchanged}
    assert (body["checkpoint_data"], body["run_id"], body["action_id"]) == ({"x": [1, "ü"]}, run, "ACT-1")
    assert (body["status"], body["resumed_by"]) == ("resumed", resumed["resumed_by"])
    assert body["resumed_at"] is not None and body["expires_at"] is not None


def test_get_by_id_of_no_checkpoint_is_404_json(engine_api):
    save(engine_api)
    missing = uuid.uuid4()
    response = engine_api.get(f"{BY_ID}/{missing}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == f"No checkpoint {missing}."


def test_a_checkpoint_named_like_a_uuid_is_read_by_name_and_another_by_that_id(engine_api):
    target = save(engine_api, "target", {"which": "by id"}).json()
    named = save(engine_api, target["checkpoint_id"], {"which": "by name"}).json()

    by_name = engine_api.get(f"{BASE}/{target['checkpoint_id']}")
    assert by_name.status_code == 200
    assert (by_name.json()["checkpoint_id"], by_name.json()["checkpoint_data"]) == (named["checkpoint_id"], {"which": "by name"})
    by_id = engine_api.get(f"{BY_ID}/{target['checkpoint_id']}")
    assert by_id.status_code == 200
    assert (by_id.json()["checkpoint_id"], by_id.json()["checkpoint_data"]) == (target["checkpoint_id"], {"which": "by id"})


def test_reads_by_id_and_by_correlation_need_sign_in_and_any_role_will_do(api, make_reviewer, engine_api):
    saved = save(engine_api).json()
    urls = (f"{BY_ID}/{saved['checkpoint_id']}", f"{BY_CORRELATION}?correlation_id={saved['correlation_id']}")
    for url in urls:
        response = api.get(url)
        assert response.status_code == 401 and response.json()["detail"]
    api.force_login(make_reviewer("viewer"))
    for url in urls:
        response = api.get(url)
        assert response.status_code == 200 and response.json()["checkpoint_id"] == saved["checkpoint_id"]


def test_latest_by_correlation_is_the_newest_active_one_across_actions(engine_api):
    Action.objects.create(action_id="ACT-2", action_type="X")
    correlation = str(uuid.uuid4())
    first = save(engine_api, "draft", correlation_id=correlation).json()
    save(engine_api, "draft", correlation_id=str(uuid.uuid4()))  # newer, of another correlation
    other_action = checkpoint_save(
        action_id="ACT-2", checkpoint_name="review", checkpoint_data={}, correlation_id=uuid.UUID(correlation)
    )
    resumed = save(engine_api, "send", correlation_id=correlation).json()
    engine_api.post(f"{BASE}/{resumed['checkpoint_id']}/resume")

    response = engine_api.get(BY_CORRELATION, {"correlation_id": correlation})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == ALL_COLUMNS
    assert (body["checkpoint_id"], body["action_id"]) == (str(other_action.id), "ACT-2")

    named = engine_api.get(BY_CORRELATION, {"correlation_id": correlation, "checkpoint_name": "draft"}).json()
    assert named["checkpoint_id"] == first["checkpoint_id"]
    only_resumed = engine_api.get(BY_CORRELATION, {"correlation_id": correlation, "checkpoint_name": "send"})
    assert only_resumed.status_code == 404 and "'send'" in only_resumed.json()["detail"]
    unknown = engine_api.get(BY_CORRELATION, {"correlation_id": str(uuid.uuid4())})
    assert unknown.status_code == 404 and unknown.json()["detail"].endswith("has no active checkpoint.")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "required"),
        ({"checkpoint_name": "draft"}, "required"),
        ({"correlation_id": ""}, "UUID"),
        ({"correlation_id": "not-a-uuid"}, "UUID"),
        ({"correlation_id": "123"}, "UUID"),
    ],
)
def test_latest_by_correlation_without_a_valid_correlation_id_is_400_naming_it(engine_api, query, message):
    save(engine_api)
    response = engine_api.get(BY_CORRELATION, query)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("correlation_id:")
    assert message in response.json()["detail"]
