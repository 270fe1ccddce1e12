"""Benchmark of the reviewer pages (the queue, its refresh, the detail page), in process and over HTTP. It prints figures and asserts nothing.

The data: 100,000 actions in zakops.actions over 90 days, 2,000 of them PENDING_APPROVAL
with an open request (mixed risk levels), decided requests behind half of the others
(most decided by people, some approved by the system), seven in ten actions on one of
1,000 deals, and the deal_events the services write for each request (requested, then
decided). The pending actions the detail page opens have a longer history and five
checkpoints of about 2 KB each. All bulk-inserted, as bench/approvals.py does, then
VACUUM (ANALYZE). An operator is signed in (a session, as in a browser).

1. In this process through Django's test client (production settings): p50/p95 ms, this
   process's CPU, and the SQL queries of each call (their count must not depend on the
   number of rows):
   (a) the queue page, `GET /` (25 rows a page); and the count on other pages, on the
       decided tab and with 100 rows a page, to show it does not grow with the rows;
   (b) the refresh of a changed queue, `GET /?v=<stale>` with `HX-Request: true` (the
       results partial): as most reviewers get it (the version already known to the
       process), and as the first one after a change gets it (the version recomputed);
   (c) the refresh of an unchanged queue, `GET /?v=<current>` with `HX-Request: true`:
       a 204 with no body (target: at most two queries, the session and its user);
   (d) the detail page, `GET /actions/<id>/`.
   Then what 50 reviewers polling every 4 s cost, computed from (b) and (c): refreshes
   per second, server time and CPU per second, queries per second.
2. Under the app server (granian, production settings, 2 worker processes sharing the 2
   cores with wrk and PostgreSQL), with wrk: the unchanged refresh with one connection per
   worker (latency) and with 16 (the most refreshes per second the workers serve), and the
   queue page with one connection per worker. Then 50 reviewers' refreshes paced at 12.5
   per second (one request every 80 ms, each on one of the 50 reviewers' sessions in
   turn), with the CPU the app server's processes (its main process and workers) and
   PostgreSQL's backends used meanwhile, read from /proc: the measured cost of 50
   reviewers.

The database is a scratch PostgreSQL one, created and dropped here (postgres://postgres@
127.0.0.1:5432, trust auth, via createdb/dropdb). With --database-url (or DATABASE_URL)
that database is used as it is; the bench's actions, requests, events, checkpoints,
deals, reviewers and their sessions are deleted afterwards.

    .venv/bin/python bench/pages.py [--seconds 10] [--workers 2] [--reviewers 50]
"""

import argparse
import functools
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections import Counter
from datetime import timedelta
from pathlib import Path

import _common as common  # bench/_common.py: this script's folder is first on sys.path

TARGET_UNCHANGED_QUERIES = 2  # the session and its user
TARGET_PAGE_P95_MS = 50.0  # the API queue's stated target (README, bench/approvals.py), for comparison

PREFIX = "bench-page-"  # the bench's actions
DEAL_PREFIX = "BPG-"  # and deals (a deal id has at most 20 characters)
ENGINE_NAME = "bench-engine"  # who requested the actions
REVIEWER_EMAIL = "bench-page-reviewer-{n}@bench.example.com"
DECIDERS = [(uuid.UUID(int=n + 1), f"bench-decider-{n}@bench.example.com") for n in range(8)]
STALE = "0000000000000000"  # a version no queue has
QUEUE_PATH = "/"
REFRESH_PATH = "/?v={version}"
DETAIL_PATH = "/actions/{action_id}/"
HX = {"HTTP_HX_REQUEST": "true"}

ACTION_TYPES = ("COMMUNICATION.DRAFT_EMAIL", "DOCUMENT.GENERATE_LOI", "COMMUNICATION.SEND_EMAIL", "DEAL.UPDATE_STAGE")



# --- the database ----------------------------------------------------------------------


def database(args):
    return common.postgres_database(args, f"hitl_bench_pages_{os.getpid()}")


def settings_static_root() -> str:
    from django.conf import settings

    return str(settings.STATIC_ROOT)


def sql(statement: str, params=()) -> list:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def bench_rows_delete() -> None:
    like = [f"{PREFIX}%"]
    common.approval_requests_delete(like[0])
    sql("DELETE FROM zakops.deal_events WHERE details->>'action_id' LIKE %s", like)
    sql("DELETE FROM zakops.execution_checkpoints WHERE action_id LIKE %s", like)
    sql("DELETE FROM zakops.actions WHERE action_id LIKE %s", like)
    sql("DELETE FROM zakops.deals WHERE deal_id LIKE %s", [f"{DEAL_PREFIX}%"])


def people_delete(session_keys: list[str]) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session

    from zakops.models import Operator

    emails = [REVIEWER_EMAIL.format(n=n) for n in range(1, 1000)]
    Session.objects.filter(session_key__in=session_keys).delete()
    get_user_model().objects.filter(username__in=emails).delete()
    Operator.objects.filter(email__in=emails).delete()



