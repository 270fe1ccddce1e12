"""Exactly-once behaviour under real concurrency: threads on separate PostgreSQL connections."""

import json

import pytest
from rest_framework.test import APIClient

from checkpoints.services import checkpoint_save
from tests.conftest import run_at_once
from zakops.models import Action, ExecutionCheckpoint

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
THREADS = 20


def client_for(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_concurrent_saves_for_one_action_get_sequence_numbers_0_to_19(service_token):
    Action.objects.create(action_id="ACT-RACE", action_type="X")

    def work(i):
        body = {"checkpoint_name": f"worker-{i % 3}", "checkpoint_data": {"worker": i}}
        return client_for(service_token).post(
            "/api/hitl/actions/ACT-RACE/checkpoints", json.dumps(body), content_type="application/json"
        ).status_code

    for _ in range(3):  # several rounds: the first round is not a lucky one
        ExecutionCheckpoint.objects.all().delete()
        assert run_at_once(THREADS, work) == [201] * THREADS
        numbers = sorted(ExecutionCheckpoint.objects.values_list("sequence_number", flat=True))
        assert numbers == list(range(THREADS))


def test_concurrent_saves_in_process_have_no_gaps_or_errors():
    Action.objects.create(action_id="ACT-RACE", action_type="X")
    results = run_at_once(
        THREADS, lambda i: checkpoint_save(action_id="ACT-RACE", checkpoint_name="n", checkpoint_data={"i": i})
    )
    assert not [r for r in results if isinstance(r, Exception)]
    assert sorted(r.sequence_number for r in results) == list(range(THREADS))


def test_twenty_resumes_of_one_checkpoint_one_wins(service_token):
    Action.objects.create(action_id="ACT-RACE", action_type="X")
    for round_ in range(3):
        checkpoint = checkpoint_save(action_id="ACT-RACE", checkpoint_name=f"gate-{round_}", checkpoint_data={})
        url = f"/api/hitl/actions/ACT-RACE/checkpoints/{checkpoint.id}/resume"
        statuses = run_at_once(THREADS, lambda i: client_for(service_token).post(url).status_code)
        assert sorted(statuses) == [200] + [409] * (THREADS - 1)
        checkpoint.refresh_from_db()
        assert checkpoint.status == "resumed" and checkpoint.resumed_at is not None
