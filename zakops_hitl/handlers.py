"""The WSGI application: Django's handler, a short middleware stack for the engine, and a
lane for the engine's two most frequent calls.

- A call under /api/ with `Authorization: Bearer …` authenticates itself (DRF, with the
  token cache) and answers JSON, so sessions, CSRF, messages, the login redirect, sign-in
  throttling, the page headers (CSP, X-Frame-Options) and static files have nothing to do
  for it. Such calls go through `API_MIDDLEWARE`: the request log (request id, metrics),
  the security headers and the Host check (ALLOWED_HOSTS, as CommonMiddleware does).
  Everything else, the API called with a session included, goes through
  `settings.MIDDLEWARE`.
- The engine's lane: a bearer call to assess-risk or the poll is first offered to the
  view's fast path (common.api.HitlAPIView) straight from here, with what the short
  stack would add (the Host and https checks, the request id, the security headers, the
  log line and metric, the end-of-request signal, which closes old connections) but
  without Django's URL resolution and middleware chain. When the fast path declines
  (anything unusual), or raises other than for a database out of reach (a 503 at once),
  the call goes through the short stack as any other, with its request id, so every
  error is answered there; the view does not offer it to the fast path a second time.

Measured in process with the production settings (assess-risk, bearer token, median of
3,000 calls): 490 µs through the full stack; 380 µs through the short stack; 118 µs with
the views' fast path; 79 µs through the lane. bench/engine.py measures them over HTTP.
"""

import io
import re

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_path_info
from django.core.signals import request_finished
from django.middleware.security import SecurityMiddleware
from django.urls import get_script_prefix, reverse

from common.api import FAST_PATH_OFFERED
from zakops_hitl.middleware import request_begin, request_end

API_MIDDLEWARE = [
    "zakops_hitl.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "zakops_hitl.middleware.AllowedHostMiddleware",
]
API_PREFIX = "/api/"
# (URL name, method, the view's path arguments): the calls the lane takes.
LANE_ROUTES = [("api-assess-risk", "POST", ()), ("api-action-approval", "GET", ("action_id",))]


def is_bearer_api_call(environ) -> bool:
    return environ.get("PATH_INFO", "").startswith(API_PREFIX) and (
        environ.get("HTTP_AUTHORIZATION", "")[:7].lower() == "bearer "
    )


class _ShortStackHandler(WSGIHandler):
    """Django's WSGI handler over API_MIDDLEWARE instead of settings.MIDDLEWARE."""

    def load_middleware(self, is_async=False):
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


def _path_of(name: str, kwargs: dict | None) -> str:
    """The path of URL `name` as PATH_INFO holds it: reverse() without the script prefix
    (SCRIPT_NAME or FORCE_SCRIPT_NAME, which the thread's last request may have set)."""
    return "/" + reverse(name, kwargs=kwargs).removeprefix(get_script_prefix())


def _lane_pattern(name: str, arguments: tuple) -> re.Pattern:
    """The full path of URL `name` as a regular expression, from the URLconf itself: each
    path argument (a `str` converter) matches one segment."""
    marks = {argument: f"LANE0{argument}0LANE" for argument in arguments}
    path = re.escape(_path_of(name, marks or None))
    for argument, mark in marks.items():
        path = path.replace(re.escape(mark), f"(?P<{argument}>[^/]+)")
    return re.compile(path)


class _Lane:
    def __init__(self):
        from django.urls import resolve

        self.routes = []
        for name, method, arguments in LANE_ROUTES:
            pattern = _lane_pattern(name, arguments)
            example = _path_of(name, {a: "x" for a in arguments} or None)
            view_class = resolve(example).func.cls
            self.routes.append((method, pattern, view_class, name))
        self.security = SecurityMiddleware(lambda request: None)

    def _route(self, method: str, path: str):
        for route_method, pattern, view_class, name in self.routes:
            if route_method == method and (found := pattern.fullmatch(path)):
                return view_class, name, found.groupdict()
        return None

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO", "")
        if not path.isascii():  # WSGI's latin-1 text of the bytes: decoded as Django's path_info is
            path = get_path_info(environ)
        route = self._route(method, path)
        if route is None:
            return None
        view_class, name, kwargs = route
        # On a copy: WSGIRequest writes the decoded path back into the environ it is given,
        # and the short stack, when the lane declines, must decode the server's text once.
        request = WSGIRequest(environ.copy())
        try:
            request.get_host()
        except Exception:
            return None  # a Host not in ALLOWED_HOSTS: the short stack answers 400
        if self.security.process_request(request) is not None:
            return None  # the redirect to https, which the short stack answers
        start = request_begin(request)
        view = view_class()
        view.setup(request, **kwargs)  # as as_view() does: a view with get() also allows HEAD
        environ[FAST_PATH_OFFERED] = True  # once per call: the view does not offer it again
        response = view.fast_answer(getattr(view, f"fast_{method.lower()}"), request, kwargs, route=name)
        if response is None:
            if hasattr(request, "_body"):  # read here: the short stack reads it again
                environ["wsgi.input"] = io.BytesIO(request._body)
            environ["HTTP_X_REQUEST_ID"] = request.request_id  # one id for the call, in its log lines and answer
            return None  # the short stack answers it
        response["X-Request-ID"] = request.request_id
        response = self.security.process_response(request, response)
        request_end(request, status=response.status_code, start=start, route=name)
        request_finished.send(sender=self.__class__)  # connections past their age or broken close
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        return [response.content]


class HitlWSGIHandler:
    def __init__(self):
        self.pages = WSGIHandler()
        self.engine = _ShortStackHandler()
        self.lane = _Lane()  # at start: a URLconf the lane can not follow stops the server

    def __call__(self, environ, start_response):
        if not is_bearer_api_call(environ):
            return self.pages(environ, start_response)
        answer = self.lane(environ, start_response)
        return answer if answer is not None else self.engine(environ, start_response)