def event(action, request, state: str, when, decider: tuple | None):
    """The deal_events row a transition writes (approvals.services.events.transition_record)."""
    from approvals.services.events import EVENT_SOURCE, EVENTS
    from zakops.models import DealEvent

    decider_id, name = decider or (None, ENGINE_NAME)
    kind = "user" if decider else "service"
    return DealEvent(
        deal_id=action.deal_id, event_type=EVENTS[state], source=EVENT_SOURCE, actor=name,
        actor_id=str(decider_id) if decider_id else None, actor_type=kind, created_at=when,
        details={"action_id": action.action_id, "request_id": str(request.id), "round": request.round,
                 "state": state, "risk_level": request.risk_level, "reason": request.reason if decider else "",
                 "decider": name, "decider_id": str(decider_id) if decider_id else None, "decider_type": kind},
    )


def seed(args) -> list[str]:
    """The data (see the top of this file); the ids of the pending actions the detail page
    opens, which have the longer history and the checkpoints."""
    from django.db import transaction
    from django.utils import timezone

    from approvals.models import ApprovalRequest
    from zakops.models import Action, Deal, DealEvent, ExecutionCheckpoint

    rng = random.Random(3)
    now = timezone.now()
    deals = [Deal(deal_id=f"{DEAL_PREFIX}{n:05d}", canonical_name=f"Bench Target {n} Ltd",
                  display_name=f"Bench Target {n}", stage="loi", created_at=now, updated_at=now)
             for n in range(args.deals)]
    pending_at = set(rng.sample(range(args.actions), args.pending))
    actions, requests, events = [], [], []
    for i in range(args.actions):
        created = now - timedelta(seconds=rng.uniform(0, 90 * 86400))
        is_pending = i in pending_at
        level = common.weighted(rng, common.PENDING_LEVELS) if is_pending else rng.choice(list(common.SCORES))
        status = "PENDING_APPROVAL" if is_pending else common.weighted(rng, common.DONE_STATUSES)
        action_type = rng.choice(ACTION_TYPES)
        deal = rng.choice(deals).deal_id if deals and rng.random() < 0.7 else None
        action = Action(
            action_id=f"{PREFIX}{i:06d}", action_type=action_type, title=f"{action_type.split('.')[1].title()} {i}",
            summary=f"Generated action {i} for the reviewer pages' benchmark.", deal_id=deal, status=status,
            risk_level=level, requires_human_review=True, created_by=ENGINE_NAME, source="system",
            inputs={"to": f"contact{i}@seller.example", "subject": f"Deal {i}", "body": "x" * 200},
            created_at=created, updated_at=created,
        )
        actions.append(action)
        if not (is_pending or i % 2 == 0):
            continue
        system = not is_pending and status != "REJECTED" and rng.random() < 0.1  # approved automatically
        state = "pending" if is_pending else ("rejected" if status == "REJECTED" else "approved")
        decided_at = None if is_pending else created + timedelta(minutes=rng.uniform(5, 600))
        decider = None if is_pending or system else rng.choice(DECIDERS)
        request = ApprovalRequest(
            id=uuid.UUID(int=rng.getrandbits(128), version=4), action_id=action.action_id, action_type=action_type,
            round=1, state=state, risk_level=level, score=common.SCORES[level], reasons=[f"{level} by rule {action_type}"],
            score_breakdown=[{"label": f"rule {action_type}", "points": common.SCORES[level]}],
            requires_approval=not system, requested_by=ENGINE_NAME, requested_via=ENGINE_NAME,
            expires_at=now + timedelta(days=3) if is_pending else created + timedelta(days=1),
            decided_at=decided_at, decided_by=decider[0] if decider else None,
            decided_by_name=decider[1] if decider else ("zakops-hitl" if system else ""),
            reason="" if is_pending else ("Looks right" if state == "approved" else "Wrong recipient"),
        )
        requests.append(request)
        events.append(event(action, request, "pending", created, None))
        if not is_pending:
            events.append(event(action, request, state, decided_at, decider))

    targets = sorted(a.action_id for a in actions if a.status == "PENDING_APPROVAL")[: args.detail_actions]
    by_id = {a.action_id: a for a in actions}
    checkpoints = []
    for action_id in targets:
        action = by_id[action_id]
        for n in range(args.history):
            events.append(DealEvent(deal_id=action.deal_id, event_type="action.step", source="zakops-engine",
                                    actor=ENGINE_NAME, actor_type="service", created_at=action.created_at,
                                    details={"action_id": action_id, "step": n, "note": f"step {n} done"}))
        for n in range(5):
            data = {"step": n, "messages": [{"role": "assistant", "content": "y" * 180, "n": k} for k in range(10)]}
            checkpoints.append(ExecutionCheckpoint(
                correlation_id=action.correlation, action_id=action_id, checkpoint_name=f"step-{n}",
                checkpoint_data=data, sequence_number=n, created_at=action.created_at,
            ))
    with transaction.atomic():
        Deal.objects.bulk_create(deals, batch_size=2000)
        Action.objects.bulk_create(actions, batch_size=2000)
        ApprovalRequest.objects.bulk_create(requests, batch_size=2000)
        DealEvent.objects.bulk_create(events, batch_size=2000)
        ExecutionCheckpoint.objects.bulk_create(checkpoints, batch_size=2000)
    sql("VACUUM (ANALYZE) zakops.deals, zakops.actions, approvals_approvalrequest, zakops.deal_events, "
        "zakops.execution_checkpoints")
    return targets


