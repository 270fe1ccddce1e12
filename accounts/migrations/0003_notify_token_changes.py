"""PostgreSQL: a change that could make a cached API token wrong sends NOTIFY
hitl_api_tokens on commit, however it was made (see accounts.authentication)."""

from django.db import migrations

TRIGGERS = {
    "accounts_apitoken": "AFTER UPDATE OF revoked_at, key_hash, user_id OR DELETE OR TRUNCATE",
    "auth_user": "AFTER UPDATE OF is_active, username OR DELETE OR TRUNCATE",
    "accounts_account": "AFTER UPDATE OR DELETE OR TRUNCATE",
}


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        """
        CREATE OR REPLACE FUNCTION hitl_api_tokens_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('hitl_api_tokens', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table, events in TRIGGERS.items():
        schema_editor.execute(
            f"CREATE TRIGGER {table}_tokens_notify {events} ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION hitl_api_tokens_notify()"
        )


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_tokens_notify ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS hitl_api_tokens_notify()")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_role_groups")]
    operations = [migrations.RunPython(create_triggers, drop_triggers)]
