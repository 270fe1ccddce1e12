"""Log lines as JSON objects, each carrying the id of the request it was written for.

Plain `logging`, no Django import, so the app server's master can use the formatter too. A
record's extra fields are written when they are plain values (text, numbers, booleans);
objects such as Django's request, which holds headers and cookies, never are.
"""

import json
import logging
import time
from contextvars import ContextVar

import orjson

# Set by the request log middleware for the duration of a request.
request_id: ContextVar[str | None] = ContextVar("hitl_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}
_PLAIN = (str, int, float, bool, type(None))


class RequestIdFilter(logging.Filter):
    """Gives every record the current request's id (or "-" outside a request)."""

    def filter(self, record):
        if not getattr(record, "request_id", None):
            record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line. Written with orjson (compact, UTF-8 as is): every request
    writes a line, and json.dumps and datetime's isoformat were a tenth of an engine call
    (docs/performance.md)."""

    def format(self, record):
        entry = {
            "ts": f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(record.created))}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which worker
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid and rid != "-":
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in entry and not key.startswith("_") and isinstance(value, _PLAIN):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:  # what orjson does not write (an integer beyond 64 bits): as json writes it
            return json.dumps(entry, ensure_ascii=False, default=str)