# --- the reviewers ---------------------------------------------------------------------


def reviewers(count: int) -> tuple[list, list[str]]:
    """`count` operators, each signed in once: a test client for each, and their session keys."""
    from django.test import Client

    from accounts.services import operator_upsert

    warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)
    clients, keys = [], []
    for n in range(1, count + 1):
        user = operator_upsert(email=REVIEWER_EMAIL.format(n=n), role="operator", password=None,
                               name=f"Bench Reviewer {n}")
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        clients.append(client)
        keys.append(client.session.session_key)
    return clients, keys


def queue_version_warm() -> str:
    """The queue's version, known to this process: on PostgreSQL that needs the change
    listener connected (until then every ask recomputes it), and the changes it heard of
    on connecting (the seed's) taken in."""
    from approvals import selectors
    from approvals.models import QUEUE_CHANNEL
    from common.changes import feed

    selectors.queue_version()
    deadline = time.monotonic() + 15
    while not feed.listening(QUEUE_CHANNEL) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not feed.listening(QUEUE_CHANNEL):
        raise common.BenchError("the change listener did not connect within 15 s; the 204 path would recompute")
    time.sleep(0.2)  # notifications already sent arrive
    selectors.queue_version()
    return selectors.queue_version()


# --- timing in this process ------------------------------------------------------------


class Statements:
    """A Django execute wrapper: per timed call, the statements run, their nanoseconds
    (execute to rows back) and their SQL."""

    def __init__(self):
        self.per_call = []  # one {"n", "ns", "sql"} per timed call

    def __call__(self, execute, statement, params, many, context):
        start = time.perf_counter_ns()
        result = execute(statement, params, many, context)
        if self.per_call:
            call = self.per_call[-1]
            call["n"] = call.get("n", 0) + 1
            call["ns"] = call.get("ns", 0) + time.perf_counter_ns() - start
            call.setdefault("sql", []).append(statement)
        return result


def queries_of(call) -> list[str]:
    """The SQL statements one call of `call()` runs."""
    from django.db import connection

    statements = Statements()
    statements.per_call.append({})
    with connection.execute_wrapper(statements):
        call()
    return statements.per_call[-1].get("sql", [])


def plans(label: str, call) -> list:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement one call of `call()` runs, with its
    parameters: [(execution ms, statement, plan lines)]; printed, with the slowest's plan."""
    from django.db import connection

    captured = []

    def capture(execute, statement, params, many, context):
        captured.append((statement, params))
        return execute(statement, params, many, context)

    with connection.execute_wrapper(capture):
        call()
    found = []
    for statement, params in captured:
        if not statement.lstrip().upper().startswith("SELECT"):
            continue
        lines = [row[0] for row in sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params)]
        ms = next((float(line.split()[2]) for line in lines if line.startswith("Execution Time")), float("nan"))
        found.append((ms, statement, lines))
    print(f"\n{label}, EXPLAIN (ANALYZE, BUFFERS) of each statement, run once more: "
          + "; ".join(f"{table_of(statement)} {ms:.2f} ms" for ms, statement, _ in found))
    ms, statement, lines = max(found, key=lambda item: item[0])
    print(f"  the slowest, {table_of(statement)} ({ms:.2f} ms):")
    print("\n".join(f"    | {line[:150]}{'…' if len(line) > 150 else ''}" for line in lines
                    if "Sort Key" not in line and "Presorted Key" not in line))
    return found


def timed(call, targets: list, warmup: int) -> dict:
    """p50/p95/mean ms of `call(target)` (the first `warmup` untimed), this process's CPU
    ms per call, the queries per call and the time in them, and the last call's SQL."""
    cpu = []

    def measured(target):
        start = time.process_time()
        call(target)
        cpu.append(time.process_time() - start)

    statements = Statements()
    figures = common.summarize(common.time_calls(measured, targets, warmup, statements))
    counts = [c.get("n", 0) for c in statements.per_call]
    figures.update(
        cpu_ms=statistics.fmean(cpu[warmup:]) * 1000,
        queries=round(statistics.median(counts)), queries_min=min(counts), queries_max=max(counts),
        in_sql=statistics.median(c.get("ns", 0) for c in statements.per_call) / 1e6,
        sql=statements.per_call[-1].get("sql", []),
    )
    return figures


