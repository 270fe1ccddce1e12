"""Indexes for two reads added after 0002, additive and named hitl_* as there:

- the reviewer pages read an action's history from zakops.deal_events by
  `details -> 'action_id'` (the ORM's `details__action_id`; PostgreSQL only, an
  expression index), one index read however long the audit trail grows;
- the engine reads the latest checkpoint of a correlation (`checkpoints/latest`).
"""

from django.db import migrations

POSTGRESQL_ONLY = {"hitl_deal_events_action": ("deal_events", "(details -> 'action_id')")}
INDEXES = {"hitl_checkpoints_correlation": ("execution_checkpoints", "correlation_id, created_at")}


def create(apps, schema_editor):
    on_postgresql = schema_editor.connection.vendor == "postgresql"
    schema = "zakops." if on_postgresql else ""
    for name, (table, columns) in {**INDEXES, **(POSTGRESQL_ONLY if on_postgresql else {})}.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {schema}{table} ({columns})")


def drop(apps, schema_editor):
    schema = "zakops." if schema_editor.connection.vendor == "postgresql" else ""
    for name in {**INDEXES, **POSTGRESQL_ONLY}:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema}{name}")


class Migration(migrations.Migration):
    dependencies = [("zakops", "0002_hitl_indexes")]
    operations = [migrations.RunPython(create, drop)]
