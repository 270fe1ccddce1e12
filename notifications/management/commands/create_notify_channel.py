"""`manage.py create_notify_channel`: a webhook channel from the command line, for
scripts and demos (Django admin does the same)."""

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from notifications.models import SIGNED_KINDS, Channel, ChannelKind, NotificationKind
from notifications.services import channel_save
from zakops.models import RiskLevel


class Command(BaseCommand):
    help = (
        "Create or update a webhook channel for notifications (admins can do the same in Django admin). "
        "For a signed webhook without --secret, the last line printed is its new signing secret."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--kind", choices=[ChannelKind.SLACK, ChannelKind.WEBHOOK, ChannelKind.ENGINE], required=True,
            help="engine: every decision, expiry and cancellation as hitl.decided (--only and --min-level do not apply).",
        )
        parser.add_argument(
            "--url", required=True,
            help="The address to post to; '-' reads it from standard input (it holds a secret: keep it out of shell history).",
        )
        parser.add_argument("--secret", default="", help="Signing secret of a signed webhook (default: keep, or generate).")
        parser.add_argument(
            "--only", default="", help=f"Comma-separated kinds to send ({', '.join(NotificationKind.values)}); default all.",
        )
        parser.add_argument("--min-level", choices=RiskLevel.values, default=RiskLevel.LOW, help="Lowest risk level sent.")
        parser.add_argument("--disabled", action="store_true", help="Create it switched off.")

    def handle(self, *args, name, kind, url, secret, only, min_level, disabled, **options):
        if url == "-":
            url = sys.stdin.readline().strip()
        kinds = [value.strip() for value in only.split(",") if value.strip()] or list(NotificationKind.values)
        unknown = set(kinds) - set(NotificationKind.values)
        if unknown:
            raise CommandError(f"--only: unknown kinds {', '.join(sorted(unknown))}")
        channel = Channel.objects.filter(name=name).first() or Channel(name=name)
        if channel.pk and channel.kind == ChannelKind.EMAIL:
            raise CommandError(f"{name!r} is the e-mail channel; change it in admin.")
        channel.kind, channel.url, channel.min_risk_level, channel.enabled = kind, url, min_level, not disabled
        if secret or channel.kind not in SIGNED_KINDS:
            channel.signing_secret = secret
        for value in NotificationKind.values:
            setattr(channel, f"on_{value}", value in kinds)
        try:
            channel.full_clean()
        except ValidationError as exc:
            raise CommandError("; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())) from None
        created = channel.pk is None
        generated = channel_save(channel=channel)
        sending = (
            "every decision, expiry and cancellation" if kind == ChannelKind.ENGINE
            else f"{', '.join(kinds)} from {min_level} risk up"
        )
        self.stdout.write(
            f"{'Created' if created else 'Updated'} channel {channel.name!r} ({channel.kind}) posting to {channel.destination}, "
            f"sending {sending}."
        )
        if generated:
            header = "X-Hitl-Signature" if kind == ChannelKind.ENGINE else "X-ZakOps-Signature"
            self.stdout.write(f"Signing secret (shown once; the receiver checks {header} with it):")
            self.stdout.write(generated)
