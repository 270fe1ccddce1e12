"""SQLite: any change to rules or settings, however made, counts in hitl_change_version,
so every process's rule cache (risk.rulebook) reloads on its next assessment
(common.changes; PostgreSQL has had NOTIFY triggers since 0003)."""

from django.db import migrations

from common.changes import sqlite_version_triggers_create, sqlite_version_triggers_drop

CHANNEL = "hitl_risk_rules"
TABLES = {
    "risk_riskrule": ("INSERT", "UPDATE", "DELETE"),
    "risk_risksettings": ("INSERT", "UPDATE", "DELETE"),
}


class Migration(migrations.Migration):
    dependencies = [("risk", "0008_verb_phrase_help")]
    operations = [
        migrations.RunPython(
            lambda apps, editor: sqlite_version_triggers_create(editor, channel=CHANNEL, tables=TABLES),
            lambda apps, editor: sqlite_version_triggers_drop(editor, channel=CHANNEL, tables=TABLES),
        )
    ]
