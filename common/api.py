"""What every /api/hitl/ view shares: errors as JSON with a `detail` (503 when the
database is unavailable, 500 with the request id for anything unexpected), authentication
by DRF, the request body limit, path, query and stored headers the database can hold, and
a field type for JSON objects. Also Django's error views for the errors raised before or
outside a view (no URL matched, a Host not allowed), JSON wherever the view answers JSON."""

import hashlib
import logging
import sys

import orjson
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import DisallowedHost
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from common.errors import HitlError, InvalidInput
from common.parsers import DEFAULT_MAX_BODY_BYTES, read_unsized_body, unstorable_text, visible

logger = logging.getLogger(__name__)

# Request headers whose value is written to the database (common.idempotency).
STORED_HEADERS = ("Idempotency-Key",)

API_PREFIX = "/api/"
DATABASE_DOWN = (OperationalError, InterfaceError)  # unreachable, or the connection dropped
DATABASE_UNAVAILABLE = "The database is unavailable; try again shortly."
NO_SUCH_ENDPOINT = "No such endpoint."


def json_error(status: int, detail: str, **extra) -> HttpResponse:
    """An error answered outside DRF, in the shape DRF's answers have."""
    return HttpResponse(orjson.dumps({"detail": detail, **extra}), status=status, content_type="application/json")


# --- conditional answers: ETag and If-None-Match ------------------------------------------


def answer_etag(body: bytes) -> str:
    """The ETag of a JSON answer: a digest of its body as orjson writes it, so it changes
    whenever anything in the answer does (a value computed at read time included)."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def none_match(request, etag: str) -> bool:
    """Whether the call's If-None-Match names `etag` (weak comparison, as RFC 9110 has it
    for this header) or is `*`."""
    header = request.META.get("HTTP_IF_NONE_MATCH")
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def conditional_json(request, body: bytes) -> HttpResponse:
    """`body` as JSON with its ETag, or 304 with an empty body when the call's If-None-Match
    names it: the answer outside DRF, as conditional_answer answers through it."""
    etag = answer_etag(body)
    if none_match(request, etag):
        response = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
        del response["Content-Type"]  # no body, as DRF answers a 304
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    return response


def conditional_answer(request, answer) -> Response:
    """`answer` through DRF with the ETag of its JSON, or 304 with an empty body when the
    call's If-None-Match names it (the ETag is the same as conditional_json's)."""
    etag = answer_etag(orjson.dumps(answer))
    if none_match(request, etag):
        return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    return Response(answer, headers={"ETag": etag})


def hitl_error_body(exc: HitlError) -> dict:
    """The JSON body of a domain error the services raised, answered with `exc.status`."""
    return {"detail": exc.detail, **exc.extra}


def database_unavailable(request, exc) -> dict:
    """The body of the 503 for a database that can not be reached, logged with its cause."""
    logger.error("Database unavailable for %s %s: %s", getattr(request, "method", ""), getattr(request, "path", ""), exc)
    return {"detail": DATABASE_UNAVAILABLE}


def _unstorable_request_text(request, url_kwargs) -> tuple[str, str] | None:
    """(name, reason) for the first path parameter, query parameter or stored header the
    database could not hold (a NUL, %00 in a URL); None when there is none."""
    for name, value in url_kwargs.items():
        if type(value) is str and (problem := unstorable_text(value)):
            return name, problem
    if request.META.get("QUERY_STRING"):
        for name, values in request.query_params.lists():
            for text in (name, *values):
                if problem := unstorable_text(text):
                    return visible(name), problem
    for name in STORED_HEADERS:
        value = request.headers.get(name)
        if value is not None and (problem := unstorable_text(value)):
            return name, problem
    return None


class HitlAPIView(APIView):
    """Base of the API views. DRF authenticates (session or bearer token) and answers
    anonymous calls with 401 JSON, so the page middleware's login redirect is skipped.
    Path and query parameters and stored headers are checked once here, as JSON bodies
    are in the parser: what the database could not store is a 400 naming it.

    The engine's two most frequent calls are answered before they reach their view when
    they are the usual ones (zakops_hitl.engine); everything else about them, every
    error included, is answered here."""

    max_body_bytes = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def as_view(cls, **initkwargs):
        return login_not_required(super().as_view(**initkwargs))

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            # DRF answers an unknown ?format= with 404, as if the endpoint did not exist.
            formats = ", ".join(dict.fromkeys(renderer.format for renderer in self.get_renderers()))
            asked = visible(request.query_params.get(api_settings.URL_FORMAT_OVERRIDE) or "")
            raise exceptions.NotAcceptable(f"format: {asked!r} is not one of {formats}.") from None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication and permissions first: anonymous is a 401
        refused = _unstorable_request_text(request, kwargs)
        if refused is not None:
            name, problem = refused
            raise InvalidInput(f"{name}: {problem}.", field=name)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            read_unsized_body(request._request, self.max_body_bytes)  # a chunked body: 413 over the limit


class StrictCharField(serializers.CharField):
    """A string, and only a string: DRF's CharField would turn 5 or true into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(serializers.Field):
    """A JSON object (dict); where null is allowed it counts as an empty one."""

    default_error_messages = {"not_object": "Must be a JSON object, not {kind}."}

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def validate_empty_values(self, data):
        if data is None and self.allow_null:
            return True, {}
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            kind = {list: "an array", str: "a string", bool: "a boolean"}.get(type(data), "a number")
            self.fail("not_object", kind=kind)
        return data

    def to_representation(self, value):
        return value


