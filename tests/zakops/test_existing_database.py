"""`migrate` on a database that already holds the ZakOps tables changes none of them."""

import copy
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connections

from zakops.ddl import SHARED_TABLES
from zakops.models import Action, Deal, DealEvent, ExecutionCheckpoint, Operator, OutboxEvent

pytestmark = pytest.mark.postgresql
ROOT = Path(__file__).resolve().parents[2]


def conninfo(settings_dict, dbname):
    return psycopg.conninfo.make_conninfo(
        dbname=dbname,
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        user=settings_dict["USER"] or None,
        password=settings_dict["PASSWORD"] or None,
    )


def snapshot(conn):
    """Columns, constraints, indexes and rows of every ZakOps table."""
    columns = conn.execute(
        "SELECT table_name, column_name, data_type, is_nullable, column_default, character_maximum_length"
        " FROM information_schema.columns WHERE table_schema = 'zakops' ORDER BY table_name, column_name"
    ).fetchall()
    constraints = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = 'zakops'::regnamespace ORDER BY 1, 2"
    ).fetchall()
    indexes = conn.execute(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'zakops' ORDER BY 1, 2"
    ).fetchall()
    tables = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'zakops' ORDER BY 1"
    ).fetchall()
    rows = {
        table: conn.execute(f"SELECT row_to_json(t)::text FROM zakops.{table} t ORDER BY 1").fetchall()
        for table in SHARED_TABLES
    }
    return columns, constraints, indexes, tables, rows


@pytest.fixture
def backend_database(django_db_blocker):
    """A scratch database built from the backend's DDL, with rows; dropped afterwards."""
    settings_dict = copy.deepcopy(connections.settings["default"])
    name = f"zakops_existing_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(conninfo(settings_dict, "postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(conninfo(settings_dict, name), autocommit=True) as conn:
            conn.execute((Path(__file__).parent / "backend_schema.sql").read_text())
        yield settings_dict, name
    finally:
        if name in connections.settings:
            connections[name].close()
            del connections.settings[name]
        with psycopg.connect(conninfo(settings_dict, "postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrate_keeps_existing_tables_and_rows_and_the_orm_reads_them(backend_database, django_db_blocker):
    settings_dict, name = backend_database
    with psycopg.connect(conninfo(settings_dict, name)) as conn:
        before = snapshot(conn)

    user = f"{settings_dict['USER']}@" if settings_dict["USER"] else ""
    url = f"postgres://{user}{settings_dict['HOST'] or 'localhost'}:{settings_dict['PORT'] or 5432}/{name}"
    env = {**os.environ, "DATABASE_URL": url}
    if settings_dict["PASSWORD"]:
        env["PGPASSWORD"] = settings_dict["PASSWORD"]
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr

    with psycopg.connect(conninfo(settings_dict, name)) as conn:
        after = snapshot(conn)
        django_tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            " AND table_name = 'django_migrations'"
        ).fetchone()[0]
    # The only change allowed: indexes of our own, named hitl_* (the shared tables may
    # gain indexes, never columns).
    added_indexes = [row for row in after[2] if row not in before[2]]
    assert sorted(name for _, name, _ in added_indexes) == [
        "hitl_actions_status_created", "hitl_checkpoints_action_sequence", "hitl_checkpoints_correlation", "hitl_deal_events_action",
    ]
    after = (after[0], after[1], [row for row in after[2] if row not in added_indexes], after[3], after[4])
    for part, old, new in zip(("columns", "constraints", "indexes", "tables", "rows"), before, after):
        assert new == old, f"migrate changed the {part} of the ZakOps tables"
    assert django_tables == 1  # Django's own tables went to public, not zakops

    connections.settings[name] = {**settings_dict, "NAME": name}
    with django_db_blocker.unblock():
        action = Action.objects.using(name).select_related("deal").get(pk="ACT-20260119T101500-1a2b3c4d")
        assert action.inputs == {"to": "cfo@seller.example", "n": [1, 2]}
        assert action.deal.stage == "closed"
        assert str(action.correlation_id) == "a3f1b2c4-0000-4000-8000-000000000001"
        assert Action.objects.using(name).get(pk="ACT-20260119T101600-5e6f7a8b").approved_at is not None
        assert Deal.objects.using(name).count() == 2
        assert DealEvent.objects.using(name).get().details == {"note": "Grüße"}
        assert ExecutionCheckpoint.objects.using(name).get().status == "active"
        assert Operator.objects.using(name).get().role == "admin"
        assert OutboxEvent.objects.using(name).get().status == "delivered"
