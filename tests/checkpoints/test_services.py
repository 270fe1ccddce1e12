import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from checkpoints import selectors, services
from checkpoints.models import SequenceFloor
from common.errors import Conflict, InvalidInput, NotFound, TooLarge
from zakops.models import Action, ExecutionCheckpoint

pytestmark = pytest.mark.django_db
OPERATOR = uuid.uuid4()


@pytest.fixture
def action():
    return Action.objects.create(action_id="ACT-1", action_type="DOCUMENT.GENERATE_LOI", correlation_id=uuid.uuid4())


def save(name="step", data=None, action_id="ACT-1", **kwargs):
    return services.checkpoint_save(action_id=action_id, checkpoint_name=name, checkpoint_data=data or {"n": 1}, **kwargs)


def test_sequence_numbers_count_from_zero_per_action(action):
    Action.objects.create(action_id="ACT-2", action_type="X")
    assert [save(name).sequence_number for name in ("a", "b", "a")] == [0, 1, 2]
    assert save(action_id="ACT-2").sequence_number == 0


def test_save_defaults_correlation_to_the_actions_and_sets_expiry(action):
    checkpoint = save(expires_in_hours=2, checkpoint_type="approval_gate", run_id=uuid.UUID(int=7))
    assert checkpoint.correlation_id == action.correlation_id
    assert checkpoint.checkpoint_type == "approval_gate"
    assert checkpoint.run_id == uuid.UUID(int=7)
    assert timedelta(hours=1, minutes=59) < checkpoint.expires_at - timezone.now() <= timedelta(hours=2)


def test_without_an_action_correlation_the_id_is_derived_from_the_action_id():
    Action.objects.create(action_id="ACT-9", action_type="X")
    first = save(action_id="ACT-9")
    assert first.correlation_id == save(action_id="ACT-9").correlation_id == Action(action_id="ACT-9").correlation


def test_saving_for_an_unknown_action_is_not_found():
    with pytest.raises(NotFound):
        save(action_id="ACT-NOPE")
    assert not ExecutionCheckpoint.objects.exists()


def test_unknown_type_and_non_object_data_are_refused(action):
    with pytest.raises(InvalidInput, match="state, approval_gate, external_call, timer, error_recovery"):
        save(checkpoint_type="nap")
    with pytest.raises(InvalidInput):
        services.checkpoint_save(action_id="ACT-1", checkpoint_name="x", checkpoint_data=[1, 2])


def test_data_over_the_limit_is_too_large(action, settings):
    settings.HITL_CHECKPOINT_MAX_BYTES = 100
    save(data={"blob": "x" * 80})
    with pytest.raises(TooLarge, match="limit is 100 bytes"):
        save(data={"blob": "x" * 100})


def test_data_round_trips_unchanged(action):
    data = {
        "nested": {"list": [1, 2.5, None, True, {"deep": ["ü", "日本", "🙂"]}]},
        "big": 12345678901234567890,
        "negative": -9007199254740993,
        "float": 0.1,
        "empty": {},
    }
    saved = save(data=data)
    assert ExecutionCheckpoint.objects.get(pk=saved.pk).checkpoint_data == data


def test_the_saved_checkpoint_is_the_row_as_it_reads_back(action):
    saved = save("gate", data={"step": 3}, expires_in_hours=1, run_id=uuid.UUID(int=5))
    assert saved.get_deferred_fields() == set()  # every column is there, none read again later
    stored = ExecutionCheckpoint.objects.get(pk=saved.pk)
    for field in ExecutionCheckpoint._meta.concrete_fields:
        assert getattr(saved, field.attname) == getattr(stored, field.attname), field.name
    assert (saved._state.adding, saved._state.db) == (False, "default")
    saved.refresh_from_db()
    assert saved.action.action_id == "ACT-1" and saved.status == "active"


def test_latest_is_the_newest_active_and_filters_by_name_and_correlation(action):
    a0, b1, a2 = save("a"), save("b"), save("a")
    assert selectors.checkpoint_latest(action_id="ACT-1") == a2
    assert selectors.checkpoint_latest(action_id="ACT-1", checkpoint_name="b") == b1
    assert selectors.checkpoint_latest(correlation_id=action.correlation_id, checkpoint_name="a") == a2
    services.checkpoint_resume(action_id="ACT-1", checkpoint_id=a2.id, resumed_by=OPERATOR)
    assert selectors.checkpoint_latest(action_id="ACT-1") == b1
    assert selectors.checkpoint_latest(action_id="ACT-1", active_only=False) == a2
    assert selectors.checkpoint_latest(action_id="ACT-1", checkpoint_name="a") == a0


def test_get_by_id(action):
    saved = save(data={"x": [1, 2]})
    assert selectors.checkpoint_get(checkpoint_id=saved.id).checkpoint_data == {"x": [1, 2]}
    assert selectors.checkpoint_get(checkpoint_id=uuid.uuid4()) is None


