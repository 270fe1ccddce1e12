"""PostgreSQL: the NOTIFY of a change to a request names the action (`key:<action_id>`),
so a process drops only that action's poll from its cache (approvals.selectors); a
statement touching more than 100 actions, and TRUNCATE, still name the table. Subscribers
that do not ask for keys (the queue's version) hear every change as before. SQLite's count
in hitl_change_version can not name an action: a process on a SQLite file drops its whole
poll cache when the count moves."""

from django.db import migrations

from common.keyed_cache import keyed_notify_triggers_create, keyed_notify_triggers_drop

CHANNEL = "hitl_approvals"
TABLE = "approvals_approvalrequest"


class Migration(migrations.Migration):
    dependencies = [("approvals", "0007_idempotency_record_to_common")]
    operations = [
        migrations.RunPython(
            lambda apps, editor: keyed_notify_triggers_create(editor, channel=CHANNEL, table=TABLE, key_column="action_id"),
            lambda apps, editor: keyed_notify_triggers_drop(editor, channel=CHANNEL, table=TABLE),
        )
    ]
