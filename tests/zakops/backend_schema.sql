-- The ZakOps backend's own tables, as schema/existing-tables.md describes them, written
-- the way the backend's migrations would: named constraints and indexes, defaults on
-- the columns. The test builds a database from this, then runs this app's migrations.
CREATE SCHEMA zakops;

CREATE TABLE zakops.deals (
    deal_id        VARCHAR(20)  NOT NULL,
    canonical_name VARCHAR(255) NOT NULL,
    display_name   VARCHAR(255),
    stage          VARCHAR(50)  DEFAULT 'inbound',
    status         VARCHAR(50)  DEFAULT 'active',
    created_at     TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT deals_pkey PRIMARY KEY (deal_id)
);

CREATE TABLE zakops.actions (
    action_id             VARCHAR(50)  NOT NULL,
    deal_id               VARCHAR(20),
    capability_id         VARCHAR(100),
    action_type           VARCHAR(100) NOT NULL,
    title                 VARCHAR(255),
    summary               TEXT,
    status                VARCHAR(50),
    created_by            VARCHAR(255),
    source                VARCHAR(50),
    risk_level            VARCHAR(20),
    requires_human_review BOOLEAN,
    idempotency_key       VARCHAR(64),
    inputs                JSONB,
    outputs               JSONB,
    error_message         TEXT,
    retry_count           INTEGER,
    max_retries           INTEGER,
    audit_trail           JSONB,
    correlation_id        UUID,
    causation_id          UUID,
    trace_id              UUID,
    run_id                UUID,
    approved_by           UUID,
    approved_at           TIMESTAMPTZ,
    operator_id           UUID,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at            TIMESTAMPTZ,
    completed_at          TIMESTAMPTZ,
    CONSTRAINT actions_pkey PRIMARY KEY (action_id),
    CONSTRAINT actions_deal_fk FOREIGN KEY (deal_id) REFERENCES zakops.deals (deal_id) ON DELETE SET NULL
);

CREATE SEQUENCE zakops.deal_events_sequence_seq;
CREATE TABLE zakops.deal_events (
    id              UUID         NOT NULL DEFAULT gen_random_uuid(),
    deal_id         VARCHAR(20),
    event_type      VARCHAR(100) NOT NULL,
    source          VARCHAR(100),
    actor           VARCHAR(255),
    actor_id        VARCHAR(64),
    actor_type      VARCHAR(32),
    details         JSONB,
    idempotency_key VARCHAR(64),
    sequence_number BIGINT DEFAULT nextval('zakops.deal_events_sequence_seq'),
    created_at      TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT deal_events_pkey PRIMARY KEY (id),
    CONSTRAINT deal_events_deal_fk FOREIGN KEY (deal_id) REFERENCES zakops.deals (deal_id)
);

CREATE TABLE zakops.execution_checkpoints (
    id              UUID         NOT NULL DEFAULT gen_random_uuid(),
    correlation_id  UUID         NOT NULL,
    action_id       VARCHAR(50),
    run_id          UUID,
    checkpoint_name VARCHAR(255) NOT NULL,
    checkpoint_type VARCHAR(50)  DEFAULT 'state',
    checkpoint_data JSONB        NOT NULL,
    sequence_number INTEGER      NOT NULL,
    status          VARCHAR(50)  DEFAULT 'active',
    expires_at      TIMESTAMPTZ,
    resumed_at      TIMESTAMPTZ,
    resumed_by      UUID,
    created_at      TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT execution_checkpoints_pkey PRIMARY KEY (id),
    CONSTRAINT execution_checkpoints_action_fk FOREIGN KEY (action_id)
        REFERENCES zakops.actions (action_id) ON DELETE CASCADE,
    CONSTRAINT execution_checkpoints_status_check
        CHECK (status IN ('active', 'resumed', 'expired', 'cancelled')),
    CONSTRAINT execution_checkpoints_unique_seq UNIQUE (action_id, checkpoint_name, sequence_number)
);
CREATE INDEX ix_checkpoints_action ON zakops.execution_checkpoints (action_id);
CREATE INDEX ix_checkpoints_status ON zakops.execution_checkpoints (status);

