"""PostgreSQL: the rule triggers also count each change in hitl_change_version, so that an
app server behind a transaction pooler, where LISTEN can not work, sees rule edits within
a second by reading that row (common.changes, "poll" mode)."""

from django.db import migrations

from common.changes import change_version_create, change_version_drop

CHANNEL = "hitl_risk_rules"


class Migration(migrations.Migration):
    dependencies = [("risk", "0006_verb_anchored_defaults")]

    operations = [
        migrations.RunPython(
            lambda apps, editor: change_version_create(editor, channel=CHANNEL),
            lambda apps, editor: change_version_drop(editor, channel=CHANNEL),
        )
    ]
