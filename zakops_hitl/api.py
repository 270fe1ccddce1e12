"""What every /api/hitl/ view shares: errors as JSON with a `detail`, authentication by
DRF, the request body limit, and a field type for JSON objects."""

from django.contrib.auth.decorators import login_not_required
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from zakops_hitl.errors import HitlError
from zakops_hitl.parsers import DEFAULT_MAX_BODY_BYTES


class HitlAPIView(APIView):
    """Base of the API views. DRF authenticates (session or bearer token) and answers
    anonymous calls with 401 JSON, so the page middleware's login redirect is skipped."""

    max_body_bytes = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def as_view(cls, **initkwargs):
        return login_not_required(super().as_view(**initkwargs))


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
    and the services' domain errors answered with their status."""
    if isinstance(exc, HitlError):
        return Response({"detail": exc.detail, **exc.extra}, status=exc.status)
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
        return Response({"detail": "No such endpoint."}, status=status.HTTP_404_NOT_FOUND)

    post = put = patch = delete = get
