"""The engine's hot statements (checkpoint save and latest, the poll) on PostgreSQL: fixed
SQL sent with server-side binding and, on a direct connection, as a prepared statement.

Django's own cursor binds on the client: the ~2 KB of checkpoint JSON is quoted into the
SQL text, which the server then parses and plans on every call. Here the values travel as
parameters and the statement is parsed and planned once per connection. Django's error
translation always applies; execute wrappers and the query log see the statement whenever
they are on (fetch_one). What it saves is measured in docs/performance.md.
"""

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


class _PreparedCursor(psycopg.Cursor):
    """Server-side binding; every statement prepared, unless DATABASE_TRANSACTION_POOLING
    (a transaction pooler hands the server connection, and its prepared statements, to
    someone else after each transaction)."""

    def __init__(self, connection):
        super().__init__(connection)
        self.prepare = not settings.DATABASE_TRANSACTION_POOLING  # read once: a setting is looked up through a proxy

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=self.prepare if prepare is None else prepare, binary=binary)


def fetch_one(sql: str, params, db=None) -> tuple | None:
    """The first row of `sql` run with `params` on Django's connection (`db`, when the
    caller holds it already): prepared on PostgreSQL, through Django's own cursor elsewhere.

    While nothing watches the queries (no query log, no execute wrapper), the statement
    goes through one cursor kept per connection, inside Django's error translation: the
    checks Django's cursor wrapper makes (the thread, a broken transaction) are made here,
    and its per-call objects are not built. Otherwise Django's wrapper takes the call, so
    that the log and the wrappers see it.
    """
    db = connections[DEFAULT_DB_ALIAS] if db is None else db
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    db.ensure_connection()
    db.validate_thread_sharing()
    if db.queries_logged or db.execute_wrappers:
        wrapper = CursorDebugWrapper if db.queries_logged else CursorWrapper
        with wrapper(_PreparedCursor(db.connection), db) as wrapped:
            wrapped.execute(sql, params)
            return wrapped.fetchone()
    db.validate_no_broken_transaction()
    with db.wrap_database_errors:
        cursor = _cursor(db)
        cursor.execute(sql, params)
        return cursor.fetchone()


def _cursor(db) -> "_PreparedCursor":
    """The prepared cursor of `db`'s current connection, made on first use (a new
    connection, after a close or a reconnect, gets a new one)."""
    kept = getattr(db, "_hitl_prepared_cursor", None)
    if kept is None or kept.connection is not db.connection or kept.closed:
        kept = db._hitl_prepared_cursor = _PreparedCursor(db.connection)
    return kept


class ModelRow:
    """One row of a model read with fixed SQL (fetch_one) and made into the instance the
    ORM would have made: only `fields` (default: all) are selected, the others deferred,
    and each value goes through the converters Django applies on this backend (JSON text,
    SQLite's dates and UUIDs), computed once. Write the SQL with `columns`."""

    def __init__(self, model, fields=None):
        opts = model._meta
        chosen = [f for f in opts.concrete_fields if fields is None or f.name in fields or f.attname in fields]
        self.model = model
        self.attnames = [f.attname for f in chosen]  # in the model's order, as from_db takes them
        self.columns = ", ".join(f.column for f in chosen)
        self._cols = [f.get_col(opts.db_table) for f in chosen]
        self._converters_by_vendor = {}

    def _converters(self) -> list:
        found = self._converters_by_vendor.get(connection.vendor)
        if found is None:
            found = self._converters_by_vendor[connection.vendor] = [
                (i, functions, col) for i, col in enumerate(self._cols)
                if (functions := [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)])
            ]
        return found

    def one(self, sql: str, params):
        row = fetch_one(sql, params)
        if row is None:
            return None
        values = list(row)
        for i, functions, col in self._converters():
            for function in functions:
                values[i] = function(values[i], col, connection)
        return self.model.from_db(connection.alias, self.attnames, values)
