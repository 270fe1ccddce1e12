"""A generated-input run over every operation of the served OpenAPI schema (schemathesis,
in process over WSGI): whatever is sent, no answer is a 5xx, every status is one the
schema documents for that operation, and every body matches its documented schema.

Each operation is called by the engine's service token and by an admin's token, with
inputs that follow the schema and inputs that break it, once with generated path
parameters and once on seeded data (an action with a pending request, a checkpoint),
so that not every call is a 404. Hypothesis is derandomized: the run is the same each
time.
"""

import time
from collections import Counter
from contextlib import contextmanager

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.test import APIClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from accounts.selectors import actor_of
from accounts.services import api_token_create, operator_upsert, service_account_ensure
from approvals.services.requests import approval_request
from checkpoints.services import checkpoint_save

pytestmark = pytest.mark.django_db
# Per caller (2), generation mode (2) and path choice (2 where there are path parameters):
# 200 cases for most operations, 100 for those without path parameters.
EXAMPLES = 25
SCHEMA_EXAMPLES = 5  # the schema endpoint builds the whole schema on every call
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@contextmanager
def sharing_the_test_connection():
    """Requests to Django's WSGI application use the test's connection and transaction, as
    they do through Django's test client: no connection is closed between requests."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(db):
    engine = service_account_ensure(name="action-engine")
    admin = operator_upsert(email="ada@example.com", role="admin", password=None, name="Ada Admin")
    approval_request(
        action_id="ACT-FUZZ-1", action_type="COMMUNICATION.SEND_EMAIL", inputs={"to": "cfo@seller.example"},
        requester=actor_of(engine), requested_by="ana@example.com",
    )
    checkpoint = checkpoint_save(action_id="ACT-FUZZ-1", checkpoint_name="generated", checkpoint_data={"step": 1})
    return {
        "callers": {
            "engine": api_token_create(user=engine, name="fuzz")[1],
            "admin": api_token_create(user=admin, name="fuzz")[1],
        },
        "path": {"action_id": "ACT-FUZZ-1", "checkpoint_id": str(checkpoint.id), "checkpoint_name": "generated"},
    }


def fuzz(strategy, *, examples: int, caller: str, headers: dict, record):
    """Run `examples` generated cases; hand each (caller, response, failure or None) to `record`."""

    @settings(
        max_examples=examples, derandomize=True, database=None, deadline=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, BaseExceptionGroup) as failure:  # collected; the test reports them all
            record(caller, response, failure)
        else:
            record(caller, response, None)

    run()


def operation_labels() -> list[str]:
    """Every operation of the schema, as schemathesis labels them ("GET /api/hitl/…")."""
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return [f"{method.upper()} {path}" for path, methods in paths.items() for method in methods]


_served: dict = {}


def served_schema(token: str) -> dict:
    """The schema as /api/hitl/schema/ serves it (the same for every caller; fetched once)."""
    if not _served:
        response = APIClient().get("/api/hitl/schema/", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200
        _served.update(response.json())
    return _served


@pytest.mark.parametrize("label", operation_labels())
def test_generated_calls_get_no_5xx_and_only_documented_statuses(seeded, label):
    # Loaded as a document, not from its URL: schemathesis leaves out the operation that
    # served the schema, and it is an operation of the API like any other.
    schema = schemathesis.openapi.from_dict(served_schema(seeded["callers"]["engine"]))
    schema.app = WSGIHandler()  # called in process, no network
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    names = {parameter.name for parameter in operation.path_parameters}
    seeded_path = {name: value for name, value in seeded["path"].items() if name in names}
    examples = SCHEMA_EXAMPLES if path.endswith("/schema/") else EXAMPLES
    failures: dict[tuple, str] = {}
    statuses: Counter = Counter()

    def record(caller, response, failure):
        statuses[response.status_code] += 1
        if failure is not None:
            failures.setdefault((caller, response.status_code, type(failure).__name__), str(failure))

    started = time.monotonic()
    with sharing_the_test_connection():
        for caller, token in seeded["callers"].items():
            headers = {"Authorization": f"Bearer {token}"}
            with transaction.atomic():  # each caller starts from the seeded data
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    for path_parameters in [None, seeded_path] if seeded_path else [None]:
                        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
                        fuzz(strategy, examples=examples, caller=caller, headers=headers, record=record)
                transaction.set_rollback(True)
    total = sum(statuses.values())
    print(f"\n{label}: {total} cases in {time.monotonic() - started:.1f} s ({dict(sorted(statuses.items()))})")
    assert not failures, "\n\n".join(f"{key}:\n{text}" for key, text in failures.items())
    assert total == examples * len(seeded["callers"]) * 2 * (2 if seeded_path else 1)


def test_every_operation_is_fuzzed(engine_api):
    served = engine_api.get("/api/hitl/schema/").json()["paths"]
    assert sorted(operation_labels()) == sorted(f"{m.upper()} {p}" for p, methods in served.items() for m in methods)
