"""Middleware of the app: the request log (with its request id and latency metric), the
Server-Timing header of the pages, and Django's login-required middleware asking about the
user only for views that need it."""

import logging
import random
import re
import time

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware
from django.db import connection
from django.utils.functional import SimpleLazyObject, empty

from common import logs, metrics

request_logger = logging.getLogger("hitl.requests")

# An incoming X-Request-ID is kept when it looks like an id (a UUID, a trace id, a
# load balancer's token); anything else is replaced, so no log line carries what a
# client wrote into it.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def _new_request_id() -> str:
    """32 random hex digits. An id needs to be unique, not secret: `random` (reseeded in
    each forked process) costs a fraction of uuid4's read of the system's randomness,
    which was a tenth of an assess-risk call."""
    return f"{random.getrandbits(128):032x}"


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or behind HITL_PROXY_COUNT reverse proxies the
    address the outermost one saw (X-Forwarded-For, counted from the right, as each proxy
    appends the address it was reached from). Used by the log and by sign-in throttling."""
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.HITL_PROXY_COUNT
    if not proxies:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < proxies:
        return remote  # not through all of them: take the connection's own address
    return forwarded[-proxies]


def _route(request) -> str:
    """The URL pattern's name (bounded: one label per endpoint), never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route or "unnamed"
    if request.path_info.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return "static"
    return "unmatched"


def _who(request) -> tuple[str | None, str]:
    """(user name, how they authenticated): "token", "session" or "none". The session is
    not read for this: a request whose view never asked who it was is logged as such."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = None if user._wrapped is empty else user._wrapped
    if user is None or not user.is_authenticated:
        return None, "none"
    # DRF sets `auth` to what authenticated the call: the token for a bearer call, None
    # for a session (Django's own pages never set it).
    return user.get_username(), "session" if getattr(request, "auth", None) is None else "token"


def request_begin(request) -> float:
    """Give the request its id (the incoming X-Request-ID when sane, else a new one);
    the start time for request_end()."""
    incoming = request.META.get("HTTP_X_REQUEST_ID", "")
    rid = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else _new_request_id()
    request.request_id = rid
    # Left set after the response: Django logs a 4xx or 5xx (django.request) after the
    # middleware has returned, and that line belongs to this request too.
    logs.request_id.set(rid)
    return time.perf_counter()


def request_end(request, *, status: int, start: float, route: str | None = None) -> None:
    """The request's latency metric and its log line."""
    seconds = time.perf_counter() - start
    route = route or _route(request)
    metrics.request_observe(route=route, method=request.method, status=status, seconds=seconds)
    if request_logger.isEnabledFor(logging.INFO):
        user, auth = _who(request)
        request_logger.info(
            "%s %s %s %.1f ms", request.method, route, status, seconds * 1000,
            extra={
                "request_id": request.request_id, "method": request.method, "route": route,
                "path": request.path[:200], "status": status, "duration_ms": round(seconds * 1000, 2),
                "user": user, "auth": auth, "client": client_ip(request),
            },
        )


class RequestLogMiddleware:
    """One log line per request: id, method, route, status, duration, who. The id is the
    incoming X-Request-ID when sane, else a new one, and goes back in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = request_begin(request)
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response["X-Request-ID"] = request.request_id
            return response
        finally:
            request_end(request, status=status, start=start)


class _DatabaseTime:
    """A connection execute wrapper that adds up the time spent in each query."""

    __slots__ = ("seconds", "queries")

    def __init__(self):
        self.seconds = 0.0
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start
            self.queries += 1


class ServerTimingMiddleware:
    """`Server-Timing: db;dur=…;desc="N queries", total;dur=…` (milliseconds) on every
    answer of settings.MIDDLEWARE: the pages, the admin, the API called with a session. The
    browser's developer tools show it beside the request. The engine's bearer calls go
    through zakops_hitl.engine's ENGINE_MIDDLEWARE, without it: their time is in the
    request log and the latency metric."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        database = _DatabaseTime()
        with connection.execute_wrapper(database):
            response = self.get_response(request)
        total = time.perf_counter() - start
        response["Server-Timing"] = (
            f'db;dur={database.seconds * 1000:.2f};desc="{database.queries} queries", total;dur={total * 1000:.2f}'
        )
        return response


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    """Pages redirect anonymous visitors to the login page, as Django's does. Views that
    authenticate for themselves (the API, with DRF) are let through before the session is
    read: a session read that fails (the database is down) then fails inside DRF, which
    answers JSON, not Django's HTML error page."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not getattr(view_func, "login_required", True):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
