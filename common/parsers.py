"""The API's JSON parser: a bound on the body, and only JSON the database can store
(kept apart from api.py, which DRF's settings would otherwise import while DRF itself is
still loading).

PostgreSQL's text and JSONB hold neither NUL characters nor lone surrogates, and a
number beyond a double's range reaches the services as infinity; such a body, or one
nested deeper than HITL_JSON_MAX_DEPTH, is refused here with a 400 naming the field, so
no endpoint has to think about it.
"""

import io
import json
import re
import sys

import orjson
from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LARGEST = sys.float_info.max
# Strings and the punctuation that opens, closes or labels a value: enough to follow the
# nesting of a body Python's parser could not descend into.
# JSON as DRF's parser reads it (NaN and Infinity refused), built once rather than per call.
_DECODER = json.JSONDecoder(parse_constant=strict_constant if JSONParser.strict else None)
# orjson reads JSON as the decoder above does, in a fraction of its time, but for an integer
# beyond 64 bits, which it turns into a float: a text with 19 digits in a row, or one orjson
# refuses (whose fault the decoder's message then names), goes to the decoder.
_LONG_DIGITS = re.compile("[0-9]{19}")
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:]', re.DOTALL)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "too_large"


class LengthRequired(exceptions.APIException):
    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_detail = (
        "A chunked body needs a server that says where it ends, and this one does not: send Content-Length."
    )
    default_code = "length_required"