CREATE TABLE zakops.operators (
    id          UUID         NOT NULL,
    email       VARCHAR(255) NOT NULL,
    name        VARCHAR(255),
    role        VARCHAR(50),
    preferences JSONB,
    created_at  TIMESTAMPTZ  NOT NULL,
    updated_at  TIMESTAMPTZ  NOT NULL,
    CONSTRAINT operators_pkey PRIMARY KEY (id),
    CONSTRAINT operators_email_key UNIQUE (email),
    CONSTRAINT operators_role_check CHECK (role IN ('admin', 'operator', 'viewer'))
);

CREATE TABLE zakops.outbox (
    id              UUID         NOT NULL,
    correlation_id  UUID         NOT NULL,
    aggregate_type  VARCHAR(50)  NOT NULL,
    aggregate_id    VARCHAR(100) NOT NULL,
    event_type      VARCHAR(100) NOT NULL,
    schema_version  INTEGER      NOT NULL DEFAULT 1,
    event_data      JSONB        NOT NULL,
    trace_id        UUID,
    status          VARCHAR(50)  NOT NULL DEFAULT 'pending',
    attempts        INTEGER      DEFAULT 0,
    max_attempts    INTEGER      DEFAULT 5,
    last_attempt_at TIMESTAMPTZ,
    next_attempt_at TIMESTAMPTZ,
    delivered_at    TIMESTAMPTZ,
    error_message   TEXT,
    created_at      TIMESTAMPTZ  NOT NULL,
    CONSTRAINT outbox_pkey PRIMARY KEY (id),
    CONSTRAINT outbox_status_check
        CHECK (status IN ('pending', 'processing', 'delivered', 'failed', 'dead'))
);

-- Rows the backend already holds.
INSERT INTO zakops.deals (deal_id, canonical_name, display_name, stage)
VALUES ('DL-0042', 'Acme Holdings Inc.', 'Acme', 'closed'),
       ('DL-0043', 'Borealis GmbH', NULL, 'inbound');
INSERT INTO zakops.actions (action_id, deal_id, capability_id, action_type, title, status, risk_level,
                            requires_human_review, inputs, audit_trail, correlation_id, approved_by, approved_at)
VALUES ('ACT-20260119T101500-1a2b3c4d', 'DL-0042', 'communication.send_email.v1', 'COMMUNICATION.SEND_EMAIL',
        'Send LOI', 'PENDING_APPROVAL', 'critical', TRUE, '{"to": "cfo@seller.example", "n": [1, 2]}',
        '[{"event": "created"}]', 'a3f1b2c4-0000-4000-8000-000000000001', NULL, NULL),
       ('ACT-20260119T101600-5e6f7a8b', NULL, NULL, 'DEAL.GET_DETAILS', NULL, 'COMPLETED', 'low', FALSE,
        '{}', '[]', NULL, 'b1e2c3d4-0000-4000-8000-000000000002', '2026-01-19 10:20:00+00');
INSERT INTO zakops.deal_events (deal_id, event_type, source, actor, details)
VALUES ('DL-0042', 'deal.created', 'backend', 'system', '{"note": "Grüße"}');
INSERT INTO zakops.execution_checkpoints (correlation_id, action_id, checkpoint_name, checkpoint_data, sequence_number)
VALUES ('a3f1b2c4-0000-4000-8000-000000000001', 'ACT-20260119T101500-1a2b3c4d', 'before_send', '{"step": 1}', 0);
INSERT INTO zakops.operators (id, email, name, role, created_at, updated_at)
VALUES ('b1e2c3d4-0000-4000-8000-000000000002', 'lead@zakops.example', 'Deal Lead', 'admin', now(), now());
INSERT INTO zakops.outbox (id, correlation_id, aggregate_type, aggregate_id, event_type, event_data, status,
                           attempts, created_at)
VALUES ('c0000000-0000-4000-8000-000000000003', 'a3f1b2c4-0000-4000-8000-000000000001', 'action',
        'ACT-20260119T101500-1a2b3c4d', 'action.created', '{"x": 1}', 'delivered', 1, now());
