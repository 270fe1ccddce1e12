"""Create the ZakOps backend tables where they are absent, exactly as the backend has them.

Used by migration zakops 0001. A table that already exists is left untouched: no column
is added, altered or dropped, and its rows are kept. On PostgreSQL the tables live in
schema `zakops`; the connection's search_path is `public,zakops`, so Django's own tables
are created in `public` and the models' unqualified names find the ZakOps tables. To
make sure no other table of the same name shadows one of them, `ensure_shared_tables`
checks where each name resolves and refuses to go on when it is not schema `zakops`.
"""

from django.core.exceptions import ImproperlyConfigured

SHARED_TABLES = ("deals", "actions", "deal_events", "execution_checkpoints", "operators", "outbox")

POSTGRESQL = {
    "deals": [
        """
        CREATE TABLE zakops.deals (
            deal_id VARCHAR(20) PRIMARY KEY,
            canonical_name VARCHAR(255) NOT NULL,
            display_name VARCHAR(255),
            stage VARCHAR(50) DEFAULT 'inbound',
            status VARCHAR(50) DEFAULT 'active',
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
    ],
    "actions": [
        """
        CREATE TABLE zakops.actions (
            action_id VARCHAR(50) PRIMARY KEY,
            deal_id VARCHAR(20) REFERENCES zakops.deals (deal_id) ON DELETE SET NULL,
            capability_id VARCHAR(100),
            action_type VARCHAR(100) NOT NULL,
            title VARCHAR(255),
            summary TEXT,
            status VARCHAR(50),
            created_by VARCHAR(255),
            source VARCHAR(50),
            risk_level VARCHAR(20),
            requires_human_review BOOLEAN,
            idempotency_key VARCHAR(64),
            inputs JSONB,
            outputs JSONB,
            error_message TEXT,
            retry_count INTEGER,
            max_retries INTEGER,
            audit_trail JSONB,
            correlation_id UUID,
            causation_id UUID,
            trace_id UUID,
            run_id UUID,
            approved_by UUID,
            approved_at TIMESTAMPTZ,
            operator_id UUID,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            started_at TIMESTAMPTZ,
            completed_at TIMESTAMPTZ
        )
        """,
    ],
    "deal_events": [
        "CREATE SEQUENCE IF NOT EXISTS zakops.deal_events_sequence_seq",
        """
        CREATE TABLE zakops.deal_events (
            id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            deal_id VARCHAR(20) REFERENCES zakops.deals (deal_id),
            event_type VARCHAR(100) NOT NULL,
            source VARCHAR(100),
            actor VARCHAR(255),
            actor_id VARCHAR(64),
            actor_type VARCHAR(32),
            details JSONB,
            idempotency_key VARCHAR(64),
            sequence_number BIGINT DEFAULT nextval('zakops.deal_events_sequence_seq'),
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
        "ALTER SEQUENCE zakops.deal_events_sequence_seq OWNED BY zakops.deal_events.sequence_number",
    ],
    "execution_checkpoints": [
        """
        CREATE TABLE zakops.execution_checkpoints (
            id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            correlation_id UUID NOT NULL,
            action_id VARCHAR(50) REFERENCES zakops.actions (action_id) ON DELETE CASCADE,
            run_id UUID,
            checkpoint_name VARCHAR(255) NOT NULL,
            checkpoint_type VARCHAR(50) DEFAULT 'state',
            checkpoint_data JSONB NOT NULL,
            sequence_number INTEGER NOT NULL,
            status VARCHAR(50) DEFAULT 'active'
                CHECK (status IN ('active', 'resumed', 'expired', 'cancelled')),
            expires_at TIMESTAMPTZ,
            resumed_at TIMESTAMPTZ,
            resumed_by UUID,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            UNIQUE (action_id, checkpoint_name, sequence_number)
        )
        """,
        "CREATE INDEX idx_execution_checkpoints_action_id ON zakops.execution_checkpoints (action_id)",
        "CREATE INDEX idx_execution_checkpoints_status ON zakops.execution_checkpoints (status)",
    ],
    "operators": [
        """
        CREATE TABLE zakops.operators (
            id UUID PRIMARY KEY,
            email VARCHAR(255) NOT NULL UNIQUE,
            name VARCHAR(255),
            role VARCHAR(50) CHECK (role IN ('admin', 'operator', 'viewer')),
            preferences JSONB,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        )
        """,
    ],
    "outbox": [
        """
        CREATE TABLE zakops.outbox (
            id UUID PRIMARY KEY,
            correlation_id UUID NOT NULL,
            aggregate_type VARCHAR(50) NOT NULL,
            aggregate_id VARCHAR(100) NOT NULL,
            event_type VARCHAR(100) NOT NULL,
            schema_version INTEGER NOT NULL DEFAULT 1,
            event_data JSONB NOT NULL,
            trace_id UUID,
            status VARCHAR(50) NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'processing', 'delivered', 'failed', 'dead')),
            attempts INTEGER DEFAULT 0,
            max_attempts INTEGER DEFAULT 5,
            last_attempt_at TIMESTAMPTZ,
            next_attempt_at TIMESTAMPTZ,
            delivered_at TIMESTAMPTZ,
            error_message TEXT,
            created_at TIMESTAMPTZ NOT NULL
        )
        """,
    ],
}

# SQLite stores what Django's SQLite backend expects: UUIDs as 32 hex characters,
# JSON as checked text, timestamps as text.
_SQLITE_NOW = "(strftime('%Y-%m-%d %H:%M:%f', 'now'))"
_SQLITE_UUID = "(lower(hex(randomblob(16))))"


def _json(column: str, *, not_null: bool = False) -> str:
    null = " NOT NULL" if not_null else ""
    return f"{column} text{null} CHECK ({column} IS NULL OR json_valid({column}))"


SQLITE = {
    "deals": [
        f"""
        CREATE TABLE deals (
            deal_id varchar(20) NOT NULL PRIMARY KEY,
            canonical_name varchar(255) NOT NULL,
            display_name varchar(255),
            stage varchar(50) DEFAULT 'inbound',
            status varchar(50) DEFAULT 'active',
            created_at datetime NOT NULL DEFAULT {_SQLITE_NOW},
            updated_at datetime NOT NULL DEFAULT {_SQLITE_NOW}
        )
        """,
    ],
    "actions": [
        f"""
        CREATE TABLE actions (
            action_id varchar(50) NOT NULL PRIMARY KEY,
            deal_id varchar(20) REFERENCES deals (deal_id) ON DELETE SET NULL,
            capability_id varchar(100),
            action_type varchar(100) NOT NULL,
            title varchar(255),
            summary text,
            status varchar(50),
            created_by varchar(255),
            source varchar(50),
            risk_level varchar(20),
            requires_human_review bool,
            idempotency_key varchar(64),
            {_json("inputs")},
            {_json("outputs")},
            error_message text,
            retry_count integer,
            max_retries integer,
            {_json("audit_trail")},
            correlation_id char(32),
            causation_id char(32),
            trace_id char(32),
            run_id char(32),
            approved_by char(32),
            approved_at datetime,
            operator_id char(32),
            created_at datetime NOT NULL DEFAULT {_SQLITE_NOW},
            updated_at datetime NOT NULL DEFAULT {_SQLITE_NOW},
            started_at datetime,
            completed_at datetime
        )
        """,
    ],
    "deal_events": [
        f"""
        CREATE TABLE deal_events (
            id char(32) NOT NULL PRIMARY KEY DEFAULT {_SQLITE_UUID},
            deal_id varchar(20) REFERENCES deals (deal_id),
            event_type varchar(100) NOT NULL,
            source varchar(100),
            actor varchar(255),
            actor_id varchar(64),
            actor_type varchar(32),
            {_json("details")},
            idempotency_key varchar(64),
            sequence_number bigint,
            created_at datetime NOT NULL DEFAULT {_SQLITE_NOW}
        )
        """,
    ],
    "execution_checkpoints": [
        f"""
        CREATE TABLE execution_checkpoints (
            id char(32) NOT NULL PRIMARY KEY DEFAULT {_SQLITE_UUID},
            correlation_id char(32) NOT NULL,
            action_id varchar(50) REFERENCES actions (action_id) ON DELETE CASCADE,
            run_id char(32),
            checkpoint_name varchar(255) NOT NULL,
            checkpoint_type varchar(50) DEFAULT 'state',
            {_json("checkpoint_data", not_null=True)},
            sequence_number integer NOT NULL,
            status varchar(50) DEFAULT 'active'
                CHECK (status IN ('active', 'resumed', 'expired', 'cancelled')),
            expires_at datetime,
            resumed_at datetime,
            resumed_by char(32),
            created_at datetime NOT NULL DEFAULT {_SQLITE_NOW},
            UNIQUE (action_id, checkpoint_name, sequence_number)
        )
        """,
        "CREATE INDEX idx_execution_checkpoints_action_id ON execution_checkpoints (action_id)",
        "CREATE INDEX idx_execution_checkpoints_status ON execution_checkpoints (status)",
    ],
    "operators": [
        f"""
        CREATE TABLE operators (
            id char(32) NOT NULL PRIMARY KEY,
            email varchar(255) NOT NULL UNIQUE,
            name varchar(255),
            role varchar(50) CHECK (role IN ('admin', 'operator', 'viewer')),
            {_json("preferences")},
            created_at datetime NOT NULL,
            updated_at datetime NOT NULL
        )
        """,
    ],
    "outbox": [
        f"""
        CREATE TABLE outbox (
            id char(32) NOT NULL PRIMARY KEY,
            correlation_id char(32) NOT NULL,
            aggregate_type varchar(50) NOT NULL,
            aggregate_id varchar(100) NOT NULL,
            event_type varchar(100) NOT NULL,
            schema_version integer NOT NULL DEFAULT 1,
            {_json("event_data", not_null=True)},
            trace_id char(32),
            status varchar(50) NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'processing', 'delivered', 'failed', 'dead')),
            attempts integer DEFAULT 0,
            max_attempts integer DEFAULT 5,
            last_attempt_at datetime,
            next_attempt_at datetime,
            delivered_at datetime,
            error_message text,
            created_at datetime NOT NULL
        )
        """,
    ],
}


def _postgresql_table_exists(cursor, table: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f"zakops.{table}"])
    return cursor.fetchone()[0]


