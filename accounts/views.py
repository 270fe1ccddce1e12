"""The page a refused sign-in gets (django-axes calls it when an account or an address
has failed too often)."""

from django.conf import settings
from django.shortcuts import render


def sign_in_refused(request, original_response=None, credentials=None):
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}
    return render(request, "registration/locked_out.html", context, status=429)
