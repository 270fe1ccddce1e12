"""Calls to the WSGI application (zakops_hitl.engine.HitlWSGIHandler) with an environ as a
WSGI server builds it: PATH_INFO is the path's bytes, percent-decoded, as latin-1 text (PEP
3333), and the test's database connection outlives the request, as with Django's test client."""

import io
from dataclasses import dataclass

from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory

from zakops_hitl.engine import HitlWSGIHandler


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes

    def json(self):
        import json

        return json.loads(self.body)


def server_environ(method: str, path: str, *, query: str = "", body: bytes | None = None, **headers) -> dict:
    """The environ of `method path?query`; `path` is the decoded text the client meant
    (e.g. `/api/hitl/actions/café/approval`), put into PATH_INFO as a server would."""
    environ = RequestFactory().generic(method, "/", data=body or b"", content_type="application/json").environ
    environ["PATH_INFO"] = path.encode().decode("latin-1")
    environ["QUERY_STRING"] = query
    if body is None:
        environ.pop("CONTENT_TYPE", None)
        environ["CONTENT_LENGTH"] = "0" if method == "POST" else ""
        environ["wsgi.input"] = io.BytesIO(b"")
    environ.update(headers)
    return environ


def call(environ: dict, application=None) -> Answer:
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = status, dict(headers)

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        answer = (application or HitlWSGIHandler())(environ, start_response)
        try:
            body = b"".join(answer)
        finally:
            if hasattr(answer, "close"):  # as a WSGI server does: Django then sends request_finished
                answer.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return Answer(int(started["status"].split()[0]), started["headers"], body)