def _first_error(errors, path=""):
    if isinstance(errors, dict):
        for key, value in errors.items():
            found = _first_error(value, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(errors, list):
        for item in errors:
            found = _first_error(item, path)
            if found:
                return found
    elif errors:
        return f"{path}: {errors}" if path and path != "non_field_errors" else str(errors)
    return None


def exception_handler(exc, context):
    """DRF's handler, with validation errors given a one-line `detail` naming the field,
    the services' domain errors answered with their status, and a database that can not
    be reached (or dropped the connection) a 503, wherever in the request it happened."""
    if isinstance(exc, HitlError):
        return Response(hitl_error_body(exc), status=exc.status)
    if isinstance(exc, DATABASE_DOWN):
        return Response(database_unavailable(context.get("request"), exc), status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = response.data
        response.data = {"detail": _first_error(errors) or "Invalid input.", "errors": errors}
    return response


class NotFoundView(HitlAPIView):
    """Unknown paths under /api/hitl/ answer JSON, after authentication like every other."""

    schema = None  # not an endpoint of the API

    def get(self, request, *args, **kwargs):
        return Response({"detail": NO_SUCH_ENDPOINT}, status=status.HTTP_404_NOT_FOUND)

    post = put = patch = delete = get


# --- Django's error views (urls.py: handler400, handler403, handler404, handler500) -----
# They answer what is raised before a view runs or outside one: a path no pattern matches,
# a Host not in ALLOWED_HOSTS (a middleware's check), an error no view handled (DRF hands
# back what its exception handler does not answer). Where the view answers JSON (the API,
# health, readiness, metrics) the error is JSON too; pages keep Django's HTML pages. With
# DJANGO_DEBUG on, Django shows its debug pages for 404 and 500 instead, as for any page.


def answers_in_json(request) -> bool:
    """Whether errors on this request's path are JSON: under /api/, or a view that says so
    (HitlAPIView, or a function view marked `answers_json`)."""
    path = "/" + request.path_info.lstrip("/")  # //api/hitl/… (a base URL ending in /) is under /api/ too
    if path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/"):
        return True
    try:
        view = resolve(path).func
    except Resolver404:
        return False
    return getattr(view, "answers_json", False) or issubclass(getattr(view, "cls", object), HitlAPIView)


def bad_request(request, exception):
    if not answers_in_json(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        return json_error(400, "The Host header names a host this server does not serve.")
    return json_error(400, "Bad request.")


def permission_denied(request, exception):
    if not answers_in_json(request):
        return defaults.permission_denied(request, exception)
    return json_error(403, "You do not have permission to perform this action.")


def page_not_found(request, exception):
    if not answers_in_json(request):
        return defaults.page_not_found(request, exception)
    return json_error(404, NO_SUCH_ENDPOINT)


def server_error(request):
    """A 500 that says only that the call failed and under which request id the server
    logged it (Django logs the traceback under that id); never the exception's text, which
    may hold the caller's data or the database's. A lost database connection outside DRF
    (reading a session, say) is the 503 it is inside."""
    if not answers_in_json(request):
        return defaults.server_error(request)
    if isinstance(sys.exception(), DATABASE_DOWN):
        return json_error(503, DATABASE_UNAVAILABLE)
    request_id = getattr(request, "request_id", None)
    return json_error(
        500, f"The server failed to answer this call; it logged the failure under request id {request_id}.",
        request_id=request_id,
    )
