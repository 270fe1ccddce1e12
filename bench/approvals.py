"""Benchmark of approval decisions and the approval queue, in process and over HTTP. It prints figures and asserts nothing.

1. Decisions: `POST /api/hitl/actions/{action_id}/approve` with {"reason": "ok"}, sent by
   operators (bearer tokens) who did not request the actions. Each decision is one
   transaction that locks the action, moves its request to approved, updates the action
   and writes one zakops.deal_events row and one zakops.outbox row. The pending actions
   are opened first through `approvals.services.requests.approval_request()` (medium risk,
   requested by a service account), 1,000 per transaction; the time that takes is shown.
   By default there are enough for 1,000 decisions/s through the wrk runs (--pending).
   (a) In this process through Django's test client: p50/p95 ms per decision, the time
   in SQL and the number of statements, so that the cost of one decision is known.
   (b) Under the app server (granian) with production settings, loaded with wrk: every
   request decides a different pending action (setup() deals each wrk thread its own
   share of them), so the answers are 200s, not 409s. Decisions/s (target: at least 500 on this 2-core
   machine), p50/p99 latency, responses that are not 2xx/3xx. Afterwards the database is
   checked: approved requests against the 200s counted, and exactly one hitl.approved
   deal event and one outbox row for every approved action.
2. The queue: `GET /api/hitl/approval-queue?limit=50` with 100,000 actions in
   zakops.actions, 2,000 of them PENDING_APPROVAL (mixed risk levels, each with an open
   request) and decided requests behind half of the others. p50/p95 ms (target: p95 under
   50 ms) (a) in this process through Django's test client, with the time in SQL, the
   selector and serializer alone, and the query plans (EXPLAIN ANALYZE); (b) under
   the app server with wrk, once with one connection per worker (a page's latency) and once
   with the load of the other runs (throughput; latency then includes waiting for a worker).

The database is a scratch PostgreSQL one, created and dropped here (postgres://postgres@
127.0.0.1:5432, trust auth, via createdb/dropdb). With --database-url (or DATABASE_URL) that
database is used as it is; the bench's actions, requests, events and outbox rows, and its
accounts and their tokens, are deleted afterwards.

    .venv/bin/python bench/approvals.py [--seconds 10] [--workers 2] [--pending 12550]
"""

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from datetime import timedelta
from pathlib import Path

import _common as common  # bench/_common.py: this script's folder is first on sys.path

TARGET_DECISIONS_RPS = 500.0
TARGET_QUEUE_P95_MS = 50.0

DECIDE_PREFIX = "bench-appr-d-"  # part 1's actions
QUEUE_PREFIX = "bench-appr-q-"  # part 2's actions
BENCH_PREFIX = "bench-appr-"  # both: deleted by prefix on a given database
ENGINE_NAME = "bench-engine"  # the service account that requests the actions
OPERATOR_EMAIL = "bench-operator-{n}@bench.example.com"
TOKEN_NAME = "bench approvals"
ACTION_TYPE = "COMMUNICATION.DRAFT_EMAIL"  # medium risk, needs an operator's approval
DECISION = {"reason": "ok"}
DECIDE_PATH = "/api/hitl/actions/{action_id}/approve"
QUEUE_PATH = "/api/hitl/approval-queue?limit=50"




# --- the database ----------------------------------------------------------------------


def database(args):
    """The given PostgreSQL database, or a scratch one dropped at the end."""
    return common.postgres_database(args, f"hitl_bench_appr_{os.getpid()}")


def sql(statement: str, params=()) -> list:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def bench_rows_delete(prefix: str = BENCH_PREFIX) -> None:
    """Delete the bench's actions with `prefix`, their requests, events and outbox rows."""
    like = [f"{prefix}%"]
    common.approval_requests_delete(like[0])
    sql("DELETE FROM zakops.deal_events WHERE details->>'action_id' LIKE %s", like)
    sql("DELETE FROM zakops.outbox WHERE aggregate_id LIKE %s", like)
    sql("DELETE FROM zakops.actions WHERE action_id LIKE %s", like)


