"""Reads of the approval workflow: the queue and an action's requests."""

import functools
import hashlib
import operator
from dataclasses import dataclass

from django.db.models import Case, Count, IntegerField, Max, Min, Prefetch, Q, Subquery, Value, When
from django.utils import timezone

from accounts.selectors import Actor
from approvals.deciders import actor_refusal
from approvals.models import OPEN_STATES, QUEUE_CHANNEL, ApprovalRequest, RequestState
from common import statements
from common.changes import feed
from common.keyed_cache import KeyedCache
from zakops.models import Action, ActionStatus, DealEvent, RiskLevel

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
    return ApprovalRequest.objects.select_related("claim").filter(action_id=action_id).order_by("-round").first()


# The fields of a request the engine's poll answers, in the answer's order: declared once.
# The poll's SQL reads these columns (as_seen() reads no other), and ApprovalRequestSerializer
# and its written-out form (approvals.api.serializers) answer these fields, `id` as `request_id`.
POLLED_FIELDS = (
    "id", "action_id", "round", "state", "risk_level", "score", "reasons", "recommendations", "matched_rules",
    "requires_approval", "requested_by", "expires_at", "decided_by", "decided_by_name", "decided_at", "reason",
    "escalated_by", "escalated_by_name", "escalated_at", "escalation_reason", "created_at", "votes",
)
# And what the poll answers from them: `votes` (how many approvals so far, from the votes
# column) and `approvals_needed` (from the level).
POLLED_COUNTS = ("votes", "approvals_needed")
_POLLED = statements.ModelRow(ApprovalRequest, fields=POLLED_FIELDS)
_POLL_SQL = (
    f"SELECT {_POLLED.columns} FROM {ApprovalRequest._meta.db_table}"
    " WHERE action_id = %s ORDER BY round DESC LIMIT 1"
)


def approval_polled_stored(*, action_id: str) -> ApprovalRequest | None:
    """The action's latest request, as the engine's poll reads it: the latest round, no
    claim, only the fields the poll answers (the others are deferred). Fixed SQL, prepared
    on PostgreSQL, rather than the ORM or raw(): building the query, or raw()'s description
    of the columns, cost more than the database spends on it."""
    return _POLLED.one(_POLL_SQL, [action_id])


# The engine polls far more often than anything changes: each action's latest request is
# kept in this process, until the change feed says one of the action's requests changed
# (approvals 0008: the NOTIFY names the action; the services announce it in this process
# too). Bypassed while the feed can not hear every change at once (the listener down,
# behind a pooler). The expiry is not kept: as_seen() computes it at each read.
POLL_CACHE_SIZE = 10_000  # actions; an answer is a few KB at most
_polls = KeyedCache(QUEUE_CHANNEL, size=POLL_CACHE_SIZE)


def approval_polled(*, action_id: str) -> ApprovalRequest | None:
    """approval_polled_stored's request, from this process's memory while nothing of the
    action changed. Shared between calls: read it, never modify it."""
    return _polls.get(action_id, _stored)


def _stored(action_id: str) -> ApprovalRequest | None:
    return approval_polled_stored(action_id=action_id)


def action_held_pending(*, action_id: str) -> bool:
    """Whether the action is PENDING_APPROVAL: with no open request, the engine set it so
    by itself and the poll adopts it (approvals.services.requests.approval_adopt)."""
    return Action.objects.filter(pk=action_id, status=ActionStatus.PENDING_APPROVAL).exists()


# --- the reviewer pages ---------------------------------------------------------------

PAGE_SIZE = 25
TABS = ("pending", "quarantined", "decided")
DECIDED_STATES = (RequestState.APPROVED, RequestState.REJECTED, RequestState.EXPIRED, RequestState.CANCELLED)
PRECEDENT_SHOWN = 5
PRECEDENT_COUNTED = 200  # the counts cover this many of the latest decisions of the type


SORTS = ("risk", "deadline", "age")  # the first is the default
CLAIM_FILTERS = ("unclaimed", "mine")


@dataclass(frozen=True)
class QueueFilters:
    tab: str = "pending"
    risk_level: str = ""
    action_type: str = ""  # a prefix: DOCUMENT finds every DOCUMENT.*
    deal: str = ""  # part of the deal's id or name
    q: str = ""
    decidable: bool = False  # only the requests the reviewer may decide
    claim: str = ""  # "unclaimed": nobody is reviewing it; "mine": the reviewer is
    sort: str = "risk"
    page: int = 1


@dataclass
class QueuePage:
    rows: list
    counts: dict  # risk level -> number of requests in the tab with the other filters applied
    total: int
    page: int
    pages: int


def _tab_requests(tab: str):
    if tab == "decided":
        # People's decisions, expiries and cancels; automatic approvals are not news.
        return ApprovalRequest.objects.filter(state__in=DECIDED_STATES).exclude(requires_approval=False, decided_by__isnull=True, state=RequestState.APPROVED)
    return ApprovalRequest.objects.filter(state=RequestState.QUARANTINED if tab == "quarantined" else RequestState.PENDING)


