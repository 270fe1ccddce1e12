from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import api_token_create, operator_upsert
from zakops.models import OperatorRole


class Command(BaseCommand):
    help = "Create or update a reviewer and its zakops.operators row; --token prints a new API token last."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=OperatorRole.values)
        parser.add_argument("--password", help="Sets the sign-in password (omit to keep the current one).")
        parser.add_argument("--name", default="", help="Display name.")
        parser.add_argument("--token", action="store_true", help="Also create an API token and print it last.")

    def handle(self, *args, email, role, password, name, token, **options):
        try:
            user = operator_upsert(email=email, role=role, password=password, name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"{user.email}: role {role}, operator id {user.account.actor_id}")
        if not user.has_usable_password():
            self.stdout.write("No password set: pass --password to let this person sign in.")
        if token:
            _, raw = api_token_create(user=user, name=f"create_operator {user.email}")
            self.stdout.write(raw)
