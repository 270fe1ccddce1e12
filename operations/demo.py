"""The demo data set behind `seed_demo`: deals, actions of every catalogue type, reviewers.

The demo lives under ids no real row has (deals `DEMO-…`, actions `ACT-DEMO-…`, people
`@operations.demo`, the `demo-action-engine` service account and its token) and only ever
creates rows:
a deal, action, checkpoint or person that is already there, demo or not, is left as it
is, so a second run changes nothing and a demo row someone edited keeps the edit. An action's approval request,
decision and checkpoints are written only together with the action. Demo passwords and
the demo engine's API token are derived from the SECRET_KEY, so they stay the same from run
to run and are not guessable without it.
"""

import base64
import hashlib
import hmac
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken
from accounts.selectors import actor_of, user_actor_id, user_role
from accounts.services import TOKEN_PREFIX, api_token_create, operator_upsert, service_account_ensure, token_hash
from approvals.models import ApprovalRequest
from approvals.services.decisions import approval_decide
from approvals.services.requests import approval_request
from zakops.catalogue import ACTION_CATALOGUE
from zakops.models import Action, ActionStatus, CheckpointStatus, Deal, ExecutionCheckpoint

DEMO_DEAL_PREFIX = "DEMO-"
DEMO_ACTION_PREFIX = "ACT-DEMO-"
DEMO_SERVICE_ACCOUNT = "demo-action-engine"
DEMO_TOKEN_NAME = "demo token (seed_demo prints it; for trying the API, not for production)"

DEMO_DEALS = (
    ("DEMO-0001", "Acme Industrial Holdings", "Acme Industrial", "diligence"),
    ("DEMO-0002", "Borealis Software GmbH", "Borealis", "loi"),
    ("DEMO-0003", "Cobalt Logistics LLC", "Cobalt Logistics", "inbound"),
    ("DEMO-0004", "Delta Marine Services", "Delta Marine", "closed"),
    ("DEMO-0005", "Evergreen Health Partners", "Evergreen Health", "negotiation"),
)

DEMO_PEOPLE = (
    ("admin@operations.demo", "admin", "Ada Admin"),
    ("admin2@operations.demo", "admin", "Abe Admin"),  # a critical approval takes two admins
    ("operator@operations.demo", "operator", "Olu Operator"),
    ("operator2@operations.demo", "operator", "Oona Operator"),
    ("viewer@operations.demo", "viewer", "Vic Viewer"),
)

# What the printed curl sends as the engine: a critical request (two admins approve it) for
# an action id of the demo's own, so that a later seed still finds a demo-only database.
DEMO_TRY_REQUEST = {
    "action_id": "ACT-DEMO-TRY-0001",
    "action_type": "COMMUNICATION.SEND_EMAIL",
    "deal_id": "DEMO-0002",
    "inputs": {"to": "cfo@seller-example.com", "subject": "Signed LOI"},
}

# Statuses of the demo actions that went through the engine before (no approval request).
_SETTLED = (ActionStatus.COMPLETED, ActionStatus.QUEUED, ActionStatus.FAILED, ActionStatus.READY)
# Decisions taken on some of the waiting actions, so the queue has history:
# action -> (who, decision, reason).
DEMO_DECISIONS = {
    "ACT-DEMO-0003": ("admin@operations.demo", "reject", "The deal is closed; no more outreach."),
    "ACT-DEMO-0007": ("operator@operations.demo", "approve", "NDA terms match the standard template."),
    "ACT-DEMO-0011": ("operator@operations.demo", "quarantine", "Transfer amount is far above this deal's escrow."),
}


class DemoSeedRefused(Exception):
    """The database holds deals or actions that are not demo data."""

    def __init__(self, *, deals: list[str], actions: list[str]):
        self.deals, self.actions = deals, actions
        found = [f"{kind} {_listed(ids)}" for kind, ids in (("deals", deals), ("actions", actions)) if ids]
        super().__init__(f"this database holds rows that are not demo data: {'; '.join(found)}")


_SHOWN = 3  # ids named in a refusal, per table


def _listed(ids: list[str]) -> str:
    return ", ".join(ids[:_SHOWN]) + (" and more" if len(ids) > _SHOWN else "")


def demo_foreign_rows() -> tuple[list[str], list[str]]:
    """Ids of a few deals and actions that are not demo data (empty lists when none)."""
    deals = Deal.objects.exclude(deal_id__startswith=DEMO_DEAL_PREFIX).order_by("pk")
    actions = Action.objects.exclude(action_id__startswith=DEMO_ACTION_PREFIX).order_by("pk")
    return (
        list(deals.values_list("pk", flat=True)[: _SHOWN + 1]),
        list(actions.values_list("pk", flat=True)[: _SHOWN + 1]),
    )


def demo_password(email: str) -> str:
    digest = hmac.new(settings.SECRET_KEY.encode(), f"demo:{email}".encode(), hashlib.sha256).digest()
    return "demo-" + base64.b32encode(digest[:10]).decode().lower()