def read_unsized_body(request, limit: int) -> None:
    """Read now a body sent without Content-Length (`Transfer-Encoding: chunked`, or HTTP/2
    without the header), at most `limit` + 1 bytes of it, and hand it to the Django
    `request` as a sized one: Django and DRF read a body without Content-Length as empty.
    Only a server that ends the stream where the body ends (`wsgi.input_terminated`, which
    granian and gunicorn set) is read this way; from any other a chunked body is a 411."""
    meta = request.META
    if meta.get("CONTENT_LENGTH"):
        return
    if not meta.get("wsgi.input_terminated"):
        if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
            raise LengthRequired()
        return  # HTTP/1.1 without Content-Length or chunking: no body
    stream, parts, size = meta["wsgi.input"], [], 0
    while size <= limit:  # a read may return less than asked for before the end
        part = stream.read(limit + 1 - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes.")
    body = b"".join(parts)
    meta["CONTENT_LENGTH"] = str(size)  # what DRF asks before it reads
    request._stream = LimitedStream(io.BytesIO(body), size)  # what Django's request reads from


def _unstorable(text: str) -> str | None:
    """The characters of `text` the database can not store, named; None when there are none."""
    if text.isascii() and "\x00" not in text:  # most strings: two scans in C, no regular expression
        return None
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "NUL characters (\\u0000)"
    return f"a lone surrogate (\\u{ord(found.group()):04x})"


def unstorable_text(text: str) -> str | None:
    """Why the database could not store `text`, or None when it can."""
    found = _unstorable(text)
    return f"{found} can not be stored" if found else None


def visible(text: str) -> str:
    """`text` with the characters unstorable_text refuses written as \\uXXXX escapes, so
    that an error message can quote it (the JSON renderer can not encode a surrogate)."""
    return _UNSTORABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def _path(entry, key, *, top_only: bool = False) -> str:
    """The dotted path (`inputs.to[2]`) of `key` in the container of a walk entry, or
    only its first part (the field of the body)."""
    parts = [key]
    while entry[3] is not None:
        parts.append(entry[3])
        entry = entry[2]
    if top_only:
        parts = parts[-1:]
    text = ""
    for part in reversed(parts):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{visible(part)}" if text else visible(part)
    return text


_TOO_LARGE = "the number is too large for a double (beyond ±1.8e308)"


def json_problem(data, max_depth: int) -> tuple[str, str] | None:
    """(path, reason) for the first value of parsed JSON that the database could not
    store, or for the first array or object nested deeper than `max_depth` (the body
    itself is level 1); None when there is none.

    One iterative walk: containers are stacked, scalars checked where they stand. Most
    strings are ASCII without NUL, which two scans in C tell; only others meet a regular
    expression. A float from the parser is infinite only when the number overflowed."""
    if type(data) is not dict and type(data) is not list:
        data = [data]  # checked as the only item of a list, then named as the body itself
        top = True
    else:
        top = False
    surrogate = _SURROGATE.search
    # Each entry: (container, its level, the entry of its parent, its key in the parent).
    stack = [(data, 1, None, None)]
    while stack:
        entry = stack.pop()
        container, level = entry[0], entry[1]
        for key, value in container.items() if type(container) is dict else enumerate(container):
            if type(key) is str and ("\x00" in key or not key.isascii() and surrogate(key)):
                return _path(entry, key), f"a key with {_unstorable(key)} can not be stored"
            kind = type(value)
            if kind is str:
                if "\x00" in value or not value.isascii() and surrogate(value):
                    return ("" if top else _path(entry, key)), unstorable_text(value)
            elif kind is dict or kind is list:
                if level >= max_depth:
                    return _path(entry, key, top_only=True), f"nested deeper than {max_depth} levels of arrays and objects"
                if value:
                    stack.append((value, level + 1, entry, key))
            elif kind is float:
                if value - value != 0.0:  # inf (NaN is refused by the parser)
                    return ("" if top else _path(entry, key)), _TOO_LARGE
            elif kind is int and (value > _LARGEST or value < -_LARGEST):
                return ("" if top else _path(entry, key)), _TOO_LARGE
    return None


def _field_nested_too_deep(text: str, max_depth: int) -> tuple[str, bool]:
    """The top-level key under which `text` first goes deeper than `max_depth`, and
    whether it does."""
    level, last_string, field = 0, None, ""
    for token in _STRUCTURE.finditer(text):
        mark = token.group()
        if mark == "[" or mark == "{":
            level += 1
            if level > max_depth:
                return field, True
        elif mark == "]" or mark == "}":
            level -= 1
        elif mark == ":":
            if level == 1 and last_string is not None:
                try:
                    field = visible(json.loads(last_string))
                except ValueError:
                    field = ""
        else:
            last_string = mark
    return field, False


def _refusal(path: str, reason: str) -> exceptions.ParseError:
    if not path:
        return exceptions.ParseError(f"The body is refused: {reason}.")
    return exceptions.ParseError({"detail": f"{path}: {reason}.", "field": path})


_PARSED = "_hitl_json_body"  # where json_body keeps its outcome on the request


def json_body(request, *, limit: int, encoding: str, stream=None):
    """The JSON body of a Django `request` as the API takes it: refused with 413 over
    `limit` bytes (before reading, when Content-Length says so), with 400 when it is no
    JSON or the database could not store it or it is nested too deep. Read from `stream`
    (DRF's), or from the request's body. Parsed once per request, whoever asks first
    (the engine path, zakops_hitl.engine, or the parser below): the data, or the error,
    is kept on the request and given again."""
    kept = request.__dict__.get(_PARSED)
    if kept is None:
        try:
            kept = (True, _parsed(request, limit, encoding, stream))
        except exceptions.APIException as exc:
            kept = (False, exc)
        setattr(request, _PARSED, kept)
    parsed, outcome = kept
    if not parsed:
        raise outcome
    return outcome


def _decoded(text: str):
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return _DECODER.decode(text)


def _parsed(request, limit: int, encoding: str, stream):
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise exceptions.ParseError("Invalid Content-Length header.") from None
    if declared > limit:
        raise PayloadTooLarge(f"Request body is {declared} bytes; the limit is {limit} bytes.")
    body = request.body if stream is None else stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes.")
    max_depth = settings.HITL_JSON_MAX_DEPTH
    try:
        text = body.decode(encoding)
    except (ValueError, LookupError) as exc:  # not that charset, or a charset that is no text encoding
        raise exceptions.ParseError(f"JSON parse error - {exc}") from None
    try:
        data = _decoded(text)
    except RecursionError:
        # Python's parser recurses, and gives up near a thousand levels.
        field, over_limit = _field_nested_too_deep(text, max_depth)
        reason = (
            f"nested deeper than {max_depth} levels of arrays and objects" if over_limit else "nested too deeply to parse"
        )
        raise _refusal(field, reason) from None
    except ValueError as exc:
        raise exceptions.ParseError(f"JSON parse error - {exc}") from None
    problem = json_problem(data, max_depth)
    if problem is not None:
        raise _refusal(*problem)
    return data


class BoundedJSONParser(JSONParser):
    """JSON, refused with 413 before parsing when the body is over the view's limit, and
    with 400 when the database could not store it or it is nested too deep (json_body)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        limit = getattr(parser_context.get("view"), "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
        encoding = parser_context.get("encoding") or settings.DEFAULT_CHARSET
        request = parser_context.get("request")
        request = request._request if request is not None else HttpRequest()  # DRF's request wraps Django's
        return json_body(request, limit=limit, encoding=encoding, stream=stream)
