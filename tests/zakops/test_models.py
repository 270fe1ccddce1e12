"""The ORM reads and writes the ZakOps tables as the backend has them."""

import uuid
from decimal import Decimal

import pytest
from django.db import connection

from zakops.models import Action, Deal, DealEvent, ExecutionCheckpoint, Operator, OutboxEvent

pytestmark = pytest.mark.django_db

NESTED = {"to": ["cfo@seller.example"], "body": "Grüße, 你好 ✓", "amount": 12345678901234, "meta": {"a": [1, {"b": None}]}}


def test_actions_round_trip_json_and_uuids_unchanged():
    deal = Deal.objects.create(deal_id="DL-0042", canonical_name="Acme Holdings")
    correlation = uuid.uuid4()
    Action.objects.create(
        action_id="ACT-20260119T101500-1a2b3c4d",
        deal=deal,
        action_type="COMMUNICATION.SEND_EMAIL",
        inputs=NESTED,
        audit_trail=[{"at": "2026-01-19T10:15:00Z", "event": "created"}],
        correlation_id=correlation,
    )
    action = Action.objects.select_related("deal").get(pk="ACT-20260119T101500-1a2b3c4d")
    assert action.inputs == NESTED
    assert action.correlation_id == correlation
    assert action.deal.canonical_name == "Acme Holdings"
    assert deal.stage == "inbound" and deal.status == "active"


def test_deleting_a_deal_keeps_its_actions_without_a_deal():
    deal = Deal.objects.create(deal_id="DL-0001", canonical_name="Acme")
    Action.objects.create(action_id="ACT-1", deal=deal, action_type="DEAL.GET_DETAILS")
    deal.delete()
    assert Action.objects.get(pk="ACT-1").deal_id is None


def test_deal_events_get_increasing_sequence_numbers_from_the_table_default():
    first = DealEvent.objects.create(event_type="hitl.approved", details={"action_id": "ACT-1"})
    second = DealEvent.objects.create(event_type="hitl.rejected", details={"action_id": "ACT-2"})
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.sequence_number is not None
    assert second.sequence_number > first.sequence_number


def test_checkpoints_operators_and_outbox_round_trip():
    Action.objects.create(action_id="ACT-1", action_type="DOCUMENT.GENERATE_LOI")
    checkpoint = ExecutionCheckpoint.objects.create(
        correlation_id=uuid.uuid4(), action_id="ACT-1", checkpoint_name="after_generation",
        checkpoint_data={"pages": 50, "ratio": 0.25}, sequence_number=0,
    )
    assert ExecutionCheckpoint.objects.get(pk=checkpoint.pk).status == "active"
    operator = Operator.objects.create(email="ops@example.com", role="operator")
    assert Operator.objects.get(pk=operator.pk).email == "ops@example.com"
    event = OutboxEvent.objects.create(
        correlation_id=uuid.uuid4(), aggregate_type="action", aggregate_id="ACT-1",
        event_type="hitl.approved", event_data={"action_id": "ACT-1", "amount": str(Decimal("1.10"))},
    )
    stored = OutboxEvent.objects.get(pk=event.pk)
    assert (stored.status, stored.attempts, stored.max_attempts, stored.schema_version) == ("pending", 0, 5, 1)


def test_checkpoint_sequence_is_unique_per_action_and_name():
    from django.db import IntegrityError, transaction

    Action.objects.create(action_id="ACT-1", action_type="X")
    fields = {"correlation_id": uuid.uuid4(), "action_id": "ACT-1", "checkpoint_name": "n", "checkpoint_data": {}}
    ExecutionCheckpoint.objects.create(sequence_number=0, **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        ExecutionCheckpoint.objects.create(sequence_number=0, **fields)


@pytest.mark.postgresql
def test_shared_tables_are_in_schema_zakops_and_djangos_are_not():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema IN ('zakops', 'public')"
        )
        tables = cursor.fetchall()
    zakops_tables = {name for schema, name in tables if schema == "zakops"}
    assert zakops_tables == {"deals", "actions", "deal_events", "execution_checkpoints", "operators", "outbox"}
    public_tables = {name for schema, name in tables if schema == "public"}
    assert {"django_migrations", "auth_user", "accounts_apitoken"} <= public_tables
