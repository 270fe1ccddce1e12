"""The error answers in the OpenAPI schema: one `Error` shape for every 4xx and 5xx, and
the statuses that come from what all views share (authentication, the JSON parser, the
database, an unexpected failure, Idempotency-Key) added to each operation. A
drf-spectacular postprocessing hook; views document their own 404 and 409 (and the 403
of their rules)."""

from rest_framework.permissions import SAFE_METHODS, IsAuthenticated

from common.idempotency import HEADER as IDEMPOTENCY_HEADER
from common.idempotency import MAX_KEY, idempotent

ERROR = {
    "type": "object",
    "description": "Every error answer. Some carry more fields: `errors` (a validation error's fields), "
    "`field`, and on a 409 the current `state` or `status` and who decided or resumed it, when.",
    "properties": {
        "detail": {"type": "string", "description": "What was wrong, naming the field when one is at fault."},
        "field": {"type": "string", "description": "The field at fault, as a path such as `inputs.to[2]`."},
        "errors": {"description": "For a validation error: the messages by field, as DRF reports them."},
    },
    "required": ["detail"],
    "additionalProperties": {},
}

BAD_REQUEST = (
    "Invalid input; `detail` names the field. Also malformed JSON, JSON the database could not store "
    "(a NUL character, a lone surrogate, a number beyond a double), JSON nested deeper than "
    "HITL_JSON_MAX_DEPTH (64), and a NUL in a path or query parameter or in Idempotency-Key."
)
SHARED = {
    "400": BAD_REQUEST,
    "401": "Not authenticated: send `Authorization: Bearer <token>`, or sign in for a session.",
    "406": "The `Accept` header asks for a format this endpoint does not answer in.",
    "500": "The server failed to answer; `detail` gives the request id under which it logged why (also "
    "`request_id` and the `X-Request-ID` header). Never the failure's own text.",
    "503": "The database is unavailable; try again shortly.",
}
WITH_BODY = {
    "411": "A chunked body (no Content-Length) through a server that does not say where it ends; the "
    "production server does, and such a body is read as any other.",
    "413": "The request body is over the limit (1 MiB; for checkpoints HITL_CHECKPOINT_MAX_BYTES and the other fields).",
    "415": "The request body is not `application/json`.",
}
FORBIDDEN_SESSION = "A session call without its CSRF token (`X-CSRFToken` header)."
FORBIDDEN_ROLE = "This caller may not do this; `detail` says which rule refused (or a session call lacks its CSRF token)."
KEY_REUSED = f"This `{IDEMPOTENCY_HEADER}` was already used with a different request."
KEY_PARAMETER = {
    "in": "header",
    "name": IDEMPOTENCY_HEADER,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY},
    "description": "Send the same key to retry safely: the same key and body replay the first answer "
    "(`Idempotent-Replayed: true`); the same key with another body is a 422. Keys are per caller, kept 48 hours.",
}

_IDEMPOTENT = idempotent(lambda view, request: None).__code__  # the code every @idempotent handler runs


def _is_idempotent(handler) -> bool:
    return getattr(handler, "__code__", None) is _IDEMPOTENT


def _refuses_roles(view_class, method: str) -> bool:
    """Whether the view's permissions can refuse an authenticated caller for `method`."""
    return method not in SAFE_METHODS and any(
        permission is not IsAuthenticated for permission in view_class.permission_classes
    )


def error_responses(result, generator, request, public):
    """Add the `Error` component, give every error response its body, and add the shared
    statuses (and the Idempotency-Key header) to each operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR
    result["components"]["schemas"] = dict(sorted(schemas.items()))
    for path, _regex, method, callback in generator.endpoints:
        operation = result["paths"].get(path, {}).get(method.lower())
        if operation is None:
            continue
        view_class = callback.cls
        handler = getattr(view_class, method.lower(), None)
        responses = operation["responses"]
        added = dict(SHARED)
        if method not in SAFE_METHODS:
            added.update(WITH_BODY)  # parsed for an idempotency key, a session's CSRF check or the view
            refuses = "403" in responses or _refuses_roles(view_class, method)
            added["403"] = FORBIDDEN_ROLE if refuses else FORBIDDEN_SESSION
        if _is_idempotent(handler):
            added["422"] = KEY_REUSED
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("in") == "header" and p.get("name") == IDEMPOTENCY_HEADER for p in parameters):
                parameters.append(KEY_PARAMETER)
        for code, description in added.items():
            responses.setdefault(code, {"description": description})
        success = next((r for code, r in responses.items() if code.startswith("2")), {})
        media_types = list(success.get("content", {})) or ["application/json"]
        for code, response in responses.items():
            if int(code) >= 400 and "content" not in response:
                response["content"] = {media_type: {"schema": {"$ref": "#/components/schemas/Error"}} for media_type in media_types}
        operation["responses"] = dict(sorted(responses.items()))
    return result
