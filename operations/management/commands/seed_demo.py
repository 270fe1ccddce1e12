import json
import shlex

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from operations.demo import DEMO_SERVICE_ACCOUNT, DEMO_TRY_REQUEST, DemoSeedRefused, demo_seed


def sign_in_lines(people) -> list[str]:
    lines = ["Sign in with one of these demo accounts:"]
    width = max(len(email) for email, _, _ in people)
    for email, role, password in people:
        shown = f"password {password}" if password else "(password changed since it was seeded)"
        lines.append(f"  {role:<9} {email:<{width}} {shown}")
    return lines


def token_lines(token: str | None, *, base_url: str) -> list[str]:
    """The demo engine's token, once, in a curl line that opens a request with it."""
    if token is None:
        return [f"The demo engine's API token ({DEMO_SERVICE_ACCOUNT}) was revoked; make another with create_service_token."]
    curl = (
        f'TOKEN={token}; curl -sS -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json"'
        f" -d {shlex.quote(json.dumps(DEMO_TRY_REQUEST, separators=(',', ':')))} {base_url}/api/hitl/approval-requests"
    )
    return [
        f"The demo engine's API token ({DEMO_SERVICE_ACCOUNT}; a demo token, not for production), in a curl that",
        "opens a critical request as the engine would (it then needs two admins' approvals):",
        f"  {curl}",
    ]


class Command(BaseCommand):
    help = (
        "Create the demo data set where it is missing (idempotent; existing rows are left as they are) "
        "and print the demo sign-in details and the demo engine's API token. Refuses a database that "
        "holds deals or actions that are not demo data, unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true",
            help="Seed even though the database holds deals or actions that are not demo data "
            "(they are left as they are; the demo's approval events go to the outbox like any other).",
        )
        parser.add_argument(
            "--skip-refused", action="store_true",
            help="On a database that holds data that is not the demo's, say so in one line and exit 0 "
            "instead of failing (scripts/run uses it).",
        )

    def handle(self, *args, force, skip_refused, **options):
        try:
            seeded = demo_seed(force=force)
        except DemoSeedRefused as refused:
            if skip_refused:
                self.stdout.write(f"Demo: not seeded, {refused} (seed_demo --force adds it anyway).")
                return
            raise CommandError(
                f"seed_demo refused: {refused}. The demo is meant for an empty or demo-only database; "
                "pass --force to add it here anyway (rows that are already there are left as they are)."
            ) from None
        lines = [
            f"Demo data: {seeded['deals']} deals, {seeded['actions']} actions, "
            f"{seeded['requests']} approval requests, {seeded['checkpoints']} checkpoints.",
            *sign_in_lines(seeded["people"]),
            *token_lines(seeded["token"], base_url=settings.HITL_BASE_URL),
        ]
        self.stdout.write("\n".join(lines))
