"""The reviewer pages (SPEC §6): the live queue, the detail page, decisions in place and in
bulk. Thin: they parse, call one selector or service, and render a page or the partial
htmx asked for. Every rule is the services'; a button is offered only where the
service would allow it, and the service refuses anyway."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from accounts.selectors import actor_of
from approvals import selectors
from approvals.deciders import approval_needs_reason, approvals_needed, decision_refusal
from approvals.detail_page import QueueNav, edit_to_confirm, editor_for, inputs_json, queue_nav
from approvals.forms import BulkDecisionForm, DecisionForm, QueueFilterForm
from approvals.models import ApprovalRequest, Claim
from approvals.services.claims import claim_release, claim_renew, claim_take
from approvals.services.decisions import DecisionOutcome, approval_decide, approvals_decide_many
from checkpoints.selectors import checkpoint_for_action, checkpoints_for_action
from common.errors import Conflict, HitlError, NotFound

# How often an open detail page renews its reviewer's claim, and so how soon it shows
# that someone took the review over (a claim lasts HITL_CLAIM_MINUTES, default 10).
CLAIM_RENEW_SECONDS = 15


@dataclass
class Row:
    """A request as a reviewer sees it: what they may do with it, and why not."""

    request: ApprovalRequest
    refusal: str | None
    overdue: bool
    claim: Claim | None = None  # someone else's live claim
    viewer: str = ""  # who is looking: the actor's name

    @property
    def approvals_needed(self) -> int:
        return approvals_needed(self.request.risk_level)

    @property
    def action(self):
        return self.request.action

    @property
    def can_decide(self) -> bool:
        return self.request.is_open and not self.overdue and self.refusal is None

    @property
    def can_quarantine(self) -> bool:
        return self.can_decide and self.request.state == "pending"

    @property
    def voted(self) -> bool:
        return any(vote["name"] == self.viewer for vote in self.request.votes)

    @property
    def decisions(self) -> list[str]:
        """The decisions offered: a voter is not offered Approve again."""
        if not self.can_decide:
            return []
        offered = ["reject", "quarantine"] if self.can_quarantine else ["reject"]
        return offered if self.voted else ["approve", *offered]

    @property
    def approve_reason(self) -> str:
        """Why an approval needs a reason ("critical", "quarantined"), or empty."""
        return approval_needs_reason(self.request)

    @property
    def approver_kind(self) -> str:
        """Who may give the next approval, as the queue says it: "admin" or "reviewer"."""
        return "admin" if self.request.risk_level == "critical" or self.request.state == "quarantined" else "reviewer"

    @property
    def may_claim(self) -> bool:
        """The open page claims the request for its reviewer: someone who may decide it,
        nobody else reviewing it, and not a voter waiting for the next approver."""
        return self.can_decide and self.claim is None and not self.voted


def _others_claim(request: ApprovalRequest, actor, now) -> Claim | None:
    """The live claim of someone other than `actor` on the request, read with the request."""
    try:
        claim = request.claim
    except Claim.DoesNotExist:
        return None
    return claim if claim.is_live(now) and claim.reviewer_id != actor.actor_id else None


def _row(request: ApprovalRequest, actor, now) -> Row:
    refusal = decision_refusal(actor=actor, request=request, action=request.action) if request.is_open else None
    claim = _others_claim(request, actor, now) if request.is_open else None
    return Row(
        request=request, refusal=refusal, overdue=request.is_open and request.expires_at <= now, claim=claim, viewer=actor.name,
    )


def _query_string(filters: selectors.QueueFilters, **changes) -> str:
    values = {"tab": filters.tab, "risk_level": filters.risk_level, "action_type": filters.action_type,
              "deal": filters.deal, "q": filters.q, "decidable": "1" if filters.decidable else "",
              "claim": filters.claim, "sort": filters.sort, "page": filters.page, **changes}
    defaults = {"tab": "pending", "page": 1, "sort": selectors.SORTS[0]}
    return urlencode({k: v for k, v in values.items() if v not in ("", None) and defaults.get(k) != v})


@require_GET
@vary_on_headers("HX-Request")
def queue(request):
    """The queue is the home page. Asked by htmx with the version it shows (`v`), an
    unchanged queue answers 204: no body, and no query beyond the session's."""
    if request.htmx and request.GET.get("v") and request.GET["v"] == selectors.queue_version():
        return HttpResponse(status=204)
    actor = actor_of(request.user)
    form = QueueFilterForm(request.GET)
    filters = form.filters(can_see_quarantined=actor.role == "admin")
    page = selectors.review_queue(filters=filters, reviewer=actor)
    now = timezone.now()
    rows = [_row(r, actor, now) for r in page.rows]
    if filters.decidable:  # what the database could not tell: a requester spelled otherwise
        rows = [row for row in rows if row.can_decide]
    context = {
        "actor": actor,
        "form": form,
        "filters": filters,
        "page": page,
        "rows": rows,
        "version": selectors.queue_version(),
        "query": _query_string(filters),
        "query_without_page": _query_string(filters, page=None),
        "prev_query": _query_string(filters, page=page.page - 1) if page.page > 1 else None,
        "next_query": _query_string(filters, page=page.page + 1) if page.page < page.pages else None,
        "tab_queries": {tab: _query_string(filters, tab=tab, page=None, risk_level="") for tab in selectors.TABS},
        "levels": [
            {"name": level, "count": count, "query": _query_string(filters, risk_level=level, page=None)}
            for level, count in page.counts.items()
        ],
        "filtered": any((filters.risk_level, filters.action_type, filters.deal, filters.q, filters.decidable, filters.claim)),
        "can_bulk": actor.role in ("operator", "admin") and filters.tab != "decided",
    }
    template = "approvals/queue.html#results" if request.htmx else "approvals/queue.html"
    return render(request, template, context)


