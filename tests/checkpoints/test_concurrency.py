"""Exactly-once behaviour under real concurrency: threads on separate PostgreSQL connections."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from checkpoints.services import checkpoint_cancel, checkpoint_save, checkpoints_delete_old
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


def test_saves_racing_retention_runs_hand_out_every_number_once():
    """Savers save, cancel and age checkpoints in a row, so an action's newest ones are
    soon due for deletion, while sweeps delete them over and over (several actions at once,
    each sweep raising several floors). Every number handed out is new: an action's are
    0..n-1, without duplicate or gap, and each row is deleted by exactly one sweep."""
    sweepers, actions, savers_per_action, saves_each = 4, 8, 2, 10
    savers = actions * savers_per_action
    action_ids = [f"ACT-RACE-{a}" for a in range(actions)]
    for action_id in action_ids:
        Action.objects.create(action_id=action_id, action_type="X")
    savers_left, lock, savers_done = [savers], threading.Lock(), threading.Event()

    def sweep_until_the_savers_are_done():
        deleted = 0
        while not savers_done.is_set():
            deleted += checkpoints_delete_old(days=30)
            time.sleep(0.001)
        return deleted

    def save_cancel_and_age(action_id):
        numbers = []
        try:
            for n in range(saves_each):
                checkpoint = checkpoint_save(action_id=action_id, checkpoint_name=f"step-{n}", checkpoint_data={})
                checkpoint_cancel(action_id=action_id, checkpoint_id=checkpoint.id)
                ExecutionCheckpoint.objects.filter(pk=checkpoint.pk).update(created_at=timezone.now() - timedelta(days=31))
                numbers.append(checkpoint.sequence_number)
        finally:
            with lock:
                savers_left[0] -= 1
                if not savers_left[0]:
                    savers_done.set()
        return action_id, numbers

    results = run_at_once(
        sweepers + savers,
        lambda i: sweep_until_the_savers_are_done() if i < sweepers else save_cancel_and_age(action_ids[i % actions]),
    )
    assert not [r for r in results if isinstance(r, Exception)]
    handed_out = {action_id: [] for action_id in action_ids}
    for action_id, numbers in results[sweepers:]:
        handed_out[action_id] += numbers
    per_action = savers_per_action * saves_each
    assert {a: sorted(numbers) for a, numbers in handed_out.items()} == {a: list(range(per_action)) for a in action_ids}
    deleted = sum(results[:sweepers])
    assert deleted > 0  # the sweeps did race the saves
    assert deleted + ExecutionCheckpoint.objects.count() == savers * saves_each  # each row deleted once

    checkpoints_delete_old(days=30)
    assert not ExecutionCheckpoint.objects.exists()
    for action_id in action_ids:
        assert checkpoint_save(action_id=action_id, checkpoint_name="after", checkpoint_data={}).sequence_number == per_action
