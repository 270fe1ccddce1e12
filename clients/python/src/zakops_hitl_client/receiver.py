"""A receiver of the decisions ZakOps HITL pushes to the engine (`hitl.decided`, from an
engine webhook channel), standard library only: it checks each call with
`verify_webhook` and hands the event on, so a resumer wakes the moment a request is
decided instead of at its next poll.

    server = serve_decisions(secret, on_event=lambda event: wake.set(), port=8700)
    ...
    server.shutdown()

A call whose signature, age or body does not check out is answered 400 with a JSON
`detail` and handed on to nobody; a good one 204. The server answers 2xx only after
`on_event` returned, so an event it could not take is sent again by the server's retries.
The pushed event is a wake-up call, not the decision: the resumer reads the decision from
the API before a graph goes on (the gate trusts the server, not the message).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from zakops_hitl_client.webhooks import DecidedEvent, WebhookVerificationError, verify_webhook

log = logging.getLogger("zakops_hitl_client.receiver")

MAX_BODY = 1024 * 1024  # a decided event is a few KB; the approved inputs at most a megabyte


def serve_decisions(
    secret: str | bytes,
    *,
    on_event: Callable[[DecidedEvent], None],
    host: str = "127.0.0.1",
    port: int = 0,
    tolerance: float = 300,
) -> ThreadingHTTPServer:
    """Start serving on `host:port` (0: a free port; `server.server_address` says which)
    in a daemon thread, and return the server; `server.shutdown()` stops it."""
    handler = _handler_for(secret, on_event, tolerance)
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="hitl-decisions", daemon=True).start()
    return server


def _handler_for(
    secret: str | bytes, on_event: Callable[[DecidedEvent], None], tolerance: float
) -> type[BaseHTTPRequestHandler]:
    class DecisionHandler(BaseHTTPRequestHandler):
        server_version = "zakops-hitl-receiver"

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = self.headers.get("Content-Length", "")
            if not length.isascii() or not length.isdigit():
                self._answer(411, "A Content-Length is required.")
                return
            if int(length) > MAX_BODY:
                self._answer(413, f"The body is larger than {MAX_BODY} bytes.")
                return
            body = self.rfile.read(int(length))
            try:
                event = verify_webhook(secret, body, dict(self.headers.items()), tolerance=tolerance)
            except WebhookVerificationError as exc:
                log.warning("refused a call to the decision receiver: %s", exc)
                self._answer(400, str(exc))
                return
            try:
                on_event(event)
            except Exception:  # the server sends it again: answer that it was not taken
                log.exception("the decision receiver's handler failed on %s", event.get("event_id"))
                self._answer(503, "The event could not be taken now; send it again.")
                return
            self._answer(204)

        def _answer(self, status: int, detail: str = "") -> None:
            body = json.dumps({"detail": detail}).encode() if detail else b""
            self.send_response(status)
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
            log.debug("%s " + format, self.address_string(), *args)

    return DecisionHandler
