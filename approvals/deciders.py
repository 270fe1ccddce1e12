"""Who may decide an approval request (SPEC §3): roles, risk level and four-eyes.

The workflow's services, the reviewer pages and the notifications read the same rules,
so that whoever is told a request waits for them is exactly who may decide it.
"""

import unicodedata
import uuid
from urllib.parse import unquote

from accounts.selectors import Actor
from approvals.models import ApprovalRequest, RequestState
from zakops.models import Action, RiskLevel

MAILTO = "mailto:"


def _plain(text: str) -> str:
    # NFKC folds full-width and other compatibility forms (ａ, ＠, ＜) into plain ones;
    # format characters (zero-width space and joiners, word joiner, BOM, soft hyphen:
    # category Cf) are invisible on screen, so they never tell two addresses apart.
    text = unicodedata.normalize("NFKC", text)
    return "".join(char for char in text if unicodedata.category(char) != "Cf").strip()


def normalised_address(value) -> str:
    """One spelling for an e-mail address or an operator id however a person or a system
    wrote it: `Name <addr>`, `mailto:addr`, full-width letters, invisible characters,
    spaces and case all give the same text. Four-eyes compares only these."""
    text = _plain(str(value or ""))
    opening = text.rfind("<")
    if opening != -1 and text.endswith(">"):
        text = text[opening + 1 : -1].strip()
    if text[: len(MAILTO)].casefold() == MAILTO:
        text = _plain(unquote(text[len(MAILTO) :].split("?", 1)[0]))
    try:
        return str(uuid.UUID(text))  # an operator id, however its hex is grouped or cased
    except ValueError:
        # casefold() is lower() and more (ß is ss): two spellings a person reads as the
        # same address count as the same person; a refusal is the safe side to err on.
        return text.casefold()


def is_requester(actor: Actor, request: ApprovalRequest, action: Action) -> bool:
    """Four-eyes: whether `actor` asked for the action (the request's `requested_by`, the
    action's `created_by` and `operator_id`) or sent its request (`requested_via`, by name
    and id). Every value is compared as `normalised_address` spells it."""
    mine = {normalised_address(actor.name)} | ({normalised_address(actor.actor_id)} if actor.actor_id else set())
    theirs = (
        request.requested_by, request.requested_via, action.created_by, request.requested_via_id, action.operator_id,
    )
    return bool(mine & ({normalised_address(value) for value in theirs if value} - {""}))


def actor_refusal(actor: Actor) -> str | None:
    """The rules that refuse a caller whatever the request."""
    if actor.kind != "user":
        return "Service accounts can not decide approvals: a person must."
    if actor.role not in ("operator", "admin"):
        return "Viewers can not decide approvals: it needs the operator or admin role."
    if actor.actor_id is None:
        return (
            f"{actor.name} has no ZakOps operator record (an account made with createsuperuser has none): "
            f"run `manage.py create_operator {actor.name} --role admin`, or give it a role in admin."
        )
    return None


def decision_refusal(*, actor: Actor, request: ApprovalRequest, action: Action) -> str | None:
    """Why `actor` may not decide `request` (SPEC §3), or None when they may."""
    refusal = actor_refusal(actor)
    if refusal:
        return refusal
    if actor.role != "admin" and request.risk_level == RiskLevel.CRITICAL:
        return "Only an admin can decide a critical request."
    if actor.role != "admin" and request.state == RequestState.QUARANTINED:
        return "Only an admin can decide a quarantined request."
    if is_requester(actor, request, action):
        return "You requested this action, so someone else must decide it (four-eyes)."
    return None
