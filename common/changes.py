"""Tell every process that data behind one of its in-process caches changed.

A cache subscribes to a channel and asks `changed()` before each use; that costs no
database query while nothing changed:

- PostgreSQL: triggers on the tables send NOTIFY <channel> on commit (whoever made the
  change: admin, a script, SQL), and one daemon thread per process LISTENs to every
  channel, on DATABASE_LISTEN_URL when set (a direct connection, past PgBouncer), else on
  the app's own database settings. While a channel is not being listened to, `changed()`
  answers True for it, so a missed notification can never leave a cache stale; it just
  reloads more often.
- PostgreSQL through a transaction pooler (DATABASE_TRANSACTION_POOLING) with no
  DATABASE_LISTEN_URL: LISTEN can not work there (the pooler hands the connection to
  someone else after each transaction), so the same triggers also bump a row per channel
  in `hitl_change_version`, and `changed()` reads those rows at most once a second per
  process: a change elsewhere is seen within a second. A channel with no version row (the
  reviewer queue's, whose writes are too frequent for one shared row) counts as changed
  once a second.
- SQLite file: triggers count each change in `hitl_change_version` (whoever made it: the
  services, admin, `manage.py shell`, the sqlite3 shell), and each process keeps a
  connection of its own to the file (it only reads) that asks `PRAGMA data_version` (it moves
  whenever another connection commits; no table is read) and reads the version rows only
  when it moved. SQLite serves one machine, so every process that uses the file sees it.
- In-memory SQLite (tests): one process; `announce` marks its subscribers directly.
A NOTIFY may name the one key that changed (KEY_PAYLOAD; common.keyed_cache).
"""

import logging
import os
import sqlite3
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)


# A NOTIFY payload naming the one key (e.g. an action id) that changed; any other payload
# (a table's name) means anything of the channel may have changed.
KEY_PAYLOAD = "key:"


class Subscription:
    def __init__(self, feed, channel: str, on_key=None):
        self.feed = feed
        self.channel = channel
        self.dirty = True
        self.on_key = on_key  # on_key(key): told of a change of one key only, instead of dirty

    def _mark(self, key: str | None) -> None:
        if key is not None and self.on_key is not None:
            self.on_key(key)
        else:
            self.dirty = True

    def changed(self) -> bool:
        """True once after each change (and always while changes can not be seen)."""
        return self.feed.changed(self)

    def missed(self) -> None:
        """The reload that followed changed() failed (the database is down): the next
        changed() answers True again, so the cache does not stay stale."""
        self.dirty = True


class _Listener:
    """One LISTEN connection per process for every channel."""

    RETRY_SECONDS = 2.0
    POLL_SECONDS = 1.0  # how soon stop() is noticed; notifications arrive at once
    PING_SECONDS = 60.0

    def __init__(self, settings_dict: dict, feed):
        self.settings_dict = settings_dict
        self.feed = feed
        self.listening_to: frozenset = frozenset()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="hitl-change-listener", daemon=True)
        self.thread.start()

    # Django's own OPTIONS, not connection parameters of libpq.
    _NOT_CONNINFO = {"options", "isolation_level", "assume_role", "server_side_binding", "pool", "prepare_threshold"}

    def _conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        s = self.settings_dict
        extra = {k: v for k, v in (s.get("OPTIONS") or {}).items() if k not in self._NOT_CONNINFO and v is not None}
        return make_conninfo(
            dbname=s["NAME"], host=s.get("HOST") or None, port=s.get("PORT") or None,
            user=s.get("USER") or None, password=s.get("PASSWORD") or None, application_name="zakops-hitl listener",
            **extra,
        )

    def _run(self):
        import psycopg

        while not self.stopping.is_set():
            try:
                with psycopg.connect(self._conninfo(), autocommit=True) as conn:
                    idle = 0.0
                    while not self.stopping.is_set():
                        new = [c for c in self.feed.channels() if c not in self.listening_to]
                        for channel in new:
                            conn.execute(f"LISTEN {channel}")
                        if new:
                            for channel in new:  # whatever happened before we listened, before a cache is trusted
                                self.feed.mark(channel)
                            self.listening_to = self.listening_to | set(new)
                        for notice in conn.notifies(timeout=self.POLL_SECONDS):
                            self.feed.mark(notice.channel, notice.payload)
                        idle += self.POLL_SECONDS
                        if idle >= self.PING_SECONDS:  # notice a dead connection
                            conn.execute("SELECT 1")
                            idle = 0.0
            except Exception:
                logger.warning("change listener disconnected; caches reload on every use until it is back", exc_info=True)
            self.listening_to = frozenset()
            self.stopping.wait(self.RETRY_SECONDS)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=self.POLL_SECONDS * 5)


VERSION_TABLE = "hitl_change_version"