def _postgresql_resolved_schema(cursor, table: str) -> str | None:
    cursor.execute(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = to_regclass(%s)",
        [table],
    )
    row = cursor.fetchone()
    return row[0] if row else None


def _sqlite_table_exists(cursor, table: str) -> bool:
    cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
    return cursor.fetchone() is not None


def ensure_shared_tables(connection) -> list[str]:
    """Create each absent ZakOps table with its indexes; return the names created."""
    created = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("CREATE SCHEMA IF NOT EXISTS zakops")
            statements, exists = POSTGRESQL, _postgresql_table_exists
        elif connection.vendor == "sqlite":
            statements, exists = SQLITE, _sqlite_table_exists
        else:
            raise ImproperlyConfigured(f"ZakOps HITL supports PostgreSQL and SQLite, not {connection.vendor}")
        for table in SHARED_TABLES:
            if exists(cursor, table):
                continue
            for statement in statements[table]:
                cursor.execute(statement)
            created.append(table)
        if connection.vendor == "postgresql":
            for table in SHARED_TABLES:
                schema = _postgresql_resolved_schema(cursor, table)
                if schema != "zakops":
                    raise ImproperlyConfigured(
                        f"table name {table!r} resolves to schema {schema!r}, not 'zakops'; "
                        "rename or drop the other table so the app reads the ZakOps one"
                    )
    return created
