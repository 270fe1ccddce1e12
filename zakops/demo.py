"""The demo data set behind `seed_demo`: deals, actions of every catalogue type, reviewers.

Idempotent: fixed ids, update-or-create everywhere. Demo passwords are derived from the
SECRET_KEY, so they stay the same from run to run and are not guessable without it.
"""

import base64
import hashlib
import hmac
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.selectors import actor_of
from accounts.services import operator_upsert, service_account_ensure
from approvals.models import ApprovalRequest
from approvals.services import approval_decide, approval_request
from zakops.catalogue import ACTION_CATALOGUE
from zakops.models import Action, ActionStatus, CheckpointStatus, Deal, ExecutionCheckpoint

DEMO_DEALS = (
    ("DL-0001", "Acme Industrial Holdings", "Acme Industrial", "diligence"),
    ("DL-0002", "Borealis Software GmbH", "Borealis", "loi"),
    ("DL-0003", "Cobalt Logistics LLC", "Cobalt Logistics", "inbound"),
    ("DL-0004", "Delta Marine Services", "Delta Marine", "closed"),
    ("DL-0005", "Evergreen Health Partners", "Evergreen Health", "negotiation"),
)

DEMO_PEOPLE = (
    ("admin@zakops.demo", "admin", "Ada Admin"),
    ("operator@zakops.demo", "operator", "Olu Operator"),
    ("operator2@zakops.demo", "operator", "Oona Operator"),
    ("viewer@zakops.demo", "viewer", "Vic Viewer"),
)

# Statuses of the demo actions that went through the engine before (no approval request).
_SETTLED = (ActionStatus.COMPLETED, ActionStatus.QUEUED, ActionStatus.FAILED, ActionStatus.READY)
# Decisions taken on some of the waiting actions, so the queue has history:
# action -> (who, decision, reason).
DEMO_DECISIONS = {
    "ACT-DEMO-0003": ("admin@zakops.demo", "reject", "The deal is closed; no more outreach."),
    "ACT-DEMO-0007": ("operator@zakops.demo", "approve", "NDA terms match the standard template."),
    "ACT-DEMO-0011": ("operator@zakops.demo", "quarantine", "Transfer amount is far above this deal's escrow."),
}


def demo_password(email: str) -> str:
    digest = hmac.new(settings.SECRET_KEY.encode(), f"demo:{email}".encode(), hashlib.sha256).digest()
    return "demo-" + base64.b32encode(digest[:10]).decode().lower()


def _deals() -> list[Deal]:
    deals = []
    for deal_id, canonical, display, stage in DEMO_DEALS:
        deal, _ = Deal.objects.update_or_create(
            deal_id=deal_id, defaults={"canonical_name": canonical, "display_name": display, "stage": stage}
        )
        deals.append(deal)
    return deals


def _actions(deals: list[Deal]) -> list[Action]:
    base = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    actions = []
    for index, entry in enumerate(ACTION_CATALOGUE):
        # Two of each type: one waiting (when the type needs approval), one settled.
        for copy in range(2):
            number = index * 2 + copy + 1
            waiting = copy == 0 and entry.requires_approval
            # Waiting actions go through approval_request below, which sets their status.
            status = ActionStatus.READY if waiting else _SETTLED[number % len(_SETTLED)]
            deal = deals[number % len(deals)] if number % 6 else None  # some actions have no deal
            action, _ = Action.objects.get_or_create(  # an existing row keeps its state
                action_id=f"ACT-DEMO-{number:04d}",
                defaults={
                    "deal": deal,
                    "capability_id": entry.capability_id,
                    "action_type": entry.action_type,
                    "title": entry.title + (f" ({deal.display_name})" if deal else ""),
                    "summary": f"Demo action: {entry.title.lower()}.",
                    "status": status,
                    "created_by": "agent:deal-assistant",
                    "source": "chat" if number % 2 else "system",
                    "risk_level": None if waiting else entry.level,
                    "requires_human_review": None if waiting else entry.requires_approval,
                    "inputs": entry.inputs,
                    "retry_count": 0,
                    "max_retries": 3,
                    "audit_trail": [],
                    "created_at": base + timedelta(minutes=17 * number),
                    "updated_at": base + timedelta(minutes=17 * number),
                },
            )
            actions.append(action)
    return actions