def demo_token() -> str:
    """The demo engine's API token: the same on every run, derived from the SECRET_KEY."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"demo-token:{DEMO_SERVICE_ACCOUNT}".encode(), hashlib.sha256)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def _engine_token(engine) -> str | None:
    """The demo engine's token, created on the first run; None once it was revoked (a
    revoked demo token stays revoked)."""
    raw = demo_token()
    token = ApiToken.objects.filter(key_hash=token_hash(raw)).first()
    if token is None:
        api_token_create(user=engine, name=DEMO_TOKEN_NAME, raw=raw)
    elif token.revoked_at is not None:
        return None
    return raw


def _people() -> tuple[dict, list]:
    """The demo reviewers by email, and (email, role, password) to sign in with; the password
    is None when it is no longer the demo one. A reviewer that already exists keeps its
    role, name and password."""
    User = get_user_model()
    users, sign_in = {}, []
    for email, role, name in DEMO_PEOPLE:
        password = demo_password(email)
        user = User.objects.filter(username=email).first()
        if user is None:
            user = operator_upsert(email=email, role=role, password=password, name=name)
        elif not check_password(password, user.password):  # no setter: never re-hashes, never writes
            password = None
        users[email] = user
        sign_in.append((email, user_role(user) or "no role", password))
    return users, sign_in


def _deals() -> list[Deal]:
    deals = []
    for deal_id, canonical, display, stage in DEMO_DEALS:
        deal, _ = Deal.objects.get_or_create(
            deal_id=deal_id, defaults={"canonical_name": canonical, "display_name": display, "stage": stage}
        )
        deals.append(deal)
    return deals


def _actions(deals: list[Deal]) -> list[Action]:
    """The demo actions created by this run (those already there are left as they are)."""
    base = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    created_now = []
    for index, entry in enumerate(ACTION_CATALOGUE):
        # Two of each type: one waiting (when the type needs approval), one settled.
        for copy in range(2):
            number = index * 2 + copy + 1
            waiting = copy == 0 and entry.requires_approval
            # Waiting actions go through approval_request below, which sets their status.
            status = ActionStatus.READY if waiting else _SETTLED[number % len(_SETTLED)]
            deal = deals[number % len(deals)] if number % 6 else None  # some actions have no deal
            action, created = Action.objects.get_or_create(
                action_id=f"{DEMO_ACTION_PREFIX}{number:04d}",
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
            if created:
                created_now.append(action)
    return created_now


def _approvals(actions: list[Action], users: dict, engine) -> int:
    """Approval requests for the new READY actions, through the real workflow, and a few
    decisions."""
    count = 0
    for action in actions:
        if action.status != ActionStatus.READY:
            continue
        approval_request(
            action_id=action.action_id, action_type=action.action_type, requester=engine,
            requested_by="deal-assistant@operations.demo",
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


def _checkpoints(actions: list[Action], operator_id) -> None:
    """The demo checkpoints of the new actions; an action that was already there may have
    checkpoints of its own, and numbering fixed ones in among them would break its sequence."""
    now = timezone.now()
    new_ids = {action.action_id for action in actions}
    per_action: dict[str, int] = {}
    for action_id, name, kind, status, data in DEMO_CHECKPOINTS:
        sequence = per_action.get(action_id, 0)
        per_action[action_id] = sequence + 1
        if action_id not in new_ids:
            continue
        ExecutionCheckpoint.objects.create(
            action_id=action_id,
            checkpoint_name=name,
            sequence_number=sequence,
            correlation_id=uuid.uuid5(uuid.NAMESPACE_URL, f"zakops-demo:{action_id}"),
            checkpoint_type=kind,
            checkpoint_data=data,
            status=status,
            expires_at=now - timedelta(hours=1) if status == CheckpointStatus.EXPIRED else now + timedelta(days=2),
            resumed_at=now - timedelta(hours=3) if status == CheckpointStatus.RESUMED else None,
            resumed_by=operator_id if status == CheckpointStatus.RESUMED else None,
            created_at=now - timedelta(hours=6 - sequence),
        )


@transaction.atomic
def demo_seed(*, force: bool = False) -> dict:
    """Create the demo data that is missing; returns the demo rows in the database, with the
    sign-in details and the demo engine's API token (None once revoked).

    Raises DemoSeedRefused, before writing anything, when the database holds deals or
    actions that are not demo data, unless `force`.
    """
    if not force:
        deals, actions = demo_foreign_rows()
        if deals or actions:
            raise DemoSeedRefused(deals=deals, actions=actions)
    users, sign_in = _people()
    engine = service_account_ensure(name=DEMO_SERVICE_ACCOUNT)
    token = _engine_token(engine)
    new_actions = _actions(_deals())
    _approvals(new_actions, users, actor_of(engine))
    _checkpoints(new_actions, user_actor_id(users["operator@operations.demo"]))
    demo_actions = Action.objects.filter(action_id__startswith=DEMO_ACTION_PREFIX)
    return {
        "people": sign_in,
        "token": token,
        "deals": Deal.objects.filter(deal_id__startswith=DEMO_DEAL_PREFIX).count(),
        "actions": demo_actions.count(),
        "checkpoints": ExecutionCheckpoint.objects.filter(action__in=demo_actions).count(),
        "requests": ApprovalRequest.objects.filter(action__in=demo_actions).count(),
    }
