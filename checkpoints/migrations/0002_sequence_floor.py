"""Sequence numbers deleted by retention stay taken.

Adds the table checkpoints_sequence_floor (checkpoints.models.SequenceFloor), which
retention raises, and replaces hitl_checkpoint_save so that the next number is the greater
of the highest existing one + 1 and the action's floor. Both are read in one statement, so
from one snapshot: retention deletes rows and raises the floor in one transaction, and a
save sees either both or neither.
"""

from importlib import import_module

from django.db import migrations, models

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
    -- checkpoints_sequence_floor is Django's table, found through the search_path (public).
    SELECT GREATEST(
        COALESCE((SELECT MAX(sequence_number) + 1 FROM zakops.execution_checkpoints WHERE action_id = p_action_id), 0),
        COALESCE((SELECT next_number FROM checkpoints_sequence_floor WHERE action_id = p_action_id), 0)
    ) INTO v_sequence;
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


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def restore_previous(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(import_module("checkpoints.migrations.0001_save_function").CREATE)


class Migration(migrations.Migration):
    dependencies = [("checkpoints", "0001_save_function")]
    operations = [
        migrations.CreateModel(
            name="SequenceFloor",
            fields=[
                ("action_id", models.CharField(max_length=50, primary_key=True, serialize=False)),
                ("next_number", models.IntegerField()),
            ],
            options={
                "db_table": "checkpoints_sequence_floor",
            },
        ),
        migrations.RunPython(create, restore_previous),
    ]