def table_of(statement: str) -> str:
    """A statement, short: its verb and the table it reads first."""
    words = statement.replace('"', "").split()
    table = next((words[i + 1] for i, word in enumerate(words) if word.upper() == "FROM" and i + 1 < len(words)), "?")
    flags = [flag for flag in ("JOIN", "GROUP BY", "COUNT(", "MAX(") if flag in statement.upper()]
    return f"{words[0].upper()} {table}{' (' + ', '.join(f.strip('(').lower() for f in flags) + ')' if flags else ''}"


def report(label: str, figures: dict) -> None:
    spread = (f"{figures['queries']}" if figures["queries_min"] == figures["queries_max"]
              else f"{figures['queries']} (median; {figures['queries_min']}-{figures['queries_max']})")
    print(
        f"{label}: {figures['calls']:,} calls\n"
        f"  p50 {figures['p50']:.2f} ms, p95 {figures['p95']:.2f} ms, mean {figures['mean']:.2f} ms; "
        f"this process's CPU {figures['cpu_ms']:.2f} ms a call (mean)\n"
        f"  SQL queries a call: {spread}, {figures['in_sql']:.2f} ms in them (median)\n"
        f"  they are: {'; '.join(table_of(s) for s in figures['sql'])}"
    )


def rows_in(content: bytes) -> int:
    return content.count(b'<tr id="row-')


def checker(client, path: str, status: int, headers: dict, rows: int | None = None, empty: bool = False):
    """A call that GETs `path` and raises BenchError unless the answer is as expected."""

    def get(_=None):
        response = client.get(path, **headers)
        if response.status_code != status:
            location = response.get("Location", "")
            raise common.BenchError(f"GET {path} answered {response.status_code} {location}, not {status}")
        if empty and response.content:
            raise common.BenchError(f"GET {path} answered {len(response.content)} bytes, not an empty body")
        if rows is not None and rows_in(response.content) != rows:
            raise common.BenchError(f"GET {path} showed {rows_in(response.content)} rows, not {rows}")
        get.last = response

    return get