def _filtered(requests, filters: QueueFilters):
    # Every text filter is a contains or starts-with lookup on a text column, which the
    # ORM escapes (% and _ are plain characters); the form refuses NUL and over-long text.
    if filters.action_type:
        requests = requests.filter(action_type__istartswith=filters.action_type)
    if filters.deal:
        requests = requests.filter(
            Q(action__deal__deal_id__icontains=filters.deal) | Q(action__deal__display_name__icontains=filters.deal)
            | Q(action__deal__canonical_name__icontains=filters.deal)
        )
    if filters.q:
        text = filters.q
        requests = requests.filter(
            Q(action__title__icontains=text) | Q(action__summary__icontains=text) | Q(action__action_id__icontains=text)
            | Q(action_type__icontains=text) | Q(requested_by__icontains=text) | Q(action__deal__display_name__icontains=text)
        )
    return requests


def _live_claim(now) -> Q:
    return Q(claim__isnull=False, claim__expires_at__gt=now)


def _for_reviewer(requests, filters: QueueFilters, reviewer: Actor, now):
    """The filters that depend on who is looking. "I can decide" leaves out what
    approvals.deciders refuses this reviewer, as far as the database can tell: the
    role's levels, their own requests (four-eyes, by exact address or id; the page drops
    the rare row whose requester is spelled otherwise) and requests someone else is
    reviewing."""
    if filters.claim == "unclaimed":
        requests = requests.exclude(_live_claim(now))
    elif filters.claim == "mine":
        requests = requests.filter(_live_claim(now), claim__reviewer_id=reviewer.actor_id)
    if filters.decidable:
        if actor_refusal(reviewer):
            return requests.none()
        if reviewer.role != "admin":
            requests = requests.exclude(risk_level=RiskLevel.CRITICAL).exclude(state=RequestState.QUARANTINED)
        own = Q(requested_by__iexact=reviewer.name) | Q(action__created_by__iexact=reviewer.name)
        own |= Q(requested_via__iexact=reviewer.name)
        if reviewer.actor_id:
            own |= Q(requested_via_id=reviewer.actor_id) | Q(action__operator_id=reviewer.actor_id)
            own |= Q(requested_by__iexact=str(reviewer.actor_id))
        requests = requests.exclude(own).exclude(_live_claim(now) & ~Q(claim__reviewer_id=reviewer.actor_id))
    return requests


_ORDER = {
    "risk": ("-severity", "created_at", "pk"),
    "deadline": ("expires_at", "-severity", "pk"),
    "age": ("created_at", "pk"),
}


def queue_order(tab: str, sort: str = "risk") -> tuple[str, ...]:
    """A tab's order: by risk (critical first, then the longest waiting), deadline or
    age; the decided tab newest decision first. The queue's pages and the detail page's
    next and previous read the same order."""
    return ("-decided_at", "-pk") if tab == "decided" else _ORDER.get(sort, _ORDER["risk"])