def people_delete() -> None:
    """The bench's accounts (their tokens go with them) and their zakops.operators rows."""
    from django.contrib.auth import get_user_model

    from zakops.models import Operator

    emails = [OPERATOR_EMAIL.format(n=n) for n in range(1, 100)]
    get_user_model().objects.filter(username__in=[ENGINE_NAME, *emails]).delete()
    Operator.objects.filter(email__in=emails).delete()


def analyze(vacuum: bool = False) -> None:
    """Fresh statistics after bulk inserts, as autovacuum would have soon; with `vacuum`,
    dead rows (part 1's, deleted) cleared too, so that autovacuum does not run during the timing."""
    tables = "zakops.actions, approvals_approvalrequest, zakops.deal_events, zakops.outbox"
    sql(f"VACUUM (ANALYZE) {tables}" if vacuum else f"ANALYZE {tables}")


# --- the people ------------------------------------------------------------------------


def people(count: int):
    """The requester (the bench-engine service account, as an Actor) and `count` operators'
    bearer tokens, raw."""
    from accounts.selectors import actor_of
    from accounts.services import api_token_create, operator_upsert, service_account_ensure

    engine = actor_of(service_account_ensure(name=ENGINE_NAME))
    tokens = []
    for n in range(1, count + 1):
        user = operator_upsert(email=OPERATOR_EMAIL.format(n=n), role="operator", password=None)
        tokens.append(api_token_create(user=user, name=TOKEN_NAME)[1])
    return engine, tokens


# --- timing in this process ------------------------------------------------------------


class SqlTimes:
    """A Django execute wrapper: per call, the statements of each verb (SELECT, INSERT, …)
    and the nanoseconds from execute to rows back. COMMIT is not a statement here: it is
    sent by the connection, so its round trip falls into the rest."""

    def __init__(self):
        self.per_call = []  # one {verb: (statements, ns)} per timed call

    def __call__(self, execute, statement, params, many, context):
        start = time.perf_counter_ns()
        result = execute(statement, params, many, context)
        if self.per_call:
            verb = statement.split(None, 1)[0].upper()
            count, ns = self.per_call[-1].get(verb, (0, 0))
            self.per_call[-1][verb] = (count + 1, ns + time.perf_counter_ns() - start)
        return result

    def median_ms(self) -> float:
        return statistics.median(sum(ns for _, ns in call.values()) for call in self.per_call) / 1e6

    def statements(self) -> int:
        return round(statistics.median(sum(n for n, _ in call.values()) for call in self.per_call))

    def verbs(self) -> str:
        """"SELECT 4 (0.61 ms), UPDATE 2 (0.30 ms), …": median statements and ms per call."""
        verbs = dict.fromkeys(verb for call in self.per_call for verb in call)  # in the order they ran
        return ", ".join(
            f"{verb} {statistics.median(call.get(verb, (0, 0))[0] for call in self.per_call):g} "
            f"({statistics.median(call.get(verb, (0, 0))[1] for call in self.per_call) / 1e6:.2f} ms)"
            for verb in verbs
        )


def time_calls(call, targets: list, warmup: int) -> tuple[dict, SqlTimes]:
    """p50/p95/mean ms of `call(target)`, the first `warmup` untimed; and the time in SQL."""
    times = SqlTimes()
    return common.summarize(common.time_calls(call, targets, warmup, times)), times


def test_client():
    """Django's test client, on a host the production settings allow. WhiteNoise's warning
    that the static files are not collected (no collectstatic here) is left out."""
    from django.test import Client

    warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)
    return Client(HTTP_HOST="127.0.0.1")


def report_calls(label: str, figures: dict, times: SqlTimes, rest: str) -> None:
    in_sql = times.median_ms()
    print(
        f"{label}: {figures['calls']:,} calls\n"
        f"  p50 {figures['p50']:.2f} ms, p95 {figures['p95']:.2f} ms, mean {figures['mean']:.2f} ms\n"
        f"  median per call: {in_sql:.2f} ms in {times.statements()} SQL statements (execute -> rows back), "
        f"{figures['p50'] - in_sql:.2f} ms {rest}\n"
        f"  statements per call (median count, ms): {times.verbs()}"
    )


