from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import api_token_create, service_account_ensure


class Command(BaseCommand):
    help = "Create the service account NAME if needed and print a new API token for it (last line)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="e.g. action-engine")

    def handle(self, *args, name, **options):
        try:
            user = service_account_ensure(name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        _, raw = api_token_create(user=user, name=f"create_service_token {name}")
        self.stdout.write(f"Service account {name} (id {user.account.actor_id}); send the token as 'Authorization: Bearer <token>':")
        self.stdout.write(raw)
