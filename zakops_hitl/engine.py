"""The WSGI application, and the engine's path through it: which calls take it, what it
checks, what it answers itself and what it hands to the views.

Which calls. A call under /api/ with `Authorization: Bearer …` authenticates itself and
answers JSON, so sessions, CSRF, messages, the login redirect, sign-in throttling, the
page headers (CSP, X-Frame-Options) and static files have nothing to do for it: it goes
through Django's handler over ENGINE_MIDDLEWARE (the request log with its request id and
metric, SecurityMiddleware's headers and https redirect, CommonMiddleware's Host check and
Content-Length). Every other
call, the API called with a session included, goes through settings.MIDDLEWARE.

The engine's two most frequent calls, HOT_CALLS (POST assess-risk and GET the poll, by
method and path), run through the same middleware objects, and the innermost step
answers them without URL resolution and without DRF (its request, negotiation,
serializer, renderer) when the call is the usual one:

- no query string; `Accept` absent, `*/*` or `application/json`; no header the database
  would store (common.api.STORED_HEADERS); path arguments the database can store;
- a body, where the call has one, sent as `application/json` with its Content-Length;
- a caller the view's own bearer authenticator accepts (the views ask for no more);
- a body the API's JSON parser (common.parsers.json_body) takes, and that passes the
  request's quick check: derived from the view's request serializer, it accepts a field
  only when the serializer would take it unchanged (zakops_hitl.quick_check).

Such a call is answered by the function the view itself calls (risk.api.views.assessment_of,
approvals.api.views.action_approval), as JSON with the headers DRF adds (Allow), the poll with its ETag or a 304 as the view
answers it (common.api.conditional_json, conditional_answer); a domain
error it raises (the 404 of an action without a request) as the API answers it
(common.api.hitl_error_body), a database out of reach with the 503.

What it hands back. Any other call goes on to Django's URL resolution and the view, in the
same middleware stack, and DRF answers it: 401 with its challenge, 400 naming the field,
406, 413, the body sent chunked. The authentication and the parsed body are kept on the
request by the functions that made them, so DRF makes neither again: a call is
authenticated once and its body parsed once. If the engine path itself fails, it is
logged and counted (hitl_fast_path_failures) and the view answers the call.

Why: these two calls are most of the engine's traffic, and Django's URL resolution and
DRF's machinery cost more than the work they do (docs/performance.md has the figures).
For the same reason a hot call skips three steps of Django's handler that do nothing for
it (EngineHandler.__call__ says which and why), and a call answered here without fault
ends with Django's request_finished signal at least every END_EVERY seconds rather than
every time (EngineHandler._routine). Everything else, the middleware, the signal's
receivers, the 500 page, is Django's own, not redone here.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic

import orjson
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_path_info
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch, get_script_prefix, resolve, reverse, set_script_prefix
from django.urls.resolvers import RoutePattern
from django.utils.log import log_response
from rest_framework import exceptions, serializers
from rest_framework.settings import api_settings

from accounts.authentication import BearerTokenAuthentication
from approvals.api.views import action_approval
from common import metrics
from common.api import (
    DATABASE_DOWN,
    STORED_HEADERS,
    conditional_json,
    database_unavailable,
    hitl_error_body,
    json_error,
)
from common.errors import HitlError
from common.parsers import json_body, unstorable_text
from risk.api.serializers import AssessRiskRequestSerializer
from risk.api.views import assessment_of
from zakops_hitl.quick_check import quick_check

logger = logging.getLogger(__name__)

ENGINE_MIDDLEWARE = [
    "zakops_hitl.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The Host check, as for every other request, and the answer's Content-Length, without
    # which the server sends the body chunked.
    "django.middleware.common.CommonMiddleware",
]
API_PREFIX = "/api/"
# A thread that answers hot calls on the engine path sends request_finished after one of
# them at least this often (seconds), and after every other call (EngineHandler._routine).
END_EVERY = 0.25


@dataclass(frozen=True)
class HotCall:
    url_name: str
    method: str
    # answer(request, data, **path arguments): what the view answers with status 200, as
    # plain data; `data` is the body as its serializer validates it (None without a body).
    answer: Callable
    request_serializer: type[serializers.Serializer] | None = None  # the body's contract
    path_arguments: tuple[str, ...] = ()
    conditional: bool = False  # answered with an ETag, and 304 to a matching If-None-Match (as the view does)


HOT_CALLS = [
    HotCall("api-assess-risk", "POST", lambda request, data: assessment_of(data), AssessRiskRequestSerializer),
    HotCall(
        "api-action-approval", "GET",
        lambda request, data, action_id: action_approval(action_id=action_id, user=request.user),
        path_arguments=("action_id",), conditional=True,
    ),
]


def is_bearer_api_call(environ) -> bool:
    return environ.get("PATH_INFO", "").startswith(API_PREFIX) and (
        environ.get("HTTP_AUTHORIZATION", "")[:7].lower() == "bearer "
    )


# --- what the engine path checks ---------------------------------------------------------

_JSON_TYPES = frozenset(("application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"))
_ACCEPT_JSON = frozenset(("", "*/*", "application/json"))
_STORED_HEADER_KEYS = tuple(f"HTTP_{name.upper().replace('-', '_')}" for name in STORED_HEADERS)
_UNUSUAL = object()  # the call is not the usual one: the view answers it


class _HotRoute:
    """One of HOT_CALLS, followed from the URLconf at start: its pattern, its view, and what
    the engine path needs of the view (authenticator, body limit, Allow header)."""

    def __init__(self, call: HotCall):
        self.call, self.method = call, call.method
        example = {name: "x" for name in call.path_arguments}
        path = "/" + reverse(call.url_name, kwargs=example or None).removeprefix(get_script_prefix())
        match = resolve(path)
        view_class = match.func.view_class
        self.pattern = RoutePattern(match.route, name=call.url_name, is_endpoint=True)
        if self.pattern.match(path[1:]) != ("", (), example):
            raise ImproperlyConfigured(f"{call.url_name}: the engine path can not follow its URL pattern {match.route!r}")
        self.resolved = (match.func, match.route, match.app_names, match.namespaces)
        if view_class.permission_classes != api_settings.DEFAULT_PERMISSION_CLASSES or view_class.throttle_classes:
            raise ImproperlyConfigured(f"{call.url_name}: the engine path checks no permission or throttle but IsAuthenticated")
        if not view_class.authentication_classes or not issubclass(view_class.authentication_classes[0], BearerTokenAuthentication):
            raise ImproperlyConfigured(f"{call.url_name}: the engine path expects the bearer authenticator first")
        self.authenticator = view_class.authentication_classes[0]()
        self.max_body_bytes = view_class.max_body_bytes
        view = view_class()
        view.setup(HttpRequest())  # as as_view() does: a view with get() also allows HEAD
        self.allow = ", ".join(view.allowed_methods)
        self.check = quick_check(call.request_serializer) if call.request_serializer else None
        self.match = None if call.path_arguments else self._match({})

    def _match(self, kwargs: dict) -> ResolverMatch:
        """What URL resolution would set on the request (the request log names the route)."""
        func, route, app_names, namespaces = self.resolved
        return ResolverMatch(func, (), kwargs, url_name=self.call.url_name, app_names=app_names, namespaces=namespaces,
                             route=route, captured_kwargs=kwargs, extra_kwargs={})

    def respond(self, request, kwargs: dict) -> HttpResponse | None:
        """The answer to the call, or None for the view to answer it."""
        # A route without path arguments always resolves to the same match, made once at
        # start; nothing on the way writes to it (a call handed to the view is resolved anew).
        request.resolver_match = self.match if self.match is not None else self._match(kwargs)
        try:
            data = self._usual(request, kwargs)
            if data is _UNUSUAL:
                return None
            body = orjson.dumps(self.call.answer(request, data, **kwargs))
            if self.call.conditional:
                return self._json(conditional_json(request, body))
            return self._json(HttpResponse(body, content_type="application/json"))
        except HitlError as exc:
            return self._json(json_error(exc.status, **hitl_error_body(exc)))
        except Exception as exc:
            down = isinstance(exc, DATABASE_DOWN)
            metrics.fast_path_failed(route=self.call.url_name)
            # The exception's class only: its text may quote the body or the database's values.
            logger.warning(
                "The engine path of %s raised %s; %s", self.call.url_name, type(exc).__name__,
                "answered 503" if down else "the view answers the call",
                extra={"request_id": getattr(request, "request_id", None), "route": self.call.url_name},
            )
            if not down:
                return None
            return self._json(json_error(503, **database_unavailable(request, exc)))

    def _usual(self, request, kwargs: dict):
        """The body as the view's serializer would validate it (None for a call without
        one), or _UNUSUAL."""
        meta = request.META
        if meta.get("QUERY_STRING") or meta.get("HTTP_ACCEPT", "") not in _ACCEPT_JSON:
            return _UNUSUAL
        if any(key in meta for key in _STORED_HEADER_KEYS):
            return _UNUSUAL
        if any(type(value) is str and unstorable_text(value) for value in kwargs.values()):
            return _UNUSUAL
        if self.check is not None:
            if meta.get("CONTENT_TYPE", "").lower() not in _JSON_TYPES:
                return _UNUSUAL
            if not meta.get("CONTENT_LENGTH", "").isdigit() or int(meta["CONTENT_LENGTH"]) == 0:
                return _UNUSUAL  # sent chunked (which the view reads), or nothing, which DRF reads as {}
        try:
            found = self.authenticator.authenticate(request)  # kept on the request: DRF asks it again
        except exceptions.AuthenticationFailed:
            return _UNUSUAL  # DRF's 401, with its challenge
        if found is None or not found[0].is_authenticated:
            return _UNUSUAL
        request.user, request.auth = found  # for the request log, as DRF would set them
        if self.check is None:
            return None
        try:
            body = json_body(request, limit=self.max_body_bytes, encoding="utf-8")  # kept on the request too
        except exceptions.APIException:
            return _UNUSUAL  # the parser's 400 or 413, naming the fault
        data = self.check(body)
        return _UNUSUAL if data is None else data

    def _json(self, response: HttpResponse) -> HttpResponse:
        response["Allow"] = self.allow
        return response


# --- the handlers ------------------------------------------------------------------------


_VALID_HOSTS: set[str] = set()  # Host headers get_host() accepted in this process; see EngineRequest
_VALID_HOSTS_LIMIT = 64


@receiver(setting_changed)
def _hosts_forget(*, setting, **kwargs):
    if setting in ("ALLOWED_HOSTS", "DEBUG", "USE_X_FORWARDED_HOST", "USE_X_FORWARDED_PORT"):
        _VALID_HOSTS.clear()


class EngineRequest(WSGIRequest):
    """Django's WSGI request, whose Host check (CommonMiddleware's get_host()) remembers
    each Host header this process accepted: under the same settings the same header gets
    the same verdict, and the check (a regular expression, then each pattern of
    ALLOWED_HOSTS) was a twentieth of an assess-risk call. A header refused is checked again
    each time, so only hosts ALLOWED_HOSTS allows are kept, at most _VALID_HOSTS_LIMIT."""

    def get_host(self):
        raw = self._get_raw_host()
        if raw in _VALID_HOSTS:
            return raw
        host = super().get_host()  # DisallowedHost for a host not allowed
        if len(_VALID_HOSTS) >= _VALID_HOSTS_LIMIT:
            _VALID_HOSTS.clear()
        _VALID_HOSTS.add(host)
        return host


class EngineHandler(WSGIHandler):
    """Django's WSGI handler over ENGINE_MIDDLEWARE. A hot call runs through the same
    middleware objects, whose innermost step answers the usual call itself and hands any
    other to URL resolution and the view; every other call is Django's handler's as is."""

    request_class = EngineRequest

    def __init__(self):
        super().__init__()
        if any(database.get("ATOMIC_REQUESTS") for database in settings.DATABASES.values()):
            raise ImproperlyConfigured("the engine path does not wrap its answers in a transaction (ATOMIC_REQUESTS)")
        self._ends = threading.local()  # when this thread next sends request_finished after a routine call
        self._end_may_wait = all(
            database.get("CONN_MAX_AGE", 0) != 0 and not database.get("CONN_HEALTH_CHECKS")
            for database in settings.DATABASES.values()
        )
        self.routes = [_HotRoute(call) for call in HOT_CALLS]  # at start: a URLconf it can not follow stops the server
        # A route without path arguments is found by its path alone, without the pattern's regex.
        self.exact = {
            (route.method, "/" + str(route.pattern)): (route, {}) for route in self.routes if not route.call.path_arguments
        }

    def load_middleware(self, is_async=False):
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = ENGINE_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full

    def __call__(self, environ, start_response):
        hot = self._hot_call(environ)
        if hot is None:
            return super().__call__(environ, start_response)
        # What WSGIHandler.__call__ and get_response do, less three steps that cost about a
        # sixth of the call and do nothing for it:
        # - the request_started signal: it closes connections past their age or broken,
        #   which request_finished does at the end of a call (_routine says when), so a
        #   connection that aged while the worker was idle serves one call more;
        # - the script prefix: nothing on the way reverses a URL (a call handed to the view
        #   gets it then, in _get_response);
        # - the URLconf: the default one, which is what get_response would set.
        request = self.request_class(environ)
        request._hot_call = hot
        response = self._middleware_chain(request)  # the same middleware objects as every engine call
        if response.status_code >= 400:
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        response._handler_class = self.__class__  # the sender of request_finished, as Django's
        headers = [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        # The answer is in memory: handed to the server as bytes, which it writes at once
        # rather than calling back into Python for each part of an iterable (about a tenth
        # of the call under granian), and closed here, as the server's close() would have.
        content = response.content
        if self._routine(request, response):
            request.close()  # what close() does for an answer in memory, less the signal
            response.closed = True
        else:
            response._resource_closers.append(request.close)
            response.close()  # sends request_finished
        return [content]

    def _routine(self, request, response) -> bool:
        """Whether this call may end without request_finished: it was answered on the
        engine path without a server error (so no database error happened on the way:
        one is a 503 or the view's call), and this thread sent the signal less than
        END_EVERY seconds ago. The signal's work (closing the connections past their age
        or broken, the caches, the URLconf this thread set) is then at most END_EVERY late
        while the thread is busy, and done at the end of its first call after a pause, for
        connections that served this call without fault; sending it costs about a sixth of
        a call, and these calls are most of the engine's traffic. Never when a database
        wants the signal after every request: CONN_MAX_AGE 0 (a connection per request) or
        CONN_HEALTH_CHECKS (the signal re-arms the check before the next request's query)."""
        if not self._end_may_wait or not request.__dict__.get("_engine_answered") or response.status_code >= 500:
            return False
        now = monotonic()
        if now < getattr(self._ends, "due", 0.0):
            return True
        self._ends.due = now + END_EVERY
        return False

    def _hot_call(self, environ) -> tuple | None:
        """(the route, its path arguments) when the call's method and path are a hot call's."""
        path = environ.get("PATH_INFO", "")
        if not path.isascii():  # WSGI's latin-1 text of the bytes: decoded as Django's path_info is
            path = get_path_info(environ)
        method = environ.get("REQUEST_METHOD")
        if (exact := self.exact.get((method, path))) is not None:
            return exact
        for route in self.routes:
            if route.method == method and (found := route.pattern.match(path[1:])) is not None:
                return route, found[2]
        return None

    def _get_response(self, request):
        hot = request.__dict__.get("_hot_call")
        if hot is not None:
            route, kwargs = hot
            response = route.respond(request, kwargs)
            if response is not None:
                request._engine_answered = True
                return response
            # The script prefix WSGIHandler.__call__ would have set: WSGIRequest wrote the name
            # it decoded (get_script_name) into META.
            set_script_prefix(request.META["SCRIPT_NAME"])
        return super()._get_response(request)


class HitlWSGIHandler:
    """The application: bearer calls under /api/ through the engine's handler, the rest
    (pages, the API with a session) through Django's over settings.MIDDLEWARE."""

    def __init__(self):
        self.pages = WSGIHandler()
        self.engine = EngineHandler()

    def __call__(self, environ, start_response):
        handler = self.engine if is_bearer_api_call(environ) else self.pages
        return handler(environ, start_response)
