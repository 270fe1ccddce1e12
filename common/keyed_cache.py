"""A per-process cache of values by key, kept up to date by the change feed
(common.changes): trusted only while the feed hears every change at once; and the
PostgreSQL triggers that name the key that changed, for the migrations."""

import threading

from common.changes import KEY_PAYLOAD, ChangeFeed, feed, notify_triggers_create

_MISSING = object()


class KeyedCache:
    """A per-process cache of values by key for a channel whose triggers name the key that
    changed (keyed_notify_triggers_create). Trusted only while the feed hears every change
    of the channel at once (ChangeFeed.instant); otherwise every get() loads. A key's value
    is dropped when a change of it arrives, everything when a change of unknown extent
    arrives (and when the listener reconnects); a value loaded while a change arrived is not
    kept, so a cache can never hold a value older than the last change it heard of. None
    is never kept. At most `size` keys: the oldest kept goes first."""

    def __init__(self, channel: str, *, size: int, changes: ChangeFeed | None = None):
        self.size = size
        self._feed = changes or feed
        self._values: dict = {}
        self._generation = 0  # counts the changes heard: a load that saw it move is not kept
        self._lock = threading.Lock()
        self._changes = self._feed.subscribe(channel, on_key=self._forget)

    def _forget(self, key) -> None:
        with self._lock:
            self._generation += 1
            self._values.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._values.clear()

    def get(self, key, load):
        """load(key), or its value kept from an earlier call when nothing of it changed since."""
        channel = self._changes.channel
        if not self._feed.instant(channel):
            return load(key)
        if self._changes.changed():
            self.clear()
        else:
            value = self._values.get(key, _MISSING)
            if value is not _MISSING:
                return value
        generation = self._generation
        value = load(key)
        if value is not None and self.size > 0:
            with self._lock:
                if generation == self._generation and self._feed.instant(channel):
                    if key not in self._values and len(self._values) >= self.size:
                        del self._values[next(iter(self._values))]
                    self._values[key] = value
        return value

    def __len__(self) -> int:
        return len(self._values)


# --- PostgreSQL triggers naming the key that changed -------------------------------------


def keyed_notify_triggers_create(schema_editor, *, channel: str, table: str, key_column: str, most: int = 100) -> None:
    """Triggers sending NOTIFY `channel` on commit with the payload KEY_PAYLOAD and the
    `key_column` of each row a statement inserted, updated (old and new key) or deleted,
    once per key; a statement that touched more than `most` keys, and TRUNCATE, send the
    table's name instead (anything may have changed). Replaces the triggers of
    notify_triggers_create on `table`, whose subscribers hear every change as before."""
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_{channel} ON {table}")
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {channel}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            keys text[];
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                PERFORM pg_notify('{channel}', TG_TABLE_NAME);
                RETURN NULL;
            ELSIF TG_OP = 'UPDATE' THEN
                SELECT array_agg(DISTINCT k) INTO keys FROM (
                    SELECT {key_column}::text AS k FROM changed UNION SELECT {key_column}::text FROM gone
                ) AS both_sides;
            ELSE
                SELECT array_agg(DISTINCT {key_column}::text) INTO keys FROM changed;
            END IF;
            IF cardinality(keys) > {int(most)} THEN
                PERFORM pg_notify('{channel}', TG_TABLE_NAME);
            ELSIF keys IS NOT NULL THEN
                PERFORM pg_notify('{channel}', '{KEY_PAYLOAD}' || k) FROM unnest(keys) AS k;
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    for suffix, event, transition in (
        ("", "INSERT", "NEW TABLE AS changed"),
        ("_update", "UPDATE", "OLD TABLE AS gone NEW TABLE AS changed"),
        ("_delete", "DELETE", "OLD TABLE AS changed"),
    ):
        schema_editor.execute(
            f"CREATE TRIGGER {table}_{channel}{suffix} AFTER {event} ON {table} REFERENCING {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {channel}_notify()"
        )
    schema_editor.execute(
        f"CREATE TRIGGER {table}_{channel}_truncate AFTER TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {channel}_notify()"
    )


def keyed_notify_triggers_drop(schema_editor, *, channel: str, table: str) -> None:
    """Back to notify_triggers_create's trigger: every change of `table` named by the table."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for suffix in ("", "_update", "_delete", "_truncate"):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_{channel}{suffix} ON {table}")
    notify_triggers_create(
        schema_editor, channel=channel, tables={table: "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"}
    )