def test_an_overdue_checkpoint_is_not_active_even_before_the_sweep(action):
    overdue = save(expires_in_hours=1)
    ExecutionCheckpoint.objects.filter(pk=overdue.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert selectors.checkpoint_latest(action_id="ACT-1") is None
    with pytest.raises(Conflict, match="expired"):
        services.checkpoint_resume(action_id="ACT-1", checkpoint_id=overdue.id, resumed_by=OPERATOR)


def test_list_active_only_or_all(action):
    first, second, third = save("a"), save("b"), save("c")
    services.checkpoint_resume(action_id="ACT-1", checkpoint_id=first.id, resumed_by=OPERATOR)
    services.checkpoint_cancel(action_id="ACT-1", checkpoint_id=second.id)
    assert list(selectors.checkpoints_for_action(action_id="ACT-1")) == [third]
    assert list(selectors.checkpoints_for_action(action_id="ACT-1", include_inactive=True)) == [first, second, third]


def test_resume_succeeds_once_and_the_second_says_who_and_when(action):
    checkpoint = save()
    resumed = services.checkpoint_resume(action_id="ACT-1", checkpoint_id=checkpoint.id, resumed_by=OPERATOR)
    assert (resumed.status, resumed.resumed_by) == ("resumed", OPERATOR)
    assert resumed.resumed_at is not None
    with pytest.raises(Conflict) as conflict:
        services.checkpoint_resume(action_id="ACT-1", checkpoint_id=checkpoint.id, resumed_by=uuid.uuid4())
    assert conflict.value.extra["status"] == "resumed"
    assert conflict.value.extra["resumed_by"] == str(OPERATOR)
    assert str(OPERATOR) in conflict.value.detail
    assert ExecutionCheckpoint.objects.get(pk=checkpoint.pk).resumed_by == OPERATOR  # not overwritten


@pytest.mark.parametrize("status", ["cancelled", "expired"])
def test_resuming_a_cancelled_or_expired_checkpoint_is_a_conflict(action, status):
    checkpoint = save()
    ExecutionCheckpoint.objects.filter(pk=checkpoint.pk).update(status=status)
    with pytest.raises(Conflict, match=status):
        services.checkpoint_resume(action_id="ACT-1", checkpoint_id=checkpoint.id, resumed_by=OPERATOR)


def test_a_checkpoint_of_another_action_is_not_found(action):
    Action.objects.create(action_id="ACT-2", action_type="X")
    checkpoint = save()
    with pytest.raises(NotFound):
        services.checkpoint_resume(action_id="ACT-2", checkpoint_id=checkpoint.id, resumed_by=OPERATOR)
    with pytest.raises(NotFound):
        services.checkpoint_cancel(action_id="ACT-2", checkpoint_id=checkpoint.id)
    assert ExecutionCheckpoint.objects.get(pk=checkpoint.pk).status == "active"


def test_cancel_one_then_again_is_a_conflict(action):
    checkpoint = save()
    assert services.checkpoint_cancel(action_id="ACT-1", checkpoint_id=checkpoint.id).status == "cancelled"
    with pytest.raises(Conflict):
        services.checkpoint_cancel(action_id="ACT-1", checkpoint_id=checkpoint.id)


def test_cancel_all_of_an_action_leaves_others_and_finished_ones(action):
    Action.objects.create(action_id="ACT-2", action_type="X")
    done = save("done")
    services.checkpoint_resume(action_id="ACT-1", checkpoint_id=done.id, resumed_by=OPERATOR)
    save("a"), save("b")
    other = save(action_id="ACT-2")
    assert services.checkpoints_cancel_for_action(action_id="ACT-1") == 2
    statuses = dict(ExecutionCheckpoint.objects.filter(action_id="ACT-1").values_list("checkpoint_name", "status"))
    assert statuses == {"done": "resumed", "a": "cancelled", "b": "cancelled"}
    assert ExecutionCheckpoint.objects.get(pk=other.pk).status == "active"


def test_expire_marks_only_overdue_active_ones_and_a_second_run_changes_nothing(action):
    overdue, later, forever = save("o", expires_in_hours=1), save("l", expires_in_hours=5), save("f")
    now = timezone.now() + timedelta(hours=2)
    assert services.checkpoints_expire(now=now) == 1
    assert services.checkpoints_expire(now=now) == 0
    assert ExecutionCheckpoint.objects.get(pk=overdue.pk).status == "expired"
    assert {ExecutionCheckpoint.objects.get(pk=c.pk).status for c in (later, forever)} == {"active"}


def test_retention_deletes_only_old_non_active_checkpoints(action):
    old_resumed, old_active, new_cancelled = save("r"), save("a"), save("c")
    services.checkpoint_resume(action_id="ACT-1", checkpoint_id=old_resumed.id, resumed_by=OPERATOR)
    services.checkpoint_cancel(action_id="ACT-1", checkpoint_id=new_cancelled.id)
    ExecutionCheckpoint.objects.filter(pk__in=[old_resumed.pk, old_active.pk]).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    assert services.checkpoints_delete_old(days=30) == 1
    assert set(ExecutionCheckpoint.objects.values_list("checkpoint_name", flat=True)) == {"a", "c"}


def test_hitl_sweep_expires_and_applies_retention(action, settings, capsys):
    settings.HITL_CHECKPOINT_RETENTION_DAYS = 7
    overdue, old = save("o", expires_in_hours=1), save("old")
    ExecutionCheckpoint.objects.filter(pk=overdue.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    ExecutionCheckpoint.objects.filter(pk=old.pk).update(status="resumed", created_at=timezone.now() - timedelta(days=8))
    call_command("hitl_sweep")
    assert "1 expired, 1 older than 7 days deleted" in capsys.readouterr().out
    assert list(ExecutionCheckpoint.objects.values_list("status", flat=True)) == ["expired"]
    call_command("hitl_sweep")
    assert "0 expired, 0 older than 7 days deleted" in capsys.readouterr().out


def age(*checkpoints, days=31):
    ExecutionCheckpoint.objects.filter(pk__in=[c.pk for c in checkpoints]).update(
        created_at=timezone.now() - timedelta(days=days)
    )


def finish(first, second, third):
    services.checkpoint_resume(action_id=first.action_id, checkpoint_id=first.id, resumed_by=OPERATOR)
    services.checkpoint_cancel(action_id=second.action_id, checkpoint_id=second.id)
    services.checkpoint_resume(action_id=third.action_id, checkpoint_id=third.id, resumed_by=OPERATOR)


def test_numbers_deleted_by_retention_are_not_handed_out_again(action):
    Action.objects.create(action_id="ACT-2", action_type="X")
    saved = [save(name) for name in ("a", "b", "a")]
    assert [c.sequence_number for c in saved] == [0, 1, 2]
    finish(*saved)
    age(*saved)
    actionless = ExecutionCheckpoint.objects.create(  # the backend's table allows them; they have no sequence
        correlation_id=uuid.uuid4(), checkpoint_name="orphan", checkpoint_data={}, sequence_number=7,
        status="cancelled", created_at=timezone.now() - timedelta(days=40),
    )
    assert services.checkpoints_delete_old(days=30) == 4
    assert not ExecutionCheckpoint.objects.filter(pk__in=[c.pk for c in [*saved, actionless]]).exists()

    assert [save(name).sequence_number for name in ("a", "b")] == [3, 4]
    assert save(action_id="ACT-2").sequence_number == 0  # another action's numbering is its own
    assert dict(SequenceFloor.objects.values_list("action_id", "next_number")) == {"ACT-1": 3}


def test_when_only_the_highest_are_deleted_the_next_save_continues_after_them(action):
    kept, *highest = [save(name) for name in ("a", "b", "c", "d")]
    for checkpoint in highest:
        services.checkpoint_cancel(action_id="ACT-1", checkpoint_id=checkpoint.id)
    age(kept, *highest)  # the oldest is still active: retention keeps it
    assert services.checkpoints_delete_old(days=30) == 3
    assert list(ExecutionCheckpoint.objects.values_list("sequence_number", flat=True)) == [0]
    assert save().sequence_number == 4


def test_a_later_retention_of_lower_numbers_does_not_lower_the_floor(action):
    low, high = save("low"), save("high")
    services.checkpoint_cancel(action_id="ACT-1", checkpoint_id=high.id)
    age(low, high)
    assert services.checkpoints_delete_old(days=30) == 1
    services.checkpoint_cancel(action_id="ACT-1", checkpoint_id=low.id)
    assert services.checkpoints_delete_old(days=30) == 1
    assert not ExecutionCheckpoint.objects.exists()
    assert save().sequence_number == 2
    assert SequenceFloor.objects.get(pk="ACT-1").next_number == 2


def test_hitl_sweep_keeps_the_deleted_numbers_taken(action, settings, capsys):
    settings.HITL_CHECKPOINT_RETENTION_DAYS = 7
    saved = [save(name) for name in ("a", "b", "c")]
    finish(*saved)
    age(*saved, days=8)
    call_command("hitl_sweep")
    assert "0 expired, 3 older than 7 days deleted" in capsys.readouterr().out
    call_command("hitl_sweep")
    assert "0 expired, 0 older than 7 days deleted" in capsys.readouterr().out
    assert save().sequence_number == 3


def test_deleting_an_action_deletes_its_checkpoints(action):
    save()
    action.delete()
    assert not ExecutionCheckpoint.objects.exists()


def test_nan_and_infinity_are_refused_not_stored(action):
    with pytest.raises(InvalidInput, match="NaN"):
        save(data={"ratio": float("nan")})
    with pytest.raises(InvalidInput):
        save(data={"limit": float("inf")})
    assert not ExecutionCheckpoint.objects.exists()
