from django.core.management.base import BaseCommand, CommandError

from operations.demo import DemoSeedRefused, demo_seed


class Command(BaseCommand):
    help = (
        "Create the demo data set where it is missing (idempotent; existing rows are left as they are) "
        "and print the demo sign-in details. Refuses a database that holds deals or actions that are "
        "not demo data, unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true",
            help="Seed even though the database holds deals or actions that are not demo data "
            "(they are left as they are; the demo's approval events go to the outbox like any other).",
        )

    def handle(self, *args, force, **options):
        try:
            seeded = demo_seed(force=force)
        except DemoSeedRefused as refused:
            raise CommandError(
                f"seed_demo refused: {refused}. The demo is meant for an empty or demo-only database; "
                "pass --force to add it here anyway (rows that are already there are left as they are)."
            ) from None
        self.stdout.write(
            f"Demo data: {seeded['deals']} deals, {seeded['actions']} actions, "
            f"{seeded['requests']} approval requests, {seeded['checkpoints']} checkpoints."
        )
        self.stdout.write("Sign in with one of:")
        for email, role, password in seeded["people"]:
            shown = f"password {password}" if password else "(password changed since it was seeded)"
            self.stdout.write(f"  {role:<9} {email:<24} {shown}")
