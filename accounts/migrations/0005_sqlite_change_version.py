"""SQLite: a change that could make a cached API token wrong (or the role cached with it),
however made, counts in hitl_change_version (common.changes; PostgreSQL has had
NOTIFY triggers since 0003)."""

from django.db import migrations

from common.changes import sqlite_version_triggers_create, sqlite_version_triggers_drop

CHANNEL = "hitl_api_tokens"
TABLES = {
    "accounts_apitoken": ("UPDATE OF revoked_at, key_hash, user_id", "DELETE"),
    "auth_user": ("UPDATE OF is_active, username", "DELETE"),
    "accounts_account": ("UPDATE", "DELETE"),
    "auth_user_groups": ("INSERT", "UPDATE", "DELETE"),  # roles are groups
}


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_change_version"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [
        migrations.RunPython(
            lambda apps, editor: sqlite_version_triggers_create(editor, channel=CHANNEL, tables=TABLES),
            lambda apps, editor: sqlite_version_triggers_drop(editor, channel=CHANNEL, tables=TABLES),
        )
    ]
