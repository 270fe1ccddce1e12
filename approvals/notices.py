"""Telling people that a request waits, was quarantined or expired, and the engine that it
reached its end: what the approval services call, in the transition's own transaction,
so that the message exists exactly when the transition does.

Who is told, and how, is the notifications app's business, which sits above this one: it
plugs its writer in when it is ready (notifications.apps), and this module knows nothing
of it. With nothing plugged in a transition tells nobody; tests of the workflow alone may
rely on that."""

from collections.abc import Callable

REQUESTED = "requested"  # a request that needs a person was opened
QUARANTINED = "quarantined"  # a request was quarantined: admins decide next
EXPIRED = "expired"  # a request expired undecided
DECIDED = "decided"  # a request reached its end: approved, rejected, expired or cancelled

_writer: Callable | None = None


def notices_plug(writer: Callable) -> None:
    """Have `writer(kind=, request=, action=, actor=, reason=)` write each notice."""
    global _writer
    _writer = writer


def notice(*, kind: str, request, action, actor=None, reason: str = "") -> None:
    """Tell the people concerned about `request`, in the caller's transaction."""
    if _writer is not None:
        _writer(kind=kind, request=request, action=action, actor=actor, reason=reason)