class ChangeFeed:
    POLL_SECONDS = 1.0  # in "poll" mode, how often the version rows are read

    def __init__(self):
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()
        self._listener: _Listener | None = None
        self._mode: str | None = None  # "postgresql" (LISTEN), "poll", "file" or "memory"
        self._base: str | None = None
        self._poll_lock = threading.Lock()
        self._next_poll = 0.0
        self._versions: dict = {}
        self._sqlite: sqlite3.Connection | None = None  # file mode: this process's own connection, for reads
        self._sqlite_pid: int | None = None
        self._data_version: int | None = None

    def _setup(self):
        with self._lock:
            if self._mode is not None:
                return
            if connection.vendor == "postgresql":
                direct = getattr(settings, "HITL_LISTEN_DATABASE", None)
                if direct is None and getattr(settings, "DATABASE_TRANSACTION_POOLING", False):
                    mode = "poll"
                else:
                    self._listener = _Listener(dict(direct or connection.settings_dict), self)
                    mode = "postgresql"
            else:
                name = str(connection.settings_dict["NAME"])
                in_memory = connection.is_in_memory_db() or name.startswith("file:")
                self._base = None if in_memory else name
                mode = "memory" if in_memory else "file"
            self._mode = mode

    def channels(self) -> list[str]:
        return sorted({s.channel for s in self._subscriptions})

    def subscribe(self, channel: str, *, on_key=None) -> Subscription:
        """A subscription to `channel`; with `on_key`, a change the feed knows to be of one
        key only (a NOTIFY payload of KEY_PAYLOAD and the key, or announce(key=...)) calls
        on_key(key) instead of marking the whole channel changed."""
        subscription = Subscription(self, channel, on_key)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def mark(self, channel: str, payload: str | None = None) -> None:
        key = payload[len(KEY_PAYLOAD):] if payload and payload.startswith(KEY_PAYLOAD) else None
        for subscription in self._subscriptions:
            if subscription.channel == channel:
                subscription._mark(key)

    def mark_all(self) -> None:
        for subscription in self._subscriptions:
            subscription.dirty = True

    def _sqlite_check(self) -> None:
        """File mode: mark the channels whose version row moved since the last look. The
        version rows are read only when `PRAGMA data_version` says another connection
        committed (this process's own writes included: they go through Django's
        connection, not this one)."""
        with self._poll_lock:
            try:
                if self._sqlite is None or self._sqlite_pid != os.getpid():  # none yet, or inherited by a fork
                    self._sqlite = sqlite3.connect(self._base, timeout=5, check_same_thread=False)
                    self._sqlite_pid, self._data_version = os.getpid(), None
                (data_version,), = self._sqlite.execute("PRAGMA data_version").fetchall()  # to the end: no read left open
                if data_version == self._data_version:
                    return
                versions = dict(self._sqlite.execute(f"SELECT channel, version FROM {VERSION_TABLE}").fetchall())
            except sqlite3.Error:
                logger.warning("change feed: %s could not be read; caches reload", VERSION_TABLE, exc_info=True)
                self._sqlite, self._versions = None, {}
                self.mark_all()
                return
            for channel in self.channels():
                if channel not in versions or versions[channel] != self._versions.get(channel):
                    self.mark(channel)
            self._versions, self._data_version = versions, data_version

    def _poll(self) -> None:
        """Read the version rows, unless that was done less than POLL_SECONDS ago; mark
        the channels whose version moved (or that have none)."""
        if time.monotonic() < self._next_poll:
            return
        with self._poll_lock:
            if time.monotonic() < self._next_poll:
                return
            try:
                # A savepoint inside a caller's transaction: a failure here leaves it usable.
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(f"SELECT channel, version FROM {VERSION_TABLE}")
                    versions = dict(cursor.fetchall())
            except DatabaseError:
                logger.warning("change feed: %s could not be read; caches reload", VERSION_TABLE, exc_info=True)
                versions = {}
            for channel in self.channels():
                seen = versions.get(channel)
                if seen is None or seen != self._versions.get(channel):
                    self.mark(channel)
            self._versions = versions
            self._next_poll = time.monotonic() + self.POLL_SECONDS

    def changed(self, subscription: Subscription) -> bool:
        if self._mode is None:
            self._setup()
        if self._mode == "postgresql" and subscription.channel not in self._listener.listening_to:
            return True
        if self._mode == "poll":
            self._poll()
        if self._mode == "file":
            self._sqlite_check()
        if subscription.dirty:
            subscription.dirty = False  # cleared before the reload, so a change during it is not lost
            return True
        return False

    def listening(self, channel: str) -> bool:
        """Whether a change made elsewhere to `channel` would be seen now (in "poll" mode:
        within a second)."""
        if self._mode is None:
            self._setup()
        return self._mode != "postgresql" or channel in self._listener.listening_to

    def instant(self, channel: str) -> bool:
        """Whether every change of `channel`, made by any process, reaches this process's
        subscribers as soon as it is committed: the listener is connected to the channel,
        or the feed reads the SQLite file's count at each changed(), or there is one process
        (memory). False behind a pooler (seen within a second) and while the listener is
        down: a cache that must never serve a stale answer is bypassed then."""
        if self._mode is None:
            self._setup()
        if self._mode == "postgresql":
            return channel in self._listener.listening_to
        return self._mode != "poll"

    def ready(self, timeout: float = 0.0) -> str | None:
        """How changes made elsewhere reach this process ("listening", "polling", "file",
        "memory"), waiting up to `timeout` seconds for the listener to connect; None when
        it is not connected to every channel."""
        if self._mode is None:
            self._setup()
        if self._mode != "postgresql":
            return {"poll": "polling"}.get(self._mode, self._mode)
        deadline = time.monotonic() + timeout
        while not all(self.listening(channel) for channel in self.channels()):
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)
        return "listening"

    def announce(self, channel: str, key: str | None = None) -> None:
        """Call after writing data of `channel` (of one `key` of it, when given): this
        process at once and again on commit; the table triggers tell the other processes."""
        payload = None if key is None else KEY_PAYLOAD + key
        self.mark(channel, payload)
        transaction.on_commit(lambda: self.mark(channel, payload))

    def stop(self) -> None:
        """Close the listener's connection (tests and tools); the next use starts anew."""
        with self._lock:
            listener, self._listener, self._mode = self._listener, None, None
            self._next_poll, self._versions = 0.0, {}
            sqlite, self._sqlite, self._data_version = self._sqlite, None, None
        if listener is not None:
            listener.stop()
        if sqlite is not None and self._sqlite_pid == os.getpid():
            sqlite.close()
        self.mark_all()


