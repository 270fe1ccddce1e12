"""PostgreSQL: any change to rules or settings, however made, sends NOTIFY on commit, so
every process's rule cache (risk.rulebook) reloads on its next assessment."""

from django.db import migrations

from common.changes import notify_triggers_create, notify_triggers_drop

CHANNEL = "hitl_risk_rules"
TABLES = {
    "risk_riskrule": "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE",
    "risk_risksettings": "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE",
}


class Migration(migrations.Migration):
    dependencies = [("risk", "0002_default_rules")]
    operations = [
        migrations.RunPython(
            lambda apps, editor: notify_triggers_create(editor, channel=CHANNEL, tables=TABLES),
            lambda apps, editor: notify_triggers_drop(editor, channel=CHANNEL, tables=TABLES),
        )
    ]
