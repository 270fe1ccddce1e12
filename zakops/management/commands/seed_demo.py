from django.core.management.base import BaseCommand

from zakops.demo import demo_seed


class Command(BaseCommand):
    help = "Create or refresh the demo data set (idempotent) and print the demo sign-in details."

    def handle(self, *args, **options):
        seeded = demo_seed()
        self.stdout.write(
            f"Demo data: {seeded['deals']} deals, {seeded['actions']} actions, "
            f"{seeded['requests']} approval requests, {seeded['checkpoints']} checkpoints."
        )
        self.stdout.write("Sign in with one of:")
        for email, role, password in seeded["people"]:
            self.stdout.write(f"  {role:<9} {email:<24} password {password}")