def report_wrk(figures: dict, output: str, unit: str) -> None:
    common.wrk_print(output)
    print(
        f"  {figures['rps']:,.0f} {unit}/s, p50 {figures['p50_us'] / 1000:.2f} ms, "
        f"p95 {figures['p95_us'] / 1000:.2f} ms, p99 {figures['p99_us'] / 1000:.2f} ms, "
        f"non-2xx/3xx {figures['non2xx']:.0f}, socket errors {figures['errors']:.0f}"
    )


# --- 1. decisions ----------------------------------------------------------------------


def pending_open(ids: list[str], engine, batch: int) -> float:
    """A pending medium-risk request on each action, through approval_request(), `batch`
    calls per transaction; the seconds it took."""
    from django.db import transaction

    from approvals.services.requests import approval_request

    started = time.monotonic()
    for start in range(0, len(ids), batch):
        with transaction.atomic():
            for action_id in ids[start:start + batch]:
                request, created = approval_request(action_id=action_id, action_type=ACTION_TYPE, requester=engine)
                if not created or request.state != "pending":
                    raise common.BenchError(f"approval_request({action_id}) gave a {request.state} request")
    seconds = time.monotonic() - started
    analyze()
    return seconds


def decider(tokens: list[str]):
    """A call that approves the action it is given through the test client, with the
    operators' tokens in turn; it counts the answers by status."""
    client = test_client()
    body = json.dumps(DECISION)

    def decide(action_id: str) -> None:
        token = tokens[decide.calls % len(tokens)]
        decide.calls += 1
        response = client.post(DECIDE_PATH.format(action_id=action_id), body, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {token}")
        decide.statuses[response.status_code] += 1

    decide.calls = 0
    decide.statuses = Counter()
    return decide


def decisions_in_process(args, ids: list[str], tokens: list[str]) -> dict:
    common.heading("1a. POST /api/hitl/actions/{action_id}/approve in process (Django test client)")
    decide = decider(tokens)
    figures, times = time_calls(decide, ids, args.warmup)
    figures["ok"] = decide.statuses[200]
    figures["statuses"] = dict(decide.statuses)
    report_calls(f"{len(ids):,} pending actions, each approved once ({args.warmup} untimed first)", figures, times,
                 "in the rest (COMMIT, middleware, DRF, ORM, Python)")
    figures["in_sql"], figures["statements"] = times.median_ms(), times.statements()
    print(f"  answers: {', '.join(f'HTTP {code} x{n:,}' for code, n in sorted(decide.statuses.items()))}")
    print(f"  one process, one decision at a time: at most {1000 / figures['mean']:,.0f} decisions/s")
    return figures


DECIDE_LUA = """\
-- POST approve, each request on a different pending action: setup() deals the ids in the
-- file out to the threads (id i to thread i mod THREADS), and each thread sends one request
-- for each of its ids, in order.
local threads = {threads}
local tokens = {{{tokens}}}
local body = {body}
local shares = nil
local dealt = 0
local requests = {{}}
local sent = 0

function setup(thread)
  if shares == nil then
    shares = {{}}
    for n = 1, threads do shares[n] = {{}} end
    local i = 0
    for action_id in io.lines("{ids_path}") do
      local share = shares[i % threads + 1]
      share[#share + 1] = action_id
      i = i + 1
    end
  end
  dealt = dealt + 1
  thread:set("action_ids", shares[dealt])
end

function init(args)
  for i, action_id in ipairs(action_ids) do
    local headers = {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[i % #tokens + 1]}}
    requests[i] = wrk.format("POST", "/api/hitl/actions/" .. action_id .. "/approve", headers, body)
  end
end

function request()
  sent = sent + 1
  return requests[(sent - 1) % #requests + 1]  -- past the end: decided already, a 409
end

""" + common.WRK_DONE_LUA


def decide_script(folder: Path, name: str, ids: list[str], tokens: list[str], threads: int) -> Path:
    ids_path = folder / f"{name}.ids"
    ids_path.write_text("".join(f"{action_id}\n" for action_id in ids))
    script = folder / f"{name}.lua"
    quoted = ", ".join(f'"{token}"' for token in tokens)  # zkh_ and URL-safe base64: nothing to escape
    script.write_text(DECIDE_LUA.format(threads=threads, tokens=quoted, body=json.dumps(json.dumps(DECISION)),
                                        ids_path=ids_path))
    return script


def decisions_check() -> dict:
    """What the database holds for part 1's actions: approved requests, their events and
    outbox rows, and the actions the engine would now run."""
    from approvals.models import ApprovalRequest
    from zakops.models import Action, DealEvent, OutboxEvent

    requests = ApprovalRequest.objects.filter(action__action_id__startswith=DECIDE_PREFIX)
    approved = set(requests.filter(state="approved").values_list("action_id", flat=True))
    events = Counter(
        DealEvent.objects.filter(event_type="hitl.approved", details__action_id__startswith=DECIDE_PREFIX)
        .values_list("details__action_id", flat=True)
    )
    outbox = Counter(
        OutboxEvent.objects.filter(event_type="hitl.approved", aggregate_id__startswith=DECIDE_PREFIX)
        .values_list("aggregate_id", flat=True)
    )
    return {
        "approved": len(approved),
        "pending": requests.filter(state="pending").count(),
        "one_each": sum(1 for action_id in approved if events[action_id] == 1 and outbox[action_id] == 1),
        "events": sum(events.values()),
        "outbox": sum(outbox.values()),
        "stray": len((set(events) | set(outbox)) - approved),  # rows for an action that is not approved
        "queued": Action.objects.filter(action_id__startswith=DECIDE_PREFIX, status="QUEUED",
                                        approved_by__isnull=False).count(),
    }


def decisions_http(args, env: dict, ids: list[str], tokens: list[str], http: dict, ok_before: int) -> None:
    common.heading("1b. POST /api/hitl/actions/{action_id}/approve under the app server")
    port = common.free_port(args.port)
    first, rest = ids[0], ids[1:]
    warm = int(len(rest) * args.http_warmup / (args.http_warmup + args.seconds))
    warm_ids, measured_ids = rest[:warm], rest[warm:]
    folder = Path(tempfile.mkdtemp(prefix="hitl-bench-appr-"))
    try:
        warm_script = decide_script(folder, "warm", warm_ids, tokens, args.threads)
        script = decide_script(folder, "decide", measured_ids, tokens, args.threads)
        with common.app_server(env, port, args.workers, folder) as base_url:
            status, text = common.http_call(base_url + DECIDE_PATH.format(action_id=first), body=DECISION,
                                            token=tokens[0])
            print(f"the app server with {args.workers} workers on 127.0.0.1:{port}; {len(tokens)} operators' tokens in turn; "
                  f"one request first: HTTP {status} {text[:120]}...")
            if status != 200:
                raise common.BenchError(f"approve answered {status}, not 200; not loading it")
            warmup = None
            if args.http_warmup > 0 and warm_ids:
                warmup, _ = common.wrk_run(args, base_url, warm_script, args.http_warmup)
            print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s (after a {args.http_warmup:g} s "
                  f"warm-up on {len(warm_ids):,} other actions), each request on a different one of "
                  f"{len(measured_ids):,} pending actions:")
            figures, output = common.wrk_run(args, base_url, script, args.seconds)
            http["decide"] = figures
            report_wrk(figures, output, "decisions")
            if figures["requests"] > len(measured_ids):
                print(f"  warning: {figures['requests']:,.0f} requests for {len(measured_ids):,} pending actions: "
                      f"the threads ran out and the rest were 409s; raise --pending")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    ok = {"in process": ok_before, "first request": 1}
    for name, run in (("wrk warm-up", warmup), ("wrk", figures)):
        if run:
            ok[name] = int(run["requests"] - run["non2xx"])
    check = decisions_check()
    check["ok"] = sum(ok.values())
    http["check"] = check
    print(
        f"\nin the database afterwards (all {len(ids) + ok_before:,} part-1 actions):\n"
        f"  approved requests: {check['approved']:,}; 200s counted: {check['ok']:,} "
        f"({', '.join(f'{name} {n:,}' for name, n in ok.items())}); difference {check['approved'] - check['ok']:+,}\n"
        f"    (a request in flight when wrk stops is decided but not counted: up to {args.connections} a run)\n"
        f"  still pending: {check['pending']:,}; actions QUEUED with approved_by set: {check['queued']:,}\n"
        f"  hitl.approved deal events: {check['events']:,}, outbox rows: {check['outbox']:,}; "
        f"approved actions with exactly one of each: {check['one_each']:,} of {check['approved']:,}; "
        f"rows for actions not approved: {check['stray']}"
    )


def bench_decisions(args, env: dict, engine, tokens: list[str], results: dict) -> None:
    """Part 1: open the pending actions, decide some in process, then the rest under wrk."""
    from zakops.models import Action

    common.heading("1. approval decisions: the pending actions")
    ids = [f"{DECIDE_PREFIX}{i:06d}" for i in range(args.pending)]
    seconds = pending_open(ids, engine, args.batch)
    results["setup"] = {"count": len(ids), "seconds": seconds, "batch": args.batch}
    print(
        f"approval_request() x{len(ids):,} ({ACTION_TYPE}, requested by {engine.name}), {args.batch:,} calls per "
        f"transaction: {seconds:.1f} s, {len(ids) / seconds:,.0f} per second, {seconds / len(ids) * 1000:.2f} ms each; "
        f"{Action.objects.count():,} actions in the table"
    )
    if "http_skipped" in results:
        results["decide"] = decisions_in_process(args, ids, tokens)
        return
    split = min(args.warmup + args.decide_calls, len(ids) // 4)
    results["decide"] = decisions_in_process(args, ids[:split], tokens)
    decisions_http(args, env, ids[split:], tokens, results["http"], results["decide"]["ok"])


# --- 2. the queue ----------------------------------------------------------------------



def queue_seed(total: int, pending: int) -> None:
    """`total` actions over 90 days, `pending` of them PENDING_APPROVAL with an open
    request; half of the others have a decided request of their own."""
    from django.db import transaction
    from django.utils import timezone

    from approvals.models import ApprovalRequest
    from zakops.models import Action

    rng = random.Random(2)
    now = timezone.now()
    pending_at = set(rng.sample(range(total), pending))
    actions, requests = [], []
    for i in range(total):
        created = now - timedelta(seconds=rng.uniform(0, 90 * 86400))
        is_pending = i in pending_at
        level = common.weighted(rng, common.PENDING_LEVELS) if is_pending else rng.choice(list(common.SCORES))
        status = "PENDING_APPROVAL" if is_pending else common.weighted(rng, common.DONE_STATUSES)
        action = Action(action_id=f"{QUEUE_PREFIX}{i:06d}", action_type=ACTION_TYPE, title=f"Draft e-mail {i}",
                        status=status, risk_level=level, requires_human_review=True, created_by=ENGINE_NAME,
                        source="system", created_at=created, updated_at=created)
        actions.append(action)
        if is_pending or i % 2 == 0:
            state = "pending" if is_pending else ("rejected" if status == "REJECTED" else "approved")
            requests.append(ApprovalRequest(
                action_id=action.action_id, round=1, state=state, risk_level=level, score=common.SCORES[level], reasons=[],
                requires_approval=True, requested_by=ENGINE_NAME, requested_via=ENGINE_NAME,
                expires_at=now + timedelta(days=3) if is_pending else created + timedelta(days=3),
                decided_at=None if is_pending else created + timedelta(hours=1),
            ))
    with transaction.atomic():
        Action.objects.bulk_create(actions, batch_size=2000)
        ApprovalRequest.objects.bulk_create(requests, batch_size=2000)
    analyze(vacuum=True)


def queue_statements() -> list:
    """The selector's statements, as run: [(sql, params)]."""
    from django.db import connection

    from approvals.selectors import approval_queue

    statements = []

    def capture(execute, statement, params, many, context):
        statements.append((statement, params))
        return execute(statement, params, many, context)

    with connection.execute_wrapper(capture):
        approval_queue(status="PENDING_APPROVAL", limit=50)
    return statements


def queue_plans() -> list:
    """EXPLAIN ANALYZE of each of the selector's statements: (execution ms, the plan's lines)."""
    plans = []
    for statement, params in queue_statements():
        lines = [row[0] for row in sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params)]
        ms = next((float(line.split()[2]) for line in lines if line.startswith("Execution Time")), float("nan"))
        plans.append((ms, lines))
    return plans


def page_in_order(page: list) -> bool:
    """Critical first, then oldest first, each row with its open (pending) request."""
    severity = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    keys = [(severity.get(row["risk_level"], 4), row["created_at"]) for row in page]
    return keys == sorted(keys) and all(row["request_id"] and row["state"] == "pending" for row in page)


def queue_in_process(args, token: str) -> dict:
    from approvals.api.serializers import QueueItemSerializer
    from approvals.selectors import approval_queue

    common.heading("2a. GET /api/hitl/approval-queue?limit=50 in process")
    client = test_client()

    def page(_):
        response = client.get(QUEUE_PATH, HTTP_AUTHORIZATION=f"Bearer {token}")
        if response.status_code != 200:
            raise common.BenchError(f"the queue answered {response.status_code}: {response.content[:200]!r}")
        page.last = response  # its JSON is read after the timing

    def selector(_):
        return QueueItemSerializer(approval_queue(status="PENDING_APPROVAL", limit=50), many=True).data

    results = {}
    targets = [None] * (args.warmup + args.calls)
    results["request"], times = time_calls(page, targets, args.warmup)
    rows = page.last.json()
    report_calls(f"(a) the whole request through Django's test client, {len(rows)} rows a page",
                 results["request"], times, "in the rest (middleware, authentication, DRF, serializer, JSON)")
    first = rows[0] if rows else {}
    print(f"  the page: critical first, then oldest first, each row with its pending request: "
          f"{'yes' if page_in_order(rows) else 'NO'}; first row {first.get('action_id')} "
          f"({first.get('risk_level')}, created {first.get('created_at')})")
    results["request"]["in_sql"] = times.median_ms()
    p95 = results["request"]["p95"]
    print(f"  target: p95 < {TARGET_QUEUE_P95_MS:g} ms: {common.verdict(p95 < TARGET_QUEUE_P95_MS)}")

    results["selector"], times = time_calls(selector, targets, args.warmup)
    report_calls("(b) approval_queue() and QueueItemSerializer alone", results["selector"], times,
                 "in the rest (ORM, serializer)")

    results["plans"] = plans = queue_plans()
    print("\nEXPLAIN (ANALYZE, BUFFERS) of the selector's statements:")
    for n, (ms, lines) in enumerate(plans, 1):
        print(f"  statement {n}: {ms:.2f} ms")
        print("\n".join(f"    | {line[:160]}{'…' if len(line) > 160 else ''}" for line in lines))
    return results


QUEUE_LUA = """\
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer {token}"

""" + common.WRK_DONE_LUA


def queue_http(args, env: dict, token: str) -> dict:
    """(a) as many connections as workers, so that no request waits for a worker: the
    latency of a page; (b) the load of the other runs: throughput, latency with queueing."""
    common.heading(f"2b. GET {QUEUE_PATH} under the app server")
    port = common.free_port(args.port)
    one_each = argparse.Namespace(**{**vars(args), "threads": min(args.threads, args.workers),
                                     "connections": args.workers})
    results = {}
    folder = Path(tempfile.mkdtemp(prefix="hitl-bench-appr-"))
    try:
        script = folder / "queue.lua"
        script.write_text(QUEUE_LUA.format(token=token))
        with common.app_server(env, port, args.workers, folder) as base_url:
            url = base_url + QUEUE_PATH
            status, text = common.http_call(url, token=token)
            print(f"the app server with {args.workers} workers on 127.0.0.1:{port}; one request first: HTTP {status}, "
                  f"{len(text):,} bytes: {text[:100]}...")
            if status != 200:
                raise common.BenchError(f"the queue answered {status}, not 200; not loading it")
            if args.http_warmup > 0:
                common.wrk_run(args, url, script, args.http_warmup)
            for letter, key, run, note in (
                ("a", "latency", one_each, "one connection per worker, so no request waits for a worker"),
                ("b", "load", args, f"{args.connections} connections on {args.workers} workers: latency includes queueing"),
            ):
                print(f"\n({letter}) wrk -t{run.threads} -c{run.connections} -d{args.seconds:g}s, {note}:")
                results[key], output = common.wrk_run(run, url, script, args.seconds)
                report_wrk(results[key], output, "req")
        p95 = results["latency"]["p95_us"] / 1000
        print(f"\ntarget: p95 < {TARGET_QUEUE_P95_MS:g} ms without queueing: {common.verdict(p95 < TARGET_QUEUE_P95_MS)}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def bench_queue(args, env: dict, token: str, results: dict) -> None:
    from approvals.models import ApprovalRequest
    from zakops.models import Action

    common.heading("2. the approval queue: the data")
    started = time.monotonic()
    queue_seed(args.actions, args.queue_pending)
    pending = Action.objects.filter(status="PENDING_APPROVAL").count()
    levels = dict(Counter(Action.objects.filter(status="PENDING_APPROVAL").values_list("risk_level", flat=True)))
    print(
        f"bulk-inserted {args.actions:,} actions and their requests in {time.monotonic() - started:.1f} s, "
        f"then VACUUM (ANALYZE): "
        f"{Action.objects.count():,} actions in the table, {pending:,} PENDING_APPROVAL "
        f"({', '.join(f'{level} {n:,}' for level, n in sorted(levels.items()))}); "
        f"{ApprovalRequest.objects.count():,} approval requests"
    )
    results["queue"] = queue_in_process(args, token)
    results["queue"]["pending"] = pending
    if "http_skipped" not in results:
        results["http"]["queue"] = queue_http(args, env, token)


# --- summary ---------------------------------------------------------------------------


def in_process_rows(args, results: dict) -> list:
    rows = []
    if "setup" in results:
        setup = results["setup"]
        rows.append(("setup: approval_request()", f"{setup['count'] / setup['seconds']:,.0f} /s",
                     f"{setup['count']:,} in {setup['seconds']:.1f} s, {setup['batch']:,} per transaction"))
    if "decide" in results:
        decide = results["decide"]
        rows += [
            ("approve in process: p50 / p95", f"{decide['p50']:.2f} / {decide['p95']:.2f} ms",
             f"test client; {decide['in_sql']:.2f} ms in {decide['statements']} SQL statements (p50)"),
        ]
    if "queue" in results:
        queue = results["queue"]
        request, selector = queue["request"], queue["selector"]
        rows += [
            ("queue in process: p50 / p95", f"{request['p50']:.2f} / {request['p95']:.2f} ms",
             f"test client, {queue.get('pending', 0):,} pending, {request['in_sql']:.2f} ms in SQL (p50); "
             f"target p95 < {TARGET_QUEUE_P95_MS:g} ms: {common.verdict(request['p95'] < TARGET_QUEUE_P95_MS)}"),
            ("  selector + serializer alone: p50 / p95", f"{selector['p50']:.2f} / {selector['p95']:.2f} ms", ""),
        ]
    return rows


def http_rows(args, http: dict) -> list:
    load = f"{args.workers} app server workers, wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s"
    rows = []
    if "decide" in http:
        figures = http["decide"]
        rows += [
            ("HTTP approve", f"{figures['rps']:,.0f} /s",
             f"target >= {TARGET_DECISIONS_RPS:g}/s: {common.verdict(figures['rps'] >= TARGET_DECISIONS_RPS)}; {load}"),
            ("  p50 / p99 latency", f"{figures['p50_us'] / 1000:.2f} / {figures['p99_us'] / 1000:.2f} ms", ""),
            ("  non-2xx/3xx / socket errors", f"{figures['non2xx']:.0f} / {figures['errors']:.0f}",
             f"of {figures['requests']:,.0f} requests"),
        ]
    if "check" in http:
        check = http["check"]
        rows += [
            ("approved requests / 200s counted", f"{check['approved']:,} / {check['ok']:,}",
             f"difference {check['approved'] - check['ok']:+,}: requests in flight when wrk stopped"),
            ("approved with one event + one outbox row", f"{check['one_each']:,} / {check['approved']:,}",
             f"rows for actions not approved: {check['stray']}"),
        ]
    for key, label in (("latency", f"HTTP queue, {args.workers} connections"),
                       ("load", f"HTTP queue, {args.connections} connections")):
        figures = http.get("queue", {}).get(key)
        if figures is None:
            continue
        p95 = figures["p95_us"] / 1000
        rows += [
            (label, f"{figures['rps']:,.0f} req/s", load if key == "load" else f"{args.workers} app server workers"),
            ("  p50 / p95 / p99 latency", f"{figures['p50_us'] / 1000:.2f} / {p95:.2f} / {figures['p99_us'] / 1000:.2f} ms",
             f"target p95 < {TARGET_QUEUE_P95_MS:g} ms: {common.verdict(p95 < TARGET_QUEUE_P95_MS)}" if key == "latency"
             else "waiting for a worker included"),
            ("  non-2xx/3xx / socket errors", f"{figures['non2xx']:.0f} / {figures['errors']:.0f}",
             f"of {figures['requests']:,.0f} requests"),
        ]
    return rows


# --- main ------------------------------------------------------------------------------


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_shared_arguments(
        parser, database_help=common.POSTGRES_DATABASE_HELP, port=8767,
        seconds_help="wrk duration of each measured run, decisions and queue (default 10)",
        warmup_help="seconds of wrk before each measured run",
    )
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls first, in process (default 50)")
    decisions = parser.add_argument_group("1. decisions")
    decisions.add_argument(
        "--pending", type=int,
        help="pending actions opened (default: enough for 1,000 decisions/s, twice the target, through the wrk "
             "warm-up and run, plus the in-process ones: 12,550 with the other defaults)",
    )
    decisions.add_argument("--batch", type=int, default=1000,
                           help="approval_request() calls per transaction when opening them (default 1000)")
    decisions.add_argument("--decide-calls", type=int, default=500,
                           help="timed approvals in process, before wrk (default 500)")
    decisions.add_argument("--operators", type=int, default=4,
                           help="operators deciding, each with a token (default 4)")
    queue = parser.add_argument_group("2. the queue")
    queue.add_argument("--actions", type=int, default=100_000, help="actions in the table (default 100000)")
    queue.add_argument("--queue-pending", type=int, default=2000, help="of them PENDING_APPROVAL (default 2000)")
    queue.add_argument("--calls", type=int, default=500, help="timed queue requests in process (default 500)")
    common.add_final_arguments(parser)
    args = parser.parse_args()
    if args.pending is None:
        in_process = args.warmup + args.decide_calls
        args.pending = in_process if args.skip_http else in_process + round(1000 * (args.http_warmup + args.seconds))
    if not 1 <= args.operators < 100 or args.queue_pending > args.actions or args.pending < 100:
        parser.error("need 1 to 99 operators, --queue-pending <= --actions and --pending >= 100")
    return args


def measure(args, results: dict) -> None:
    with database(args) as db:
        env = common.django_start(db, "wrk, the app server and PostgreSQL")
        load = os.getloadavg()[0]
        print(f"load average (1 min) before the run: {load:.2f}"
              + ("; the machine has been busy, which lowers the figures" if load > 0.5 else ""))
        bench_rows_delete()  # what an interrupted run on a given database left
        try:
            engine, tokens = people(args.operators)
            if "http_skipped" not in results:
                results["http"] = {}
            bench_decisions(args, env, engine, tokens, results)
            bench_rows_delete(DECIDE_PREFIX)  # the queue's table holds part 2's actions only
            bench_queue(args, env, tokens[0], results)
        finally:
            if not db.scratch:
                bench_rows_delete()
                people_delete()


def main() -> int:
    args = arguments()
    return common.bench_main(
        args, wrk_seconds=3 * args.seconds + 2 * args.http_warmup, measure=measure,
        in_process_rows=in_process_rows, http_rows=http_rows, http_name="HTTP approve and queue",
    )


if __name__ == "__main__":
    sys.exit(main())