def _queue_nav(request, actor, latest: ApprovalRequest | None) -> QueueNav:
    """Back to the queue on the page that holds the request, its row asked for."""
    filters = QueueFilterForm(request.GET).filters(can_see_quarantined=actor.role == "admin")
    near = selectors.queue_neighbours(filters=filters, request=latest, reviewer=actor) if latest else None
    back = _query_string(filters, selected=latest.action_id if latest else None, page=near.page if near else None)
    return queue_nav(query=_query_string(filters, page=None), back_query=back, near=near)


def _detail_context(request, action_id: str, *, message: str = "", message_kind: str = "", editor: dict | None = None) -> dict:
    """The detail page's context; `editor` (draft, form) and `confirm` fill the panel's
    edit as a decision left it."""
    action = selectors.review_action(action_id=action_id)
    if action is None:
        raise Http404(f"No action {action_id}.")
    actor = actor_of(request.user)
    latest = selectors.approval_latest(action_id=action_id)
    if latest is not None:
        latest.action = action  # already read, with its deal
    return {
        "actor": actor,
        "action": action,
        "row": _row(latest, actor, timezone.now()) if latest else None,
        "seen": latest.as_seen() if latest else None,
        "inputs_json": inputs_json(action.inputs),
        "editor": editor_for(action, **(editor or {})),
        "nav": _queue_nav(request, actor, latest),
        "checkpoints": list(checkpoints_for_action(action_id=action_id, include_inactive=True).defer("checkpoint_data")),
        "history": selectors.action_history(action_id=action_id),
        "precedent": selectors.precedent_for(action_type=action.action_type, exclude_action_id=action_id),
        "message": message,
        "message_kind": message_kind,
        "claim_renew_seconds": CLAIM_RENEW_SECONDS,
    }


@require_GET
def detail(request, action_id):
    """The detail page. Reading it changes nothing: the page's script claims the request
    for its reviewer by a POST as it opens (see `claim`)."""
    return render(request, "approvals/detail.html", _detail_context(request, action_id))


def _panel(request, action_id, *, message: str = "", kind: str = "", **extra) -> HttpResponse:
    """The panel in its new state, with the History out of band (a decision or a take-over
    made in place is news there too); the whole page when htmx did not ask."""
    context = _detail_context(request, action_id, message=message, message_kind=kind, editor=extra.pop("editor", None))
    context.update(extra)
    if not request.htmx:
        return render(request, "approvals/detail.html", context)
    panel = render_to_string("approvals/detail.html#panel", context, request=request)
    history = render_to_string("approvals/detail.html#history", {**context, "oob": True}, request=request)
    return HttpResponse(panel + history)


@require_POST
def claim(request, action_id):
    """The detail page claims its request as it opens, then renews the claim while it
    stays open (`renew=1`); both answer 204 while the claim is the reviewer's. When it is
    not (someone took it over, or the request was decided), the panel is answered in its
    new state, with what happened, to replace the one on the page. `takeover=1` is the
    panel's confirmed Take over button."""
    actor = actor_of(request.user)
    if request.POST.get("takeover") == "1":
        try:
            if request.POST.get("confirm") != "on":
                raise HitlError("Confirm that you take over the review before taking it over.")
            claim_take(action_id=action_id, actor=actor, takeover=True)
        except HitlError as exc:
            return _panel(request, action_id, message=exc.detail, kind="conflict" if isinstance(exc, Conflict) else "refused")
        return _panel(request, action_id, message="You are reviewing this request now.", kind="decided")
    try:
        if request.POST.get("renew") == "1":
            claim_renew(action_id=action_id, actor=actor)
        else:
            claim_take(action_id=action_id, actor=actor)
    except NotFound:
        raise Http404(f"No approval request for action {action_id}.") from None
    except HitlError as exc:
        response = _panel(request, action_id, message=exc.detail, kind="notice")
        # Into the panel, though the claim's own request swaps nothing when it succeeds.
        response["HX-Retarget"] = "#decision-panel"
        response["HX-Reswap"] = "outerHTML"
        return response
    return HttpResponse(status=204)