def _approvals(actions: list[Action], users: dict) -> int:
    """Approval requests for the waiting actions, through the real workflow, and a few
    decisions. Actions that already have a request are left as they are."""
    engine = actor_of(service_account_ensure(name="action-engine"))
    requested = set(ApprovalRequest.objects.values_list("action_id", flat=True))
    count = 0
    for action in actions:
        if action.status != ActionStatus.READY or action.action_id in requested:
            continue
        approval_request(
            action_id=action.action_id, action_type=action.action_type, requester=engine,
            requested_by="deal-assistant@zakops.demo",
        )
        count += 1
        if action.action_id in DEMO_DECISIONS:
            email, decision, reason = DEMO_DECISIONS[action.action_id]
            approval_decide(action_id=action.action_id, actor=actor_of(users[email]), decision=decision, reason=reason)
    return count


# (action, name, type, status, data) — the checkpoints an engine would leave behind.
DEMO_CHECKPOINTS = (
    ("ACT-DEMO-0005", "before_approval", "approval_gate", "active", {"step": 2, "draft_id": "loi-2201"}),
    ("ACT-DEMO-0006", "after_document_generation", "state", "resumed", {"step": 3, "pages": 4}),
    ("ACT-DEMO-0006", "before_send", "approval_gate", "active", {"step": 4}),
    ("ACT-DEMO-0011", "awaiting_bank_confirmation", "external_call", "expired", {"request_id": "tx-99"}),
    ("ACT-DEMO-0013", "enrichment_page_1", "state", "resumed", {"cursor": "p1", "rows": 250}),
    ("ACT-DEMO-0013", "enrichment_page_2", "state", "active", {"cursor": "p2", "rows": 250}),
    ("ACT-DEMO-0001", "before_send", "approval_gate", "active", {"step": 1, "subject": "Next steps"}),
)


def _checkpoints(operator_id) -> int:
    now = timezone.now()
    per_action: dict[str, int] = {}
    for action_id, name, kind, status, data in DEMO_CHECKPOINTS:
        sequence = per_action.get(action_id, 0)
        per_action[action_id] = sequence + 1
        ExecutionCheckpoint.objects.update_or_create(
            action_id=action_id,
            checkpoint_name=name,
            sequence_number=sequence,
            defaults={
                "correlation_id": uuid.uuid5(uuid.NAMESPACE_URL, f"zakops-demo:{action_id}"),
                "checkpoint_type": kind,
                "checkpoint_data": data,
                "status": status,
                "expires_at": now - timedelta(hours=1) if status == CheckpointStatus.EXPIRED else now + timedelta(days=2),
                "resumed_at": now - timedelta(hours=3) if status == CheckpointStatus.RESUMED else None,
                "resumed_by": operator_id if status == CheckpointStatus.RESUMED else None,
                "created_at": now - timedelta(hours=6 - sequence),
            },
        )
    return len(DEMO_CHECKPOINTS)


@transaction.atomic
def demo_seed() -> dict:
    """Create or refresh the demo data; returns what was seeded, with the sign-in details."""
    people, users = [], {}
    for email, role, name in DEMO_PEOPLE:
        password = demo_password(email)
        users[email] = operator_upsert(email=email, role=role, password=password, name=name)
        people.append((email, role, password))
    deals = _deals()
    actions = _actions(deals)
    _approvals(actions, users)
    checkpoints = _checkpoints(users["operator@zakops.demo"].account.actor_id)
    return {
        "people": people, "deals": len(deals), "actions": len(actions), "checkpoints": checkpoints,
        "requests": ApprovalRequest.objects.filter(action__action_id__startswith="ACT-DEMO-").count(),
    }
