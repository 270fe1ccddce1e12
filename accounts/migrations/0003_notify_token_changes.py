"""PostgreSQL: a change that could make a cached API token wrong (or the role cached
with it) sends NOTIFY hitl_api_tokens on commit, however it was made (see
accounts.authentication)."""

from django.db import migrations

from common.changes import notify_triggers_create, notify_triggers_drop

CHANNEL = "hitl_api_tokens"
TABLES = {
    "accounts_apitoken": "AFTER UPDATE OF revoked_at, key_hash, user_id OR DELETE OR TRUNCATE",
    "auth_user": "AFTER UPDATE OF is_active, username OR DELETE OR TRUNCATE",
    "accounts_account": "AFTER UPDATE OR DELETE OR TRUNCATE",
    "auth_user_groups": "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE",  # roles are groups
}


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_role_groups")]
    operations = [
        migrations.RunPython(
            lambda apps, editor: notify_triggers_create(editor, channel=CHANNEL, tables=TABLES),
            lambda apps, editor: notify_triggers_drop(editor, channel=CHANNEL, tables=TABLES),
        )
    ]
