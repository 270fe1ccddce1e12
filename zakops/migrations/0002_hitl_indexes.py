"""Indexes this app's queries need. The shared tables may gain indexes, never columns;
these are additive (IF NOT EXISTS) and named hitl_* so they are recognisably ours."""

from django.db import migrations

INDEXES = {
    # The approval queue: one status, oldest first.
    "hitl_actions_status_created": ("actions", "status, created_at"),
    # A checkpoint save's next sequence number and "latest" read one index entry, not an
    # action's whole history.
    "hitl_checkpoints_action_sequence": ("execution_checkpoints", "action_id, sequence_number"),
}


def create_indexes(apps, schema_editor):
    schema = "zakops." if schema_editor.connection.vendor == "postgresql" else ""
    for name, (table, columns) in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {schema}{table} ({columns})")


def drop_indexes(apps, schema_editor):
    schema = "zakops." if schema_editor.connection.vendor == "postgresql" else ""
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema}{name}")


class Migration(migrations.Migration):
    dependencies = [("zakops", "0001_initial")]
    operations = [migrations.RunPython(create_indexes, drop_indexes)]
