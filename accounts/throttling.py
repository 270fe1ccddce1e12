"""Sign-in throttling with one limit per kind of counter (django-axes' database handler).

A lockout by account alone lets anyone who knows a reviewer's e-mail lock them out; a
lockout by client address alone locks a whole office behind one NAT. So failures are
counted three ways, each with its own limit (`settings.HITL_LOGIN_LIMITS`):

- one account from one client: a few guesses (HITL_LOGIN_FAILURE_LIMIT), then that client
  is refused for that account, and the reviewer signs in from anywhere else;
- one account from every client: a guesser spread over many addresses is still stopped
  (HITL_LOGIN_ACCOUNT_FAILURE_LIMIT);
- one client for every account: one address spraying a password over many accounts
  (HITL_LOGIN_CLIENT_FAILURE_LIMIT).
"""

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.db.models import Sum


class SignInThrottle(AxesDatabaseHandler):
    def get_failures(self, request, credentials=None) -> int:
        """Axes compares this with AXES_FAILURE_LIMIT. Each counter's failures are scaled
        by its own limit, so the figure reaches AXES_FAILURE_LIMIT exactly when one
        counter reached its limit."""
        limits = [limit for _, limit in settings.HITL_LOGIN_LIMITS]
        worst = 0.0
        for attempts, limit in zip(self.get_user_attempts(request, credentials), limits, strict=True):
            failures = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            worst = max(worst, failures / limit)
        return int(worst * settings.AXES_FAILURE_LIMIT)

    def reset_user_attempts(self, request, credentials=None) -> int:
        """A sign-in with the right password clears only what that client did to that
        account: failures from other clients still count against the account, so a
        reviewer who signs in now and then does not reset a spread-out guesser's count."""
        pair = self.filter_user_attempts(request, credentials)[0]
        deleted, _ = pair.delete()
        return deleted
