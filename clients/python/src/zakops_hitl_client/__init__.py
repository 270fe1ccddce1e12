"""The ZakOps HITL API client: assess risk, request approval, wait for the decision,
save and resume checkpoints. `zakops_hitl_client.langgraph` holds the LangGraph gate;
`verify_webhook` checks a decision the server pushed to the engine's webhook, and
`zakops_hitl_client.receiver` serves such pushes to wake a resumer."""

__version__ = "0.1.0"

from zakops_hitl_client._core import Retry  # noqa: E402
from zakops_hitl_client.client import AsyncHitlClient, HitlClient  # noqa: E402
from zakops_hitl_client.errors import (  # noqa: E402
    BadRequest,
    Conflict,
    DecisionTimeout,
    Forbidden,
    HitlError,
    IdempotencyMismatch,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from zakops_hitl_client.models import Approval, Assessment, Checkpoint, Decision, Resumed  # noqa: E402
from zakops_hitl_client.webhooks import DecidedEvent, WebhookVerificationError, verify_webhook  # noqa: E402

__all__ = [
    "__version__", "AsyncHitlClient", "HitlClient", "Retry",
    "Approval", "Assessment", "Checkpoint", "Decision", "Resumed",
    "HitlError", "BadRequest", "ValidationError", "Unauthorized", "Forbidden", "NotFound", "Conflict",
    "PayloadTooLarge", "IdempotencyMismatch", "Unavailable", "DecisionTimeout",
    "verify_webhook", "DecidedEvent", "WebhookVerificationError",
]