def review_queue(*, filters: QueueFilters, reviewer: Actor, per_page: int = PAGE_SIZE) -> QueuePage:
    """One page of a queue tab: critical first, then the longest waiting (an index read:
    `approvals_queue_order`), or by deadline or age; the decided tab newest decision first;
    with the counts per risk level. Two queries, whatever the page size."""
    requests = _filtered(_tab_requests(filters.tab), filters)
    if filters.tab != "decided":
        requests = _for_reviewer(requests, filters, reviewer, timezone.now())
    counts = {level: 0 for level in ("critical", "high", "medium", "low")}
    counts.update(requests.order_by().values("risk_level").annotate(n=Count("pk")).values_list("risk_level", "n"))
    if filters.risk_level:
        requests = requests.filter(risk_level=filters.risk_level)
        total = counts.get(filters.risk_level, 0)
    else:
        total = sum(counts.values())
    pages = max(1, -(-total // per_page))
    page = min(max(filters.page, 1), pages)
    ordered = requests.order_by(*queue_order(filters.tab, filters.sort))
    start = (page - 1) * per_page
    # Each row's claim comes in the same query (a LEFT JOIN): "Ana is reviewing" costs none.
    rows = list(ordered.select_related("action", "action__deal", "claim")[start:start + per_page])
    return QueuePage(rows=rows, counts=counts, total=total, page=page, pages=pages)


# The queue's version: it changes when any request is opened, decided, quarantined or
# expired, and when an open one passes its deadline. Computed from the database (so every
# app server gives the same answer) but only when the change feed says a request changed
# or the next deadline passed: a reviewer's refresh of an unchanged queue costs no query.
_queue_changes = feed.subscribe(QUEUE_CHANNEL)
_queue_version: tuple = (None, None)  # (version, next deadline)


@dataclass(frozen=True)
class Neighbours:
    """The action ids before and after a request in a queue as filtered (None at an end),
    and the page of the queue the request is on."""

    previous: str | None
    next: str | None
    page: int = 1


def _beyond(order: tuple[str, ...], request: ApprovalRequest, *, after: bool) -> Q:
    """The rows after (or before) `request` in `order`: a keyset, as the index reads it."""
    terms, equal = [], Q()
    for name in order:
        field = name.lstrip("-")
        value = getattr(request, field)
        lookup = "gt" if name.startswith("-") != after else "lt"
        terms.append(equal & Q(**{f"{field}__{lookup}": value}))
        equal &= Q(**{field: value})
    return functools.reduce(operator.or_, terms)


def queue_neighbours(
    *, filters: QueueFilters, request: ApprovalRequest, reviewer: Actor, per_page: int = PAGE_SIZE
) -> Neighbours:
    """The requests next to `request` in the queue as `filters` show it to `reviewer`,
    across pages; a request no longer in that queue (decided meanwhile) keeps its place
    among the others. Three queries."""
    requests = _filtered(_tab_requests(filters.tab), filters).exclude(pk=request.pk)
    if filters.tab != "decided":
        requests = _for_reviewer(requests, filters, reviewer, timezone.now())
    if filters.risk_level:
        requests = requests.filter(risk_level=filters.risk_level)
    order = queue_order(filters.tab, filters.sort)
    reverse = tuple(name[1:] if name.startswith("-") else f"-{name}" for name in order)
    ids = requests.values_list("action_id", flat=True)
    before = requests.filter(_beyond(order, request, after=False))
    return Neighbours(
        previous=ids.filter(_beyond(order, request, after=False)).order_by(*reverse).first(),
        next=ids.filter(_beyond(order, request, after=True)).order_by(*order).first(),
        page=before.count() // per_page + 1,
    )


def queue_version() -> str:
    global _queue_version
    version, next_deadline = _queue_version
    now = timezone.now()
    if _queue_changes.changed() or version is None or (next_deadline is not None and now >= next_deadline):
        open_requests = ApprovalRequest.objects.filter(state__in=OPEN_STATES)
        try:
            found = open_requests.aggregate(
                n=Count("pk"), last=Max("updated_at"), overdue=Count("pk", filter=Q(expires_at__lte=now)),
                next=Min("expires_at", filter=Q(expires_at__gt=now)),
            )
            last_decided = ApprovalRequest.objects.aggregate(last=Max("decided_at"))["last"]
        except Exception:
            _queue_changes.missed()
            raise
        raw = f"{found['n']}:{found['overdue']}:{found['last']}:{last_decided}"
        version = hashlib.sha256(raw.encode()).hexdigest()[:16]
        _queue_version = (version, found["next"])
    return version


@dataclass
class Precedent:
    approved: int
    rejected: int
    latest: list


def precedent_for(*, action_type: str, exclude_action_id: str) -> Precedent:
    """How people decided earlier requests of this action type: the counts over the latest
    PRECEDENT_COUNTED decisions (recent practice, and a read that does not grow with
    history), and the latest few."""
    decided = ApprovalRequest.objects.filter(
        action_type=action_type, state__in=(RequestState.APPROVED, RequestState.REJECTED), decided_by__isnull=False
    ).exclude(action_id=exclude_action_id)
    recent = decided.order_by("-decided_at").values("pk")[:PRECEDENT_COUNTED]
    counts = dict(
        ApprovalRequest.objects.filter(pk__in=Subquery(recent)).order_by().values("state").annotate(n=Count("pk")).values_list("state", "n")
    )
    latest = list(decided.select_related("action").order_by("-decided_at")[:PRECEDENT_SHOWN])
    return Precedent(approved=counts.get("approved", 0), rejected=counts.get("rejected", 0), latest=latest)


def action_history(*, action_id: str) -> list[DealEvent]:
    """The action's audit trail in zakops.deal_events, newest first."""
    return list(DealEvent.objects.filter(details__action_id=action_id).order_by("-created_at", "-sequence_number"))


def review_action(*, action_id: str) -> Action | None:
    return Action.objects.select_related("deal").filter(pk=action_id).first()


@dataclass(frozen=True)
class RequestCounts:
    open: dict  # (state, risk_level) -> requests waiting, every pair present
    expired: int


def request_counts() -> RequestCounts:
    """Requests waiting for a person (not past their deadline) by state and risk level, and
    how many expired; for the metrics. Two queries, on the (state, expires_at) index."""
    now = timezone.now()
    waiting = {(state, level): 0 for state in OPEN_STATES for level in ("low", "medium", "high", "critical")}
    rows = (
        ApprovalRequest.objects.filter(state__in=OPEN_STATES, expires_at__gt=now)
        .values_list("state", "risk_level")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for state, level, n in rows:
        waiting[(state, level)] = waiting.get((state, level), 0) + n
    return RequestCounts(open=waiting, expired=ApprovalRequest.objects.filter(state=RequestState.EXPIRED).count())


ENGINE_ACTION_FIELDS = ("action_id", "action_type", "status", "title", "deal_id", "inputs", "risk_level", "updated_at")


def action_for_engine(*, action_id: str) -> Action | None:
    """The action as the engine must run it: its inputs as stored now (a reviewer's edits
    included once approved) and its status."""
    return Action.objects.only(*ENGINE_ACTION_FIELDS).filter(pk=action_id).first()
