"""The reviewer pages (the queue, its refresh, the detail page) in process through Django's
test client and under the app server with wrk, and what 50 reviewers polling cost.

    .venv/bin/python bench/pages.py [--seconds 10] [--workers 2] [--reviewers 50]
"""

import functools
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta

import harness  # bench/harness.py and serving.py: this script's folder is first on sys.path
import serving

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


# --- the data --------------------------------------------------------------------------


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
        level = harness.weighted(rng, harness.PENDING_LEVELS) if is_pending else rng.choice(list(harness.SCORES))
        status = "PENDING_APPROVAL" if is_pending else harness.weighted(rng, harness.DONE_STATUSES)
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
            round=1, state=state, risk_level=level, score=harness.SCORES[level], reasons=[f"{level} by rule {action_type}"],
            score_breakdown=[{"label": f"rule {action_type}", "points": harness.SCORES[level]}],
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
    harness.sql("VACUUM (ANALYZE) zakops.deals, zakops.actions, approvals_approvalrequest, zakops.deal_events, "
        "zakops.execution_checkpoints")
    return targets


# --- the reviewers ---------------------------------------------------------------------


def reviewers(count: int) -> tuple[list, list[str]]:
    """`count` operators, each signed in once: a test client for each, and their session keys."""
    from accounts.services import operator_upsert

    clients, keys = [], []
    for n in range(1, count + 1):
        user = operator_upsert(email=REVIEWER_EMAIL.format(n=n), role="operator", password=None,
                               name=f"Bench Reviewer {n}")
        client = harness.test_client()
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
        raise harness.BenchError("the change listener did not connect within 15 s; the 204 path would recompute")
    time.sleep(0.2)  # notifications already sent arrive
    selectors.queue_version()
    return selectors.queue_version()


# --- timing in this process ------------------------------------------------------------


