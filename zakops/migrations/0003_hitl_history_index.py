"""PostgreSQL: an action's history on the reviewer pages reads zakops.deal_events by
`details -> 'action_id'` (the ORM's `details__action_id`); this index makes that one
index read however long the audit trail grows. Additive and named hitl_*, as in 0002."""

from django.db import migrations

NAME = "hitl_deal_events_action"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {NAME} ON zakops.deal_events ((details -> 'action_id'))")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS zakops.{NAME}")


class Migration(migrations.Migration):
    dependencies = [("zakops", "0002_hitl_indexes")]
    operations = [migrations.RunPython(create, drop)]
