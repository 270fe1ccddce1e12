"""PostgreSQL: any change to rules or settings, however made, sends NOTIFY on commit, so
every process's rule cache (risk.rulebook) reloads on its next assessment."""

from django.db import migrations

TABLES = ("risk_riskrule", "risk_risksettings")


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        """
        CREATE OR REPLACE FUNCTION hitl_risk_rules_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('hitl_risk_rules', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION hitl_risk_rules_notify()"
        )


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS hitl_risk_rules_notify()")


class Migration(migrations.Migration):
    dependencies = [("risk", "0002_default_rules")]
    operations = [migrations.RunPython(create_triggers, drop_triggers)]