feed = ChangeFeed()


# --- PostgreSQL triggers, for the migrations that make tables announce their changes ----


def notify_triggers_create(schema_editor, *, channel: str, tables: dict) -> None:
    """Triggers sending NOTIFY `channel` on commit after the given events of each table,
    e.g. {"risk_riskrule": "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"}."""
    if schema_editor.connection.vendor != "postgresql":
        return
    _notify_function(schema_editor, channel=channel, versioned=False)
    for table, events in tables.items():
        schema_editor.execute(
            f"CREATE TRIGGER {table}_{channel} {events} ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {channel}_notify()"
        )


def _notify_function(schema_editor, *, channel: str, versioned: bool) -> None:
    bump = f"UPDATE {VERSION_TABLE} SET version = version + 1 WHERE channel = '{channel}';" if versioned else ""
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {channel}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{channel}', TG_TABLE_NAME);
            {bump}
            RETURN NULL;
        END
        $$
        """
    )


def change_version_create(schema_editor, *, channel: str) -> None:
    """Make the triggers of `channel` (made by notify_triggers_create) also count its
    changes in a row of hitl_change_version, which "poll" mode reads. For channels whose
    tables change seldom (rules, tokens): the row is one lock that every writer takes."""
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (channel varchar(63) PRIMARY KEY, version bigint NOT NULL DEFAULT 0)"
    )
    schema_editor.execute(f"INSERT INTO {VERSION_TABLE} (channel) VALUES ('{channel}') ON CONFLICT DO NOTHING")
    _notify_function(schema_editor, channel=channel, versioned=True)


def change_version_drop(schema_editor, *, channel: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    _notify_function(schema_editor, channel=channel, versioned=False)
    schema_editor.execute(f"DELETE FROM {VERSION_TABLE} WHERE channel = '{channel}'")
    schema_editor.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM {VERSION_TABLE}) THEN DROP TABLE {VERSION_TABLE}; END IF; END $$"
    )


def notify_triggers_drop(schema_editor, *, channel: str, tables: dict) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in tables:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_{channel} ON {table}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {channel}_notify()")


# --- SQLite triggers: every change counted in hitl_change_version -----------------------


def sqlite_version_triggers_create(schema_editor, *, channel: str, tables: dict) -> None:
    """SQLite: triggers that count every change of `tables` in the version row of
    `channel`, however it was made; e.g. {"risk_riskrule": ("INSERT", "UPDATE", "DELETE")}.
    A migration that rebuilds one of these tables on SQLite drops its triggers:
    tests/zakops_hitl/test_change_feed_sqlite.py checks that they are all there."""
    if schema_editor.connection.vendor != "sqlite":
        return
    schema_editor.execute(
        f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (channel varchar(63) PRIMARY KEY, version bigint NOT NULL DEFAULT 0)"
    )
    schema_editor.execute(f"INSERT OR IGNORE INTO {VERSION_TABLE} (channel) VALUES ('{channel}')")
    for name, table, event in sqlite_version_triggers(channel=channel, tables=tables):
        schema_editor.execute(
            f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table} BEGIN "
            f"UPDATE {VERSION_TABLE} SET version = version + 1 WHERE channel = '{channel}'; END"
        )


def sqlite_version_triggers(*, channel: str, tables: dict) -> list[tuple[str, str, str]]:
    """(trigger name, table, event) of each trigger sqlite_version_triggers_create makes."""
    return [
        (f"{table}_{channel}_{event.split()[0].lower()}", table, event)
        for table, events in tables.items() for event in events
    ]


def sqlite_version_triggers_drop(schema_editor, *, channel: str, tables: dict) -> None:
    if schema_editor.connection.vendor != "sqlite":
        return
    for name, _, _ in sqlite_version_triggers(channel=channel, tables=tables):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
    schema_editor.execute(f"DELETE FROM {VERSION_TABLE} WHERE channel = '{channel}'")