def plans(label: str, call) -> list:
    """EXPLAIN (ANALYZE, BUFFERS) of each SELECT one call of `call()` runs, with its
    parameters: [(execution ms, statement, plan lines)]; printed, with the slowest's plan."""
    found = []
    for statement, params in harness.captured(call):
        if statement.lstrip().upper().startswith("SELECT"):
            ms, lines = harness.explain(statement, params)
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

    statements = harness.Statements()
    figures = harness.summarize(harness.time_calls(measured, targets, warmup, statements))
    counts = statements.counts()
    figures.update(
        cpu_ms=statistics.fmean(cpu[warmup:]) * 1000,
        queries=round(statistics.median(counts)), queries_min=min(counts), queries_max=max(counts),
        in_sql=statements.median_ms(), sql=[statement for statement, _ in statements.per_call[-1]],
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
            raise harness.BenchError(f"GET {path} answered {response.status_code} {location}, not {status}")
        if empty and response.content:
            raise harness.BenchError(f"GET {path} answered {len(response.content)} bytes, not an empty body")
        if rows is not None and rows_in(response.content) != rows:
            raise harness.BenchError(f"GET {path} showed {rows_in(response.content)} rows, not {rows}")
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

    harness.heading(f"1a. GET {QUEUE_PATH}: the queue page, signed in as an operator")
    page = checker(client, QUEUE_PATH, 200, {}, rows=rows)
    results["page"] = timed(page, targets, args.warmup)
    report(f"{rows} rows a page, {args.pending:,} pending", results["page"])
    print(f"  the page: {len(page.last.content):,} bytes")
    p95 = results["page"]["p95"]
    print(f"  the API queue's target, for comparison: p95 < {TARGET_PAGE_P95_MS:g} ms: "
          f"{harness.verdict(p95 < TARGET_PAGE_P95_MS)}")
    pages = -(-args.pending // selectors.PAGE_SIZE)
    counts = {
        "page 2": len(harness.captured(checker(client, "/?page=2", 200, {}))),
        f"page {pages} (the last)": len(harness.captured(checker(client, f"/?page={pages}", 200, {}))),
        "the decided tab": len(harness.captured(checker(client, "/?tab=decided", 200, {}))),
        "a risk level": len(harness.captured(checker(client, "/?risk_level=high", 200, {}))),
    }
    original = selectors.review_queue
    selectors.review_queue = functools.partial(original, per_page=100)  # the view calls selectors.review_queue
    try:
        counts["100 rows a page"] = len(harness.captured(checker(client, QUEUE_PATH, 200, {}, rows=min(100, args.pending))))
    finally:
        selectors.review_queue = original
    results["page"]["other_counts"] = counts
    print("  SQL queries elsewhere, one request each: " + ", ".join(f"{name} {n}" for name, n in counts.items()))

    def page_after_change():
        feed.mark(QUEUE_CHANNEL)  # the version's two statements too
        page()

    results["page"]["plans"] = plans("the queue page after a change", page_after_change)

    harness.heading(f"1b. GET {REFRESH_PATH.format(version=STALE)} with HX-Request: the refresh of a changed queue")
    stale = checker(client, REFRESH_PATH.format(version=STALE), 200, HX, rows=rows)
    results["stale"] = timed(stale, targets, args.warmup)
    report("(i) as most reviewers get it: the version known to this process", results["stale"])
    print(f"  the partial: {len(stale.last.content):,} bytes")

    def first_after_change(target):
        feed.mark(QUEUE_CHANNEL)  # what the NOTIFY of a change does: the next ask recomputes the version
        stale(target)

    results["changed"] = timed(first_after_change, targets, args.warmup)
    report("(ii) as the first after a change gets it: the version recomputed", results["changed"])

    harness.heading(f"1c. GET {REFRESH_PATH.format(version='<current>')} with HX-Request: the refresh of an unchanged queue")
    version = queue_version_warm()
    unchanged = checker(client, REFRESH_PATH.format(version=version), 204, HX, empty=True)
    results["unchanged"] = timed(unchanged, [None] * (args.warmup + args.refresh_calls), args.warmup)
    report("204, no body", results["unchanged"])
    queries = results["unchanged"]["queries_max"]
    print(f"  target: at most {TARGET_UNCHANGED_QUERIES} queries (the session and its user): "
          f"{queries} at most: {harness.verdict(queries <= TARGET_UNCHANGED_QUERIES)}")

    harness.heading(f"1d. GET {DETAIL_PATH.format(action_id='<id>')}: the detail page")
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
    harness.heading(f"1e. {args.reviewers} reviewers refreshing every {args.poll:g} s (computed from 1b and 1c)")
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


def get(url: str, cookie: str, hx: bool = False) -> tuple[int, bytes]:
    return serving.http_call(url, headers={"Cookie": cookie, **({"HX-Request": "true"} if hx else {})})


def wrk(args, url: str, script, connections: int | None) -> dict:
    figures = serving.wrk_run(args, url, script, args.seconds, connections=connections, show=True)
    print(f"  {serving.wrk_figures(figures)}; answers not as expected {figures['unexpected']:,}, "
          f"socket errors {figures['errors']:.0f}")
    return figures


def postgres_pids() -> list[int]:
    """PostgreSQL's backends on the bench database, other than this process's."""
    return [row[0] for row in harness.sql(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )]


def server_pids(base_url: str) -> list[int]:
    """The app server's main process and its workers."""
    master, workers = serving.server_processes(base_url)
    return sorted({master, *workers})


def paced(args, base_url: str, url_path: str, cookies: list[str]) -> dict:
    """`args.reviewers` reviewers' refreshes at `args.reviewers / args.poll` a second for
    `args.poll_run` seconds, and the CPU the servers used meanwhile."""
    rate = args.reviewers / args.poll
    count = round(rate * args.poll_run)
    interval = 1 / rate
    pg_before = serving.cpu_of(postgres_pids())
    server_before = serving.cpu_of(server_pids(base_url))
    busy_before = serving.machine_busy()
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
    busy_after = serving.machine_busy()
    server_after = serving.cpu_of(server_pids(base_url))
    pg_after = serving.cpu_of(list(pg_before) + postgres_pids())
    used = {
        "server": sum(server_after[p] - server_before.get(p, 0) for p in server_after),
        "postgres": sum(pg_after[p] - pg_before.get(p, 0) for p in pg_after),
    }
    figures = harness.summarize(latencies)
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

    harness.heading("2. the pages under the app server")
    version = selectors.queue_version()
    cookies = [f"{settings.SESSION_COOKIE_NAME}={key}" for key in keys]
    refresh_path = REFRESH_PATH.format(version=version)
    results = {}
    with harness.scratch_folder("pages") as folder:
        refresh_lua = serving.wrk_script(folder, "refresh", headers={"Cookie": cookies[0], "HX-Request": "true"}, expect=204)
        page_lua = serving.wrk_script(folder, "page", headers={"Cookie": cookies[0]}, expect=200)
        with serving.app_server(env, args.port, args.workers, folder) as base_url:
            status, body = get(base_url + refresh_path, cookies[0], hx=True)
            page_status, page = get(base_url + QUEUE_PATH, cookies[0])
            print(f"the app server with {args.workers} workers on {base_url}; one request each first: the unchanged refresh "
                  f"HTTP {status} ({len(body)} bytes), the queue page HTTP {page_status} ({len(page):,} bytes, "
                  f"{rows_in(page)} rows)")
            if (status, body, page_status) != (204, b"", 200):
                raise harness.BenchError("the refresh should be a 204 with no body and the page a 200; not loading them")
            runs = (
                ("a", "refresh", refresh_path, refresh_lua, args.workers,
                 "the unchanged refresh (204), one connection per worker: a refresh's latency"),
                ("b", "refresh_load", refresh_path, refresh_lua, None,
                 f"the unchanged refresh (204), {args.connections} connections: the most refreshes/s"),
                ("c", "page", QUEUE_PATH, page_lua, args.workers,
                 "the queue page (200), one connection per worker: a page's latency"),
            )
            for letter, key, path, script, connections, note in runs:
                if args.http_warmup > 0:
                    serving.wrk_run(args, base_url + path, script, args.http_warmup, connections=connections)
                print(f"\n({letter}) {serving.wrk_command(args, connections)} GET {path}, {note}:")
                results[key] = wrk(args, base_url + path, script, connections)
            capacity = results["refresh_load"]["rps"]
            print(f"  computed: at {capacity:,.0f} refreshes/s the {args.workers} workers would serve "
                  f"{capacity * args.poll:,.0f} reviewers refreshing every {args.poll:g} s, with nothing else to do")

            rate = args.reviewers / args.poll
            print(f"\n(d) {args.reviewers} reviewers: {rate:g} unchanged refreshes/s for {args.poll_run:g} s, one every "
                  f"{1000 / rate:.0f} ms, each on one of {len(cookies)} sessions in turn (urllib, a new connection each):")
            results["paced"] = paced_figures = paced(args, base_url, refresh_path, cookies)
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
    return results


# --- summary and main ------------------------------------------------------------------


def summary_rows(args, results: dict) -> list:
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
            note += f"; target <= {TARGET_UNCHANGED_QUERIES} queries: {harness.verdict(met)}"
        if key == "page":
            others = figures.get("other_counts", {})
            note += (f"; with 100 rows a page {others.get('100 rows a page', '?')}; the API queue's target "
                     f"p95 < {TARGET_PAGE_P95_MS:g} ms: {harness.verdict(figures['p95'] < TARGET_PAGE_P95_MS)}")
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
    http = results.get("http", {})
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


def arguments():
    parser = harness.bench_parser(__doc__)
    harness.server_arguments(parser, port=8768, seconds_help="wrk duration of each measured run (default 10)",
                             warmup_help="seconds of wrk before each measured run")
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
    harness.final_arguments(parser, plus="the wrk and paced runs")
    args = parser.parse_args()
    if not (1 <= args.pending <= args.actions and 1 <= args.detail_actions <= args.pending and args.reviewers >= 1
            and args.poll > 0 and args.calls >= 1 and args.refresh_calls >= 1):
        parser.error("need 1 <= --detail-actions <= --pending <= --actions, --reviewers >= 1, --poll > 0, calls >= 1")
    return args


def measure(args, results: dict) -> None:
    with harness.bench_database(args, "pages") as db:
        env = harness.django_start(db, "wrk, the app server and PostgreSQL")
        # The pages name their scripts and styles by hashed name, from the manifest that
        # collectstatic writes (as in production) into staticfiles/, which git ignores.
        harness.run([harness.PYTHON, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"], env=env, timeout=120)
        from django.conf import settings

        print(f"static files collected into {settings.STATIC_ROOT} (manage.py collectstatic)")
        harness.load_print()
        keys = []  # the reviewers' sessions, once they are signed in
        emails = [REVIEWER_EMAIL.format(n=n) for n in range(1, 1000)]
        forget_people = functools.partial(harness.people_delete, emails=emails, session_keys=keys)
        with harness.bench_rows(db, PREFIX, deal_prefix=DEAL_PREFIX, also=forget_people):
            harness.heading("the data")
            started = time.monotonic()
            detail_ids = seed(args)
            from approvals.models import ApprovalRequest
            from zakops.models import Action, DealEvent

            pending = Action.objects.filter(status="PENDING_APPROVAL").count()
            print(f"bulk-inserted in {time.monotonic() - started:.1f} s, then VACUUM (ANALYZE): "
                  f"{Action.objects.count():,} actions, {pending:,} PENDING_APPROVAL, "
                  f"{ApprovalRequest.objects.count():,} approval requests, {DealEvent.objects.count():,} deal events")
            clients, signed_in = reviewers(args.reviewers)
            keys += signed_in
            print(f"{len(clients)} operators signed in, a session each")
            results.update(in_process(args, clients, detail_ids))
            results["cost"] = fifty_reviewers(args, results)
            if "http_skipped" not in results:
                results["http"] = http_part(args, env, clients, keys)


if __name__ == "__main__":
    args = arguments()
    sys.exit(harness.bench_main(args, measure, rows=summary_rows, http_name="HTTP pages",
                                extra_seconds=3 * (args.seconds + args.http_warmup) + args.poll_run))
