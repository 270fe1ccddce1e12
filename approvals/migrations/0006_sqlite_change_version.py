"""SQLite: any change to a request, however made, counts in hitl_change_version, so every
process's queue version (approvals.selectors) is recomputed (common.changes;
PostgreSQL has had NOTIFY triggers since 0003)."""

from django.db import migrations

from common.changes import sqlite_version_triggers_create, sqlite_version_triggers_drop

CHANNEL = "hitl_approvals"
TABLES = {"approvals_approvalrequest": ("INSERT", "UPDATE", "DELETE")}


class Migration(migrations.Migration):
    dependencies = [("approvals", "0005_team_review")]
    operations = [
        migrations.RunPython(
            lambda apps, editor: sqlite_version_triggers_create(editor, channel=CHANNEL, tables=TABLES),
            lambda apps, editor: sqlite_version_triggers_drop(editor, channel=CHANNEL, tables=TABLES),
        )
    ]
