"""PostgreSQL: the token triggers also count each change in hitl_change_version, so that an
app server behind a transaction pooler, where LISTEN can not work, sees a revoked token
within a second by reading that row (common.changes, "poll" mode)."""

from django.db import migrations

from common.changes import change_version_create, change_version_drop

CHANNEL = "hitl_api_tokens"


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_notify_token_changes")]

    operations = [
        migrations.RunPython(
            lambda apps, editor: change_version_create(editor, channel=CHANNEL),
            lambda apps, editor: change_version_drop(editor, channel=CHANNEL),
        )
    ]
