"""The e-mail channel, on: each reviewer is e-mailed what waits for them. Admins can turn
it off, or narrow it, in admin."""

from django.db import migrations


def create_email_channel(apps, schema_editor):
    Channel = apps.get_model("notifications", "Channel")
    if not Channel.objects.filter(kind="email").exists():
        Channel.objects.create(name="E-mail", kind="email", enabled=True)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_initial")]

    operations = [migrations.RunPython(create_email_channel, migrations.RunPython.noop)]
