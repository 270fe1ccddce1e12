"""Reads of the approval workflow: the queue and an action's requests."""

from django.db.models import Case, IntegerField, Prefetch, Value, When

from approvals.models import OPEN_STATES, ApprovalRequest
from zakops.models import Action

SEVERITY_ORDER = Case(
    When(risk_level="critical", then=Value(0)),
    When(risk_level="high", then=Value(1)),
    When(risk_level="medium", then=Value(2)),
    When(risk_level="low", then=Value(3)),
    default=Value(4),
    output_field=IntegerField(),
)


def approval_queue(*, status: str, risk_level: str | None = None, deal_id: str | None = None, limit: int = 50) -> list[Action]:
    """Actions in `status`, critical first, then oldest first, each with its open request
    (`open_requests`, a list of at most one). Two queries, whatever the limit."""
    actions = Action.objects.filter(status=status)
    if risk_level:
        actions = actions.filter(risk_level=risk_level)
    if deal_id:
        actions = actions.filter(deal_id=deal_id)
    return list(
        actions.annotate(severity=SEVERITY_ORDER)
        .order_by("severity", "created_at", "action_id")
        .prefetch_related(
            Prefetch(
                "approval_requests",
                queryset=ApprovalRequest.objects.filter(state__in=OPEN_STATES),
                to_attr="open_requests",
            )
        )[:limit]
    )


def approval_latest(*, action_id: str) -> ApprovalRequest | None:
    return ApprovalRequest.objects.filter(action_id=action_id).order_by("-round").first()
