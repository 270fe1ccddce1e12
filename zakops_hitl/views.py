"""Pages that belong to no app: health and readiness for load balancers, the metrics for
Prometheus, and the icon browsers ask for."""

from functools import wraps

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer

from accounts.selectors import user_is_service, user_role
from common import metrics
from common.api import HitlAPIView, json_error
from common.changes import feed

# How long a readiness check waits for this process's change listener to connect, the
# first time it is asked (the listener starts with the first use of a cache).
LISTENER_WAIT_SECONDS = 2.0


def json_get_only(view):
    """require_GET for a JSON endpoint: its 405, and every other error of its path
    (common.api's error views read `answers_json`), is JSON like its answers."""

    @wraps(view)
    def get_only(request, *args, **kwargs):
        if request.method != "GET":
            response = json_error(405, "Only GET is allowed here.")
            response["Allow"] = "GET"
            return response
        return view(request, *args, **kwargs)

    get_only.answers_json = True
    return get_only


@login_not_required
@never_cache
@json_get_only
def health(request):
    """Liveness: the process answers. Asks nothing of the database, so a database outage
    does not make an orchestrator restart every app server."""
    return JsonResponse({"status": "ok"})


_schema_ready = False  # once the migrations are applied, they stay applied for this process


def _schema_problem() -> str | None:
    """Why the database's schema is not the one this code needs, or None. Reads the
    migration files and the database once; after a yes, asks nothing."""
    global _schema_ready
    if _schema_ready:
        return None
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        return f"{len(plan)} migration(s) not applied: run manage.py migrate"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 'zakops' = ANY(current_schemas(false))")
            if not cursor.fetchone()[0]:
                return "schema zakops is not on the connection's search_path (see README, PgBouncer)"
    _schema_ready = True
    return None


@login_not_required
@never_cache
@json_get_only
def ready(request):
    """Readiness: the database answers, every migration is applied, and changes made by
    other processes reach this one (the change listener is connected, on PostgreSQL).
    200 with what was checked, or 503 saying what is missing."""
    checks, ok = {}, True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
        problem = _schema_problem()
        checks["migrations"] = problem or "ok"
        ok = problem is None
    except DatabaseError:
        checks["database"] = "unreachable"
        ok = False
    mode = feed.ready(timeout=LISTENER_WAIT_SECONDS)
    checks["change_feed"] = mode or "not connected"
    ok = ok and mode is not None
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


class CanReadMetrics(BasePermission):
    message = "Metrics are for admins and service accounts (e.g. a token made with create_service_token prometheus)."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and (user_is_service(user) or user_role(user) == "admin"))


class PrometheusRenderer(BaseRenderer):
    media_type = "text/plain"
    format = "prometheus"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class MetricsView(HitlAPIView):
    """Prometheus text format, for a service account's bearer token or an admin's session.
    Errors (401, 403) are JSON, as everywhere else."""

    schema = None  # not part of the engine's API
    renderer_classes = [PrometheusRenderer, JSONRenderer]
    permission_classes = [CanReadMetrics]

    def get(self, request):
        response = HttpResponse(metrics.scrape(), content_type="text/plain; version=0.0.4; charset=utf-8")
        response["Cache-Control"] = "no-store"
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400 and hasattr(request, "accepted_renderer"):
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


@login_not_required
@cache_control(max_age=86400, public=True)
@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico on every page that names no icon (Django admin)."""
    return redirect(static("img/favicon.svg"), permanent=True)