def in_process(args, clients, detail_ids: list[str]) -> dict:
    from approvals import selectors
    from approvals.models import QUEUE_CHANNEL
    from common.changes import feed

    client = clients[0]
    results = {}
    version = queue_version_warm()
    rows = min(selectors.PAGE_SIZE, args.pending)
    targets = [None] * (args.warmup + args.calls)

    common.heading(f"1a. GET {QUEUE_PATH}: the queue page, signed in as an operator")
    page = checker(client, QUEUE_PATH, 200, {}, rows=rows)
    results["page"] = timed(page, targets, args.warmup)
    report(f"{rows} rows a page, {args.pending:,} pending", results["page"])
    print(f"  the page: {len(page.last.content):,} bytes")
    p95 = results["page"]["p95"]
    print(f"  the API queue's target, for comparison: p95 < {TARGET_PAGE_P95_MS:g} ms: "
          f"{common.verdict(p95 < TARGET_PAGE_P95_MS)}")
    pages = -(-args.pending // selectors.PAGE_SIZE)
    counts = {
        "page 2": len(queries_of(checker(client, "/?page=2", 200, {}))),
        f"page {pages} (the last)": len(queries_of(checker(client, f"/?page={pages}", 200, {}))),
        "the decided tab": len(queries_of(checker(client, "/?tab=decided", 200, {}))),
        "a risk level": len(queries_of(checker(client, "/?risk_level=high", 200, {}))),
    }
    original = selectors.review_queue
    selectors.review_queue = functools.partial(original, per_page=100)  # the view calls selectors.review_queue
    try:
        counts["100 rows a page"] = len(queries_of(checker(client, QUEUE_PATH, 200, {}, rows=min(100, args.pending))))
    finally:
        selectors.review_queue = original
    results["page"]["other_counts"] = counts
    print("  SQL queries elsewhere, one request each: " + ", ".join(f"{name} {n}" for name, n in counts.items()))

    def page_after_change():
        feed.mark(QUEUE_CHANNEL)  # the version's two statements too
        page()

    results["page"]["plans"] = plans("the queue page after a change", page_after_change)

    common.heading(f"1b. GET {REFRESH_PATH.format(version=STALE)} with HX-Request: the refresh of a changed queue")
    stale = checker(client, REFRESH_PATH.format(version=STALE), 200, HX, rows=rows)
    results["stale"] = timed(stale, targets, args.warmup)
    report("(i) as most reviewers get it: the version known to this process", results["stale"])
    print(f"  the partial: {len(stale.last.content):,} bytes")

    def first_after_change(target):
        feed.mark(QUEUE_CHANNEL)  # what the NOTIFY of a change does: the next ask recomputes the version
        stale(target)

    results["changed"] = timed(first_after_change, targets, args.warmup)
    report("(ii) as the first after a change gets it: the version recomputed", results["changed"])

    common.heading(f"1c. GET {REFRESH_PATH.format(version='<current>')} with HX-Request: the refresh of an unchanged queue")
    version = queue_version_warm()
    unchanged = checker(client, REFRESH_PATH.format(version=version), 204, HX, empty=True)
    results["unchanged"] = timed(unchanged, [None] * (args.warmup + args.refresh_calls), args.warmup)
    report("204, no body", results["unchanged"])
    queries = results["unchanged"]["queries_max"]
    print(f"  target: at most {TARGET_UNCHANGED_QUERIES} queries (the session and its user): "
          f"{queries} at most: {common.verdict(queries <= TARGET_UNCHANGED_QUERIES)}")

    common.heading(f"1d. GET {DETAIL_PATH.format(action_id='<id>')}: the detail page")
    rng = random.Random(5)
    detail_targets = [rng.choice(detail_ids) for _ in range(args.warmup + args.calls)]

    def detail(action_id):
        checker(client, DETAIL_PATH.format(action_id=action_id), 200, {})()

    results["detail"] = timed(detail, detail_targets, args.warmup)
    report(f"{len(detail_ids):,} pending actions at random, each with {args.history + 1} events and 5 checkpoints",
           results["detail"])
    results["detail"]["plans"] = plans("the detail page", functools.partial(detail, detail_ids[0]))
    return results


def fifty_reviewers(args, results: dict) -> dict:
    """What `args.reviewers` reviewers refreshing every `args.poll` s cost, computed from
    the in-process figures: a quiet queue (every refresh a 204) and a busy one (a change
    at least every `args.poll` s, so that every refresh gets the rows)."""
    rate = args.reviewers / args.poll
    unchanged, stale, changed = results["unchanged"], results["stale"], results["changed"]
    # Busy: each process recomputes the version once a change; with a change every poll
    # interval that is one refresh in `reviewers`, the others get the rows.
    busy_ms = (changed["mean"] + (args.reviewers - 1) * stale["mean"]) / args.poll
    busy_cpu_ms = (changed["cpu_ms"] + (args.reviewers - 1) * stale["cpu_ms"]) / args.poll
    busy_queries = (changed["queries"] + (args.reviewers - 1) * stale["queries"]) / args.poll
    cost = {
        "rate": rate,
        "server_ms": rate * unchanged["mean"],  # ms of server time each second
        "cpu_ms": rate * unchanged["cpu_ms"],
        "qps": rate * unchanged["queries"],
        "busy_ms": busy_ms,
        "busy_cpu_ms": busy_cpu_ms,
        "busy_qps": busy_queries,
    }
    common.heading(f"1e. {args.reviewers} reviewers refreshing every {args.poll:g} s (computed from 1b and 1c)")
    cores = os.cpu_count() or 1
    print(
        f"computed: {args.reviewers} / {args.poll:g} s = {rate:g} refreshes/s\n"
        f"quiet queue, every refresh a 204 (1c: mean {unchanged['mean']:.2f} ms, {unchanged['queries']} queries):\n"
        f"  computed: {rate:g} x {unchanged['mean']:.2f} ms = {cost['server_ms']:.1f} ms of server time a second, "
        f"{cost['server_ms'] / 10:.1f}% of one core ({cost['server_ms'] / 10 / cores:.2f}% of the {cores}), the "
        f"time waited on PostgreSQL included\n"
        f"  computed: this process's CPU alone: {rate:g} x {unchanged['cpu_ms']:.2f} ms = {cost['cpu_ms']:.1f} ms "
        f"a second, {cost['cpu_ms'] / 10:.1f}% of one core\n"
        f"  computed: {rate:g} x {unchanged['queries']} = {cost['qps']:g} queries/s\n"
        f"busy queue, a change at least every {args.poll:g} s, so every refresh gets the rows: per change one "
        f"refresh recomputes the version (1b ii: mean {changed['mean']:.2f} ms, {changed['queries']} queries) and "
        f"{args.reviewers - 1} get the rows (1b i: mean {stale['mean']:.2f} ms, {stale['queries']} queries)\n"
        f"  computed: {busy_ms:.0f} ms of server time a second, {busy_ms / 10:.0f}% of one core "
        f"({busy_ms / 10 / cores:.0f}% of the {cores}), the time waited on PostgreSQL (and on a busy machine's "
        f"CPU) included; {busy_queries:.1f} queries/s\n"
        f"  computed: this process's CPU alone: {busy_cpu_ms:.0f} ms a second, {busy_cpu_ms / 10:.0f}% of one core"
    )
    return cost


# --- over HTTP -------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect (to the login page) is an answer to see, not to follow


HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def get(url: str, cookie: str, hx: bool = False, timeout: float = 5) -> tuple[int, bytes]:
    headers = {"Cookie": cookie, **({"HX-Request": "true"} if hx else {})}
    try:
        with HTTP.open(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# wrk: every request with a reviewer's session cookie; answers other than @STATUS@ counted.
PAGE_LUA = """\
wrk.method = "GET"
wrk.headers["Cookie"] = "@COOKIE@"
@HX@
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) unexpected = 0 end
function response(status, headers, body) if status ~= @STATUS@ then unexpected = unexpected + 1 end end

""" + common.WRK_DONE_LUA + """
local figures_done = done
function done(summary, latency, requests)
  local n = 0
  for _, thread in ipairs(threads) do n = n + thread:get("unexpected") end
  io.write(string.format("BENCH-UNEXPECTED %d\\n", n))
  figures_done(summary, latency, requests)
end
"""


def page_script(folder: Path, name: str, cookie: str, status: int, hx: bool) -> Path:
    script = folder / f"{name}.lua"
    script.write_text(PAGE_LUA.replace("@COOKIE@", cookie).replace("@STATUS@", str(status))
                      .replace("@HX@", 'wrk.headers["HX-Request"] = "true"' if hx else ""))
    return script


def wrk(args, url: str, script: Path, run) -> dict:
    figures, output = common.wrk_run(run, url, script, args.seconds)
    lines = output.splitlines()
    unexpected = next((line for line in lines if line.startswith("BENCH-UNEXPECTED ")), "BENCH-UNEXPECTED -1")
    figures["unexpected"] = int(unexpected.split()[1])
    common.wrk_print("\n".join(line for line in lines if line is not unexpected))
    print(
        f"  {figures['rps']:,.0f} req/s, p50 {figures['p50_us'] / 1000:.2f} ms, p95 {figures['p95_us'] / 1000:.2f} ms, "
        f"p99 {figures['p99_us'] / 1000:.2f} ms; answers not as expected {figures['unexpected']:,}, "
        f"socket errors {figures['errors']:.0f}"
    )
    return figures


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a process, from /proc; None when it is not visible."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def server_pids(port: int) -> list[int]:
    """The app server's main process and its workers, serving on `port`."""
    master, workers = common.server_processes(port)
    return sorted({master, *workers})


def postgres_pids() -> list[int]:
    """PostgreSQL's backends on the bench database, other than this process's."""
    return [row[0] for row in sql(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )]


def machine_busy() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


def cpu_of(pids: list[int]) -> dict[int, float]:
    return {pid: seconds for pid in pids if (seconds := cpu_seconds(pid)) is not None}


def paced(args, base_url: str, url_path: str, cookies: list[str], port: int) -> dict:
    """`args.reviewers` reviewers' refreshes at `args.reviewers / args.poll` a second for
    `args.poll_run` seconds, and the CPU the servers used meanwhile."""
    rate = args.reviewers / args.poll
    count = round(rate * args.poll_run)
    interval = 1 / rate
    pg_before = cpu_of(postgres_pids())
    server_before = cpu_of(server_pids(port))
    busy_before = machine_busy()
    statuses, latencies = Counter(), []
    started = time.perf_counter()
    for n in range(count):
        pause = started + n * interval - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        start = time.perf_counter()
        status, _ = get(base_url + url_path, cookies[n % len(cookies)], hx=True)
        latencies.append((time.perf_counter() - start) * 1000)
        statuses[status] += 1
    elapsed = time.perf_counter() - started
    busy_after = machine_busy()
    server_after = cpu_of(server_pids(port))
    pg_after = cpu_of(list(pg_before) + postgres_pids())
    used = {
        "server": sum(server_after[p] - server_before.get(p, 0) for p in server_after),
        "postgres": sum(pg_after[p] - pg_before.get(p, 0) for p in pg_after),
    }
    figures = common.summarize(latencies)
    figures.update(
        rate=count / elapsed, seconds=elapsed, statuses=dict(statuses),
        server_share=used["server"] / elapsed, postgres_share=used["postgres"] / elapsed,
        postgres_seen=len(pg_after), server_seen=len(server_after),
        machine_share=(busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1]),
    )
    return figures


def http_part(args, env: dict, clients, keys: list[str]) -> dict:
    from django.conf import settings

    from approvals import selectors

    common.heading("2. the pages under the app server")
    version = selectors.queue_version()
    cookies = [f"{settings.SESSION_COOKIE_NAME}={key}" for key in keys]
    refresh_path = REFRESH_PATH.format(version=version)
    port = common.free_port(args.port)
    one_each = argparse.Namespace(**{**vars(args), "threads": min(args.threads, args.workers),
                                     "connections": args.workers})
    results = {}
    folder = Path(tempfile.mkdtemp(prefix="hitl-bench-pages-"))
    try:
        refresh_lua = page_script(folder, "refresh", cookies[0], 204, hx=True)
        page_lua = page_script(folder, "page", cookies[0], 200, hx=False)
        with common.app_server(env, port, args.workers, folder) as base_url:
            status, body = get(base_url + refresh_path, cookies[0], hx=True)
            page_status, page = get(base_url + QUEUE_PATH, cookies[0])
            print(f"the app server with {args.workers} workers on 127.0.0.1:{port}; one request each first: the unchanged refresh "
                  f"HTTP {status} ({len(body)} bytes), the queue page HTTP {page_status} ({len(page):,} bytes, "
                  f"{rows_in(page)} rows)")
            if (status, body, page_status) != (204, b"", 200):
                raise common.BenchError("the refresh should be a 204 with no body and the page a 200; not loading them")
            runs = (
                ("a", "refresh", refresh_path, refresh_lua, one_each,
                 "the unchanged refresh (204), one connection per worker: a refresh's latency"),
                ("b", "refresh_load", refresh_path, refresh_lua, args,
                 f"the unchanged refresh (204), {args.connections} connections: the most refreshes/s"),
                ("c", "page", QUEUE_PATH, page_lua, one_each,
                 "the queue page (200), one connection per worker: a page's latency"),
            )
            for letter, key, path, script, run, note in runs:
                if args.http_warmup > 0:
                    common.wrk_run(run, base_url + path, script, args.http_warmup)
                print(f"\n({letter}) wrk -t{run.threads} -c{run.connections} -d{args.seconds:g}s GET {path}, {note}:")
                results[key] = wrk(args, base_url + path, script, run)
            capacity = results["refresh_load"]["rps"]
            print(f"  computed: at {capacity:,.0f} refreshes/s the {args.workers} workers would serve "
                  f"{capacity * args.poll:,.0f} reviewers refreshing every {args.poll:g} s, with nothing else to do")

            rate = args.reviewers / args.poll
            print(f"\n(d) {args.reviewers} reviewers: {rate:g} unchanged refreshes/s for {args.poll_run:g} s, one every "
                  f"{1000 / rate:.0f} ms, each on one of {len(cookies)} sessions in turn (urllib, a new connection each):")
            results["paced"] = paced_figures = paced(args, base_url, refresh_path, cookies, port)
            print(
                f"  {paced_figures['calls']:,} refreshes in {paced_figures['seconds']:.1f} s "
                f"({paced_figures['rate']:.2f}/s); answers: "
                f"{', '.join(f'HTTP {code} x{n:,}' for code, n in sorted(paced_figures['statuses'].items()))}\n"
                f"  latency seen by the client: p50 {paced_figures['p50']:.2f} ms, p95 {paced_figures['p95']:.2f} ms\n"
                f"  measured CPU meanwhile (/proc): the app server ({paced_figures['server_seen']} processes) "
                f"{paced_figures['server_share'] * 100:.1f}% of one core, PostgreSQL's backends on this database "
                f"({paced_figures['postgres_seen']}) {paced_figures['postgres_share'] * 100:.1f}% of one core; "
                f"the whole machine was {paced_figures['machine_share'] * 100:.0f}% busy (everything on it)"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


# --- summary ---------------------------------------------------------------------------


def in_process_rows(args, results: dict) -> list:
    rows = []
    labels = (
        ("page", f"GET {QUEUE_PATH} (queue page)"),
        ("stale", "GET /?v=<stale>, HX (changed queue)"),
        ("changed", "  the first after a change"),
        ("unchanged", "GET /?v=<current>, HX (204)"),
        ("detail", "GET /actions/<id>/ (detail page)"),
    )
    for key, label in labels:
        figures = results.get(key)
        if figures is None:
            continue
        note = f"{figures['queries']} SQL queries ({figures['in_sql']:.2f} ms), CPU {figures['cpu_ms']:.2f} ms a call"
        if key == "unchanged":
            met = figures["queries_max"] <= TARGET_UNCHANGED_QUERIES
            note += f"; target <= {TARGET_UNCHANGED_QUERIES} queries: {common.verdict(met)}"
        if key == "page":
            others = figures.get("other_counts", {})
            note += (f"; with 100 rows a page {others.get('100 rows a page', '?')}; the API queue's target "
                     f"p95 < {TARGET_PAGE_P95_MS:g} ms: {common.verdict(figures['p95'] < TARGET_PAGE_P95_MS)}")
        rows.append((f"{label}: p50 / p95", f"{figures['p50']:.2f} / {figures['p95']:.2f} ms", note))
    cost = results.get("cost")
    if cost:
        rows += [
            (f"{args.reviewers} reviewers every {args.poll:g} s, quiet (computed)", f"{cost['server_ms'] / 10:.1f}% of a core",
             f"{cost['rate']:g} refreshes/s, all 204s: {cost['server_ms']:.0f} ms of server time a second, "
             f"{cost['qps']:g} queries/s"),
            ("  busy: a change every poll (computed)", f"{cost['busy_ms'] / 10:.0f}% of a core",
             f"every refresh gets the rows: {cost['busy_ms']:.0f} ms a second ({cost['busy_cpu_ms']:.0f} ms of it "
             f"Python CPU), {cost['busy_qps']:.1f} queries/s"),
        ]
    return rows


def http_rows(args, http: dict) -> list:
    rows = []
    for key, label in (("refresh", f"HTTP 204 refresh, {args.workers} connections"),
                       ("refresh_load", f"HTTP 204 refresh, {args.connections} connections"),
                       ("page", f"HTTP queue page, {args.workers} connections")):
        figures = http.get(key)
        if figures is None:
            continue
        rows.append((label, f"{figures['rps']:,.0f} req/s",
                     f"p50 {figures['p50_us'] / 1000:.2f} ms, p95 {figures['p95_us'] / 1000:.2f} ms; "
                     f"unexpected answers {figures['unexpected']}, socket errors {figures['errors']:.0f}"))
    paced_figures = http.get("paced")
    if paced_figures:
        rows.append((f"HTTP {args.reviewers} reviewers, {paced_figures['rate']:.1f}/s (measured)",
                     f"{(paced_figures['server_share'] + paced_figures['postgres_share']) * 100:.1f}% of a core",
                     f"app server {paced_figures['server_share'] * 100:.1f}%, PostgreSQL "
                     f"{paced_figures['postgres_share'] * 100:.1f}%; p50 {paced_figures['p50']:.2f} ms, "
                     f"p95 {paced_figures['p95']:.2f} ms"))
    return rows


# --- main ------------------------------------------------------------------------------


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_shared_arguments(
        parser, database_help=common.POSTGRES_DATABASE_HELP, port=8768,
        seconds_help="wrk duration of each measured run (default 10)",
        warmup_help="seconds of wrk before each measured run",
    )
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls first, in process (default 50)")
    parser.add_argument("--calls", type=int, default=500,
                        help="timed requests in process, of the queue page, the refreshes with rows and the detail "
                             "page (default 500)")
    parser.add_argument("--refresh-calls", type=int, default=2000,
                        help="timed unchanged refreshes (204) in process (default 2000)")
    data = parser.add_argument_group("the data")
    data.add_argument("--actions", type=int, default=100_000, help="actions in the table (default 100000)")
    data.add_argument("--pending", type=int, default=2000, help="of them PENDING_APPROVAL (default 2000)")
    data.add_argument("--deals", type=int, default=1000, help="deals the actions are on (default 1000)")
    data.add_argument("--detail-actions", type=int, default=200,
                      help="pending actions the detail page opens, with the longer history (default 200)")
    data.add_argument("--history", type=int, default=10,
                      help="engine events of each of them, beside its request's (default 10)")
    polling = parser.add_argument_group("the reviewers polling")
    polling.add_argument("--reviewers", type=int, default=50, help="reviewers with the queue open (default 50)")
    polling.add_argument("--poll", type=float, default=4, help="seconds between a page's refreshes (default 4)")
    polling.add_argument("--poll-run", type=float, default=20,
                         help="seconds of the paced refreshes over HTTP (default 20)")
    common.add_final_arguments(parser)
    args = parser.parse_args()
    if not (1 <= args.pending <= args.actions and 1 <= args.detail_actions <= args.pending and args.reviewers >= 1
            and args.poll > 0 and args.calls >= 1 and args.refresh_calls >= 1):
        parser.error("need 1 <= --detail-actions <= --pending <= --actions, --reviewers >= 1, --poll > 0, calls >= 1")
    return args


def measure(args, results: dict) -> None:
    with database(args) as db:
        env = common.django_start(db, "wrk, the app server and PostgreSQL")
        # The pages name their scripts and styles by hashed name, from the manifest that
        # collectstatic writes (as in production) into staticfiles/, which git ignores.
        common.run([common.PYTHON, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"], env=env, timeout=120)
        print(f"static files collected into {settings_static_root()} (manage.py collectstatic)")
        load = os.getloadavg()[0]
        print(f"load average (1 min) before the run: {load:.2f}"
              + ("; the machine has been busy, which lowers the figures" if load > 0.5 else ""))
        bench_rows_delete()  # what an interrupted run on a given database left
        keys = []
        try:
            common.heading("the data")
            started = time.monotonic()
            detail_ids = seed(args)
            from approvals.models import ApprovalRequest
            from zakops.models import Action, DealEvent

            pending = Action.objects.filter(status="PENDING_APPROVAL").count()
            print(f"bulk-inserted in {time.monotonic() - started:.1f} s, then VACUUM (ANALYZE): "
                  f"{Action.objects.count():,} actions, {pending:,} PENDING_APPROVAL, "
                  f"{ApprovalRequest.objects.count():,} approval requests, {DealEvent.objects.count():,} deal events")
            clients, keys = reviewers(args.reviewers)
            print(f"{len(clients)} operators signed in, a session each")
            results.update(in_process(args, clients, detail_ids))
            results["cost"] = fifty_reviewers(args, results)
            if "http_skipped" not in results:
                results["http"] = http_part(args, env, clients, keys)
        finally:
            if not db.scratch:
                bench_rows_delete()
                people_delete(keys)


def main() -> int:
    args = arguments()
    return common.bench_main(
        args, wrk_seconds=3 * (args.seconds + args.http_warmup) + args.poll_run, measure=measure,
        in_process_rows=in_process_rows, http_rows=http_rows, http_name="HTTP pages",
    )


if __name__ == "__main__":
    sys.exit(main())
