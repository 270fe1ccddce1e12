"""Who may decide an approval request (SPEC §3): roles, risk level and four-eyes.

The workflow's services, the reviewer pages and the notifications read the same rules,
so that whoever is told a request waits for them is exactly who may decide it.
"""

import re
import unicodedata
import uuid
from email.utils import getaddresses
from urllib.parse import unquote

from accounts.selectors import Actor
from approvals.models import ApprovalRequest, RequestState
from approvals.models import approvals_needed as approvals_needed  # the request reads it too (the poll answers it)
from zakops.models import Action, RiskLevel

MAILTO = "mailto:"


def _plain(text: str) -> str:
    # NFKC folds full-width and other compatibility forms (ａ, ＠, ＜) into plain ones;
    # format characters (zero-width space and joiners, word joiner, BOM, soft hyphen:
    # category Cf) are invisible on screen, so they never tell two addresses apart.
    text = unicodedata.normalize("NFKC", text)
    return "".join(char for char in text if unicodedata.category(char) != "Cf").strip()


# An address-like token in free text: what stands around an @ up to a space or a delimiter.
_ADDRESS_TOKEN = re.compile(r"[^\s<>,;()\[\]]+@[^\s<>,;()\[\]]+")
_PUNCTUATION = "\"'`.,;:!?"


def _address_spelling(token: str) -> str:
    """One address as four-eyes compares it: no quotes around it or its local part, no
    punctuation after it, no trailing dot on its domain, case folded."""
    token = token.strip().strip(_PUNCTUATION)
    local, at, domain = token.rpartition("@")
    if at:
        token = local.replace('"', "").replace("'", "") + "@" + domain.rstrip(_PUNCTUATION)
    # casefold() is lower() and more (ß is ss): two spellings a person reads as the same
    # address count as the same person; a refusal is the safe side to err on.
    return token.casefold()


def normalised_addresses(value) -> set[str]:
    """Every spelling of a person in `value`, however a person or a system wrote it:
    `Name <addr> (comment)`, `mailto:addr`, quotes, a list of several addresses (each
    counts), punctuation after, full-width letters, invisible characters, spaces and case
    all give the same texts. An operator id gives its UUID. Four-eyes compares only these."""
    text = _plain(str(value or ""))
    if not text:
        return set()
    if text[: len(MAILTO)].casefold() == MAILTO:
        text = _plain(unquote(text[len(MAILTO) :].split("?", 1)[0]))
    try:
        return {str(uuid.UUID(text))}  # an operator id, however its hex is grouped or cased
    except ValueError:
        pass
    found = {_address_spelling(address) for _, address in getaddresses([text]) if "@" in address}
    found |= {_address_spelling(token) for token in _ADDRESS_TOKEN.findall(text)}
    return (found or {_address_spelling(text)}) - {""}


def is_requester(actor: Actor, request: ApprovalRequest, action: Action) -> bool:
    """Four-eyes: whether `actor` asked for the action (the request's `requested_by`, the
    action's `created_by` and `operator_id`) or sent its request (`requested_via`, by name
    and id). Every value is compared as `normalised_addresses` spells it; a value naming
    several people names each of them."""
    mine = normalised_addresses(actor.name) | (normalised_addresses(actor.actor_id) if actor.actor_id else set())
    theirs = (
        request.requested_by, request.requested_via, action.created_by, request.requested_via_id, action.operator_id,
    )
    return bool(mine & set().union(*(normalised_addresses(value) for value in theirs if value)))


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


def approval_needs_reason(request: ApprovalRequest) -> str:
    """Why approving `request` needs a reason, like a reject: "critical" or "quarantined";
    empty when it does not."""
    if request.state == RequestState.QUARANTINED:
        return "quarantined"
    return "critical" if request.risk_level == RiskLevel.CRITICAL else ""
