"""The WSGI application: Django's handler, with a short middleware stack for the engine.

A call under /api/ with `Authorization: Bearer …` authenticates itself (DRF, with the
token cache) and answers JSON, so sessions, CSRF, messages, the login redirect, sign-in
throttling, the page headers (CSP, X-Frame-Options) and static files have nothing to do
for it. Such calls go through `API_MIDDLEWARE`: the request log (request id, metrics)
and the security headers. Everything else, the API called with a session included, goes
through `settings.MIDDLEWARE` as before.

Measured in process (bench/engine.py prints the HTTP figures): the full stack cost about
180 µs of a 490 µs assess-risk call, the short one about 25 µs.
"""

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

API_MIDDLEWARE = [
    "zakops_hitl.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
]
API_PREFIX = "/api/"


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


class HitlWSGIHandler:
    def __init__(self):
        self.pages = WSGIHandler()
        self.engine = _ShortStackHandler()

    def __call__(self, environ, start_response):
        handler = self.engine if is_bearer_api_call(environ) else self.pages
        return handler(environ, start_response)