@require_POST
def release(request, action_id):
    """The page is left (`navigator.sendBeacon`): the reviewer's claim ends."""
    try:
        claim_release(action_id=action_id, actor=actor_of(request.user))
    except HitlError:
        pass  # nothing of theirs to release: nothing to say to a page that is gone
    return HttpResponse(status=204)


@require_POST
def decide(request, action_id):
    """One decision, from a queue row (`where=row`) or the detail page's panel. Answers
    with what the reviewer must see in place: the row gone (decided), the row telling who
    decided first (conflict), or the panel in its new state. An approval with edited
    inputs from the panel first answers the panel showing the edit's diff, to confirm."""
    form = DecisionForm(request.POST)
    where = "row" if request.POST.get("where") == "row" else "panel"
    if where == "panel" and form.is_valid():
        data = form.cleaned_data
        if request.POST.get("step") == "edit":  # back from the diff, to change the edit
            return _panel(request, action_id, editor={"draft": data["inputs"]}, reason_draft=data["reason"])
        if data["decision"] == "approve" and data["inputs"] is not None and not data["confirmed"]:
            action = selectors.review_action(action_id=action_id)
            if action is None:
                raise Http404(f"No action {action_id}.")
            return _panel(request, action_id, confirm=edit_to_confirm(action, data["inputs"], data["reason"]))
    actor = actor_of(request.user)
    outcome = _decision_outcome(form, action_id, actor)
    if where == "row":
        context = {"outcome": outcome, "decision": form.data.get("decision")}
        if outcome.outcome == "decided" and outcome.request.is_open:  # a vote: the row stays, saying so
            context.update(row=_row(outcome.request, actor, timezone.now()), can_bulk=True)
        response = render(request, "approvals/_row_outcome.html", context)
        if outcome.outcome in ("refused", "missing", "claimed"):
            response["HX-Reswap"] = "none"  # the row stays as it was; the message says why
        return response
    refused = outcome.outcome == "refused"
    return _panel(
        request, action_id, message=outcome.detail, kind=outcome.outcome, editor={"form": form} if refused else None,
        reason_draft=form.data.get("reason", "") if refused and form.data.get("decision") == "approve" else "",
        reason_error=refused and form.data.get("decision") == "approve" and outcome.detail.startswith("reason"),
    )


def _decision_outcome(form: DecisionForm, action_id: str, actor) -> DecisionOutcome:
    if not form.is_valid():
        return DecisionOutcome(action_id, "refused", next(iter(form.errors.values()))[0])
    data = form.cleaned_data
    try:
        decided = approval_decide(
            action_id=action_id, actor=actor, decision=data["decision"], reason=data["reason"], inputs=data["inputs"]
        )
    except HitlError as exc:
        return DecisionOutcome.failed(action_id, exc)
    return DecisionOutcome.decided(action_id, decided)


@require_POST
def bulk(request):
    """Approve or reject the selected rows with one reason: each its own transaction, and
    each row's outcome listed."""
    form = BulkDecisionForm(request.POST)
    if not form.is_valid():
        return render(request, "approvals/_bulk_result.html", {"errors": form.non_field_errors() or form.errors})
    data = form.cleaned_data
    try:
        outcomes = approvals_decide_many(
            actor=actor_of(request.user), decisions=[(action_id, data["decision"], data["reason"]) for action_id in data["action_ids"]]
        )
    except HitlError as exc:  # a caller who may decide nothing
        return render(request, "approvals/_bulk_result.html", {"errors": [exc.detail]})
    return render(request, "approvals/_bulk_result.html", {"outcomes": outcomes, "decision": data["decision"]})


@require_GET
def checkpoint_data(request, action_id, checkpoint_id):
    try:
        checkpoint = checkpoint_for_action(action_id=action_id, checkpoint_id=checkpoint_id)
    except NotFound:
        raise Http404("No such checkpoint.") from None
    data = inputs_json(checkpoint.checkpoint_data)
    return render(request, "approvals/_checkpoint_data.html", {"data": data})

