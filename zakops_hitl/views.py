"""Pages that belong to no app: health, and the icon browsers ask for."""

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET


@login_not_required
@never_cache
@require_GET
def health(request):
    """For load balancers: says only whether the app can reach its database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@login_not_required
@cache_control(max_age=86400, public=True)
@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico on every page that names no icon (Django admin)."""
    return redirect(static("img/favicon.svg"), permanent=True)
