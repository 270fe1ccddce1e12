"""The engine's hot statements (checkpoint save and latest, the poll) on PostgreSQL: fixed
SQL sent with server-side binding and, on a direct connection, as a prepared statement.

Django's own cursor binds on the client: the ~2 KB of checkpoint JSON is quoted into the
SQL text, which the server then parses and plans on every call. Here the values travel as
parameters and the statement is parsed and planned once per connection. The cursor is
still wrapped by Django, so execute wrappers, the query log and error translation see it.
Measured in interleaved rounds (p50): the save's statement alone took 0.467 ms through this
cursor against 0.546 ms through Django's; in bench/checkpoints.py a whole save went from 1.30
to 1.20 times a PostgresSaver.put() in the same run (bench/README.md has the figures).
"""

import psycopg
from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


class _PreparedCursor(psycopg.Cursor):
    """Server-side binding; every statement prepared, unless DATABASE_TRANSACTION_POOLING
    (a transaction pooler hands the server connection, and its prepared statements, to
    someone else after each transaction)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        if prepare is None:
            prepare = not settings.DATABASE_TRANSACTION_POOLING
        return super().execute(query, params, prepare=prepare, binary=binary)


def fetch_one(sql: str, params) -> tuple | None:
    """The first row of `sql` run with `params` on Django's connection (PostgreSQL only)."""
    connection.ensure_connection()
    connection.validate_thread_sharing()
    cursor = _PreparedCursor(connection.connection)
    wrapper = CursorDebugWrapper if connection.queries_logged else CursorWrapper
    with wrapper(cursor, connection) as wrapped:
        wrapped.execute(sql, params)
        return wrapped.fetchone()
