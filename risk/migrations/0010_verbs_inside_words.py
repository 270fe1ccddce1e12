"""Write verbs count inside words, with a list of whole words that are not writes; the
verbs added to the defaults join a stored list too (they can only ask for more approvals).
On SQLite, adding the column rebuilds the settings table, which drops its change triggers:
they are made again."""

import importlib

from django.db import migrations, models

import risk.models
from common.changes import sqlite_version_triggers_create

ADDED_VERBS = [
    "APPROVE", "REJECT", "CANCEL", "DROP", "INSERT", "DESTROY", "ENABLE", "DISABLE", "TRIGGER", "DEPLOY", "LAUNCH",
]
triggers = importlib.import_module("risk.migrations.0009_sqlite_change_version")


def add_verbs(apps, schema_editor):
    RiskSettings = apps.get_model("risk", "RiskSettings")
    for row in RiskSettings.objects.all():
        stored = [verb.strip().upper() for verb in row.write_verbs or ()]
        missing = [verb for verb in ADDED_VERBS if verb not in stored]
        if missing:
            row.write_verbs = [*(row.write_verbs or ()), *missing]
            row.save(update_fields=["write_verbs"])


def triggers_again(apps, schema_editor):
    sqlite_version_triggers_create(schema_editor, channel=triggers.CHANNEL, tables=triggers.TABLES)


class Migration(migrations.Migration):

    dependencies = [
        ('risk', '0009_sqlite_change_version'),
    ]

    operations = [
        migrations.AddField(
            model_name='risksettings',
            name='not_write_words',
            field=models.JSONField(blank=True, default=risk.models.default_not_write_words, help_text='Whole words that hold a write verb but do not write (ASSETS holds SET, PAYMENTS holds PAY): in an action type they do not count as a write. Case-insensitive.', validators=[risk.models.validate_not_write_words], verbose_name='words that are not writes'),
        ),
        migrations.AlterField(
            model_name='risksettings',
            name='write_verb_floor',
            field=models.BooleanField(default=True, help_text='An action type with a write verb or a joining word (AND, OR, THEN, PLUS, ALSO, WITH, AFTER, BEFORE) anywhere in it, or with characters other than ASCII letters, digits and separators, is never assessed below medium, and always needs approval, whatever rules match; and only a read (GET_…, LIST_…) is ever assessed low.'),
        ),
        migrations.AlterField(
            model_name='risksettings',
            name='write_verbs',
            field=models.JSONField(blank=True, default=risk.models.default_write_verbs, help_text='The write verbs: they count anywhere in the action type, inside a longer word too (SEND in COMMUNICATION.SEND_EMAIL, DEAL.GET_AND_SEND_NOTES and DEAL.RESENDMAIL). Case-insensitive.', validators=[risk.models.validate_verbs]),
        ),
        migrations.RunPython(add_verbs, migrations.RunPython.noop),
        migrations.RunPython(triggers_again, migrations.RunPython.noop),
    ]
