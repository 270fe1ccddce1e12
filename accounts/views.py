"""The page a refused sign-in gets (django-axes calls it when a client, an account or an
address has failed too often)."""

from django.conf import settings
from django.shortcuts import render


def sign_in_refused(request, original_response=None, credentials=None):
    # Every refused attempt counts as a failure and starts the cool-off again
    # (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT), so the wait is the whole cool-off.
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    minutes = max(1, round(seconds / 60))
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}
    response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response
