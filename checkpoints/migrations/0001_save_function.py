"""PostgreSQL: save a checkpoint in one round trip (see checkpoints.services.checkpoint_save).

The function locks the action's row, then reads the highest sequence number in a new
statement (so, under READ COMMITTED, with a snapshot taken after the lock was granted: it
sees every save committed before), then inserts. Writers for one action take turns at the
lock; the sequence has no gap and no duplicate.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION hitl_checkpoint_save(
    p_action_id varchar, p_name varchar, p_type varchar, p_data jsonb, p_correlation_id uuid,
    p_derived_correlation_id uuid, p_run_id uuid, p_expires_at timestamptz, p_created_at timestamptz
) RETURNS SETOF zakops.execution_checkpoints LANGUAGE plpgsql AS $$
DECLARE
    v_correlation uuid;
    v_sequence integer;
BEGIN
    SELECT correlation_id INTO v_correlation FROM zakops.actions WHERE action_id = p_action_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;  -- no row: the caller reports the unknown action
    END IF;
    SELECT COALESCE(MAX(sequence_number) + 1, 0) INTO v_sequence
      FROM zakops.execution_checkpoints WHERE action_id = p_action_id;
    RETURN QUERY
    INSERT INTO zakops.execution_checkpoints (
        id, correlation_id, action_id, run_id, checkpoint_name, checkpoint_type, checkpoint_data,
        sequence_number, status, expires_at, created_at
    ) VALUES (
        gen_random_uuid(), COALESCE(p_correlation_id, v_correlation, p_derived_correlation_id), p_action_id,
        p_run_id, p_name, p_type, p_data, v_sequence, 'active', p_expires_at, p_created_at
    )
    RETURNING *;
END
$$
"""
DROP = "DROP FUNCTION IF EXISTS hitl_checkpoint_save(varchar, varchar, varchar, jsonb, uuid, uuid, uuid, timestamptz, timestamptz)"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("zakops", "0002_hitl_indexes")]
    operations = [migrations.RunPython(create, drop)]
