"""The engine path's check of a parsed body (zakops_hitl.engine), derived from the view's
request serializer, so that the body's contract is declared once."""

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured
from rest_framework import serializers
from rest_framework.fields import empty

from common.api import JSONObjectField, StrictCharField
from common.parsers import unstorable_text

_UNUSUAL = object()  # a value the serializer would not take unchanged


def quick_check(serializer_class) -> Callable[[object], dict | None]:
    """A check of a parsed body against `serializer_class` that only ever says yes: the
    serializer's validated_data for a body whose every field the serializer would take
    unchanged, None for any other body, which the serializer then judges (and names the
    fault). Derived from the serializer's fields, so the contract is declared once; a
    field or rule it can not follow stops the server at start rather than being skipped."""
    serializer = serializer_class()
    if type(serializer).validate is not serializers.Serializer.validate or serializer.validators:
        raise ImproperlyConfigured(f"{serializer_class.__name__}: quick_check can not follow its validate()")
    fields = []
    for name, field in serializer.fields.items():
        if hasattr(serializer, f"validate_{name}") or field.source != name or field.read_only:
            raise ImproperlyConfigured(f"{serializer_class.__name__}.{name}: quick_check can not follow it")
        if field.default is not empty:
            raise ImproperlyConfigured(f"{serializer_class.__name__}.{name}: quick_check does not know defaults")
        fields.append((name, field.required, _field_check(field, f"{serializer_class.__name__}.{name}")))

    def check(body):
        if type(body) is not dict:
            return None
        data = {}
        for name, required, field_check in fields:
            if name in body:
                value = field_check(body[name])
                if value is _UNUSUAL:
                    return None
                data[name] = value
            elif required:
                return None
        return data

    return check


def _field_check(field, label: str) -> Callable:
    """The value a field of this kind validates to, when it is plainly valid; else _UNUSUAL."""
    known = {type(validator).__name__ for validator in field.validators}
    if type(field) is StrictCharField:
        if known - {"MaxLengthValidator", "MinLengthValidator", "ProhibitNullCharactersValidator",
                    "ProhibitSurrogateCharactersValidator"}:
            raise ImproperlyConfigured(f"{label}: quick_check does not know its validators")
        shortest = max(field.min_length or 0, 0 if field.allow_blank else 1)
        longest = field.max_length if field.max_length is not None else float("inf")
        trimmed, allow_null = field.trim_whitespace, field.allow_null

        def text(value):
            if value is None and allow_null:
                return None
            if type(value) is not str or not shortest <= len(value) <= longest:
                return _UNUSUAL
            if (trimmed and value != value.strip()) or unstorable_text(value):
                return _UNUSUAL  # DRF trims it, or refuses it
            return value

        return text
    if type(field) is JSONObjectField:
        if known:
            raise ImproperlyConfigured(f"{label}: quick_check does not know its validators")
        allow_null = field.allow_null

        def json_object(value):
            if type(value) is dict:
                return value
            return {} if value is None and allow_null else _UNUSUAL  # null counts as {} (JSONObjectField)

        return json_object
    raise ImproperlyConfigured(f"{label}: quick_check does not know {type(field).__name__}")
