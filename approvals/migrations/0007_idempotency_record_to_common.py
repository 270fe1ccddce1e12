"""IdempotencyRecord now belongs to common (it serves every app's POSTs): the table stays."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("approvals", "0006_sqlite_change_version"), ("common", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="IdempotencyRecord")],
            database_operations=[],
        ),
    ]
