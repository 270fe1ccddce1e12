"""Checkpoint metrics, counted after commit in each process."""

from prometheus_client import Counter

CHECKPOINT_SAVES = Counter("hitl_checkpoint_saves", "Checkpoints saved.")
CHECKPOINT_RESUMES = Counter("hitl_checkpoint_resumes", "Checkpoints resumed.")
