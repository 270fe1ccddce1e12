"""This app's own table beside zakops.execution_checkpoints (which gets no new columns)."""

from django.db import models


class SequenceFloor(models.Model):
    """The lowest sequence number an action's next checkpoint may take: one more than the
    highest that retention has deleted (checkpoints.services.checkpoints_delete_old).

    A save takes the greater of this and the highest existing number + 1, so a number
    deleted by retention is never handed out again. Only retention writes here, and only
    ever raises a floor. No foreign key: the actions table is the backend's.
    """

    action_id = models.CharField(max_length=50, primary_key=True)
    next_number = models.IntegerField()

    class Meta:
        # Named in hitl_checkpoint_save (checkpoints migration 0002), which reads it.
        db_table = "checkpoints_sequence_floor"

    def __str__(self):
        return f"{self.action_id} from #{self.next_number}"
