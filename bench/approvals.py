"""Approval decisions (`POST actions/{id}/approve`) and the approval queue (`GET
approval-queue`), in process through Django's test client and under the app server with wrk.

    .venv/bin/python bench/approvals.py [--seconds 10] [--workers 2] [--pending 12550]
"""

import functools
import json
import random
import sys
import time
from collections import Counter
from datetime import timedelta

import harness  # bench/harness.py and serving.py: this script's folder is first on sys.path
import serving

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


def time_calls(call, targets: list, warmup: int) -> tuple[dict, harness.Statements]:
    """p50/p95/mean ms of `call(target)`, the first `warmup` untimed; and the time in SQL."""
    times = harness.Statements()
    return harness.summarize(harness.time_calls(call, targets, warmup, times)), times


def report_calls(label: str, figures: dict, times: harness.Statements, rest: str) -> None:
    in_sql = times.median_ms()
    print(
        f"{label}: {figures['calls']:,} calls\n"
        f"  p50 {figures['p50']:.2f} ms, p95 {figures['p95']:.2f} ms, mean {figures['mean']:.2f} ms\n"
        f"  median per call: {in_sql:.2f} ms in {times.count()} SQL statements (execute -> rows back), "
        f"{figures['p50'] - in_sql:.2f} ms {rest}\n"
        f"  statements per call (median count, ms): {times.verbs()}"
    )


def report_wrk(figures: dict, unit: str) -> None:
    print(f"  {serving.wrk_figures(figures, unit)}, {serving.wrk_errors(figures)}")


# --- 1. decisions ----------------------------------------------------------------------


def decider(tokens: list[str]):
    """A call that approves the action it is given through the test client, with the
    operators' tokens in turn; it counts the answers by status."""
    client = harness.test_client()
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
    harness.heading("1a. POST /api/hitl/actions/{action_id}/approve in process (Django test client)")
    decide = decider(tokens)
    figures, times = time_calls(decide, ids, args.warmup)
    figures["ok"] = decide.statuses[200]
    figures["statuses"] = dict(decide.statuses)
    report_calls(f"{len(ids):,} pending actions, each approved once ({args.warmup} untimed first)", figures, times,
                 "in the rest (COMMIT, middleware, DRF, ORM, Python)")
    figures["in_sql"], figures["statements"] = times.median_ms(), times.count()
    print(f"  answers: {', '.join(f'HTTP {code} x{n:,}' for code, n in sorted(decide.statuses.items()))}")
    print(f"  one process, one decision at a time: at most {1000 / figures['mean']:,.0f} decisions/s")
    return figures


# POST approve, each request on a different pending action: setup() deals the ids in the
# file out to the threads (id i to thread i mod THREADS), and each thread sends one request
# for each of its ids, in order.
DECIDE_LUA = """\
local thread_count = @THREADS@
local tokens = {@TOKENS@}
local shares = nil
local dealt = 0
local requests = {}
local sent = 0

function setup(thread)
  if shares == nil then
    shares = {}
    for n = 1, thread_count do shares[n] = {} end
    local i = 0
    for action_id in io.lines("@IDS_PATH@") do
      local share = shares[i % thread_count + 1]
      share[#share + 1] = action_id
      i = i + 1
    end
  end
  dealt = dealt + 1
  thread:set("action_ids", shares[dealt])
end

function init(args)
  for i, action_id in ipairs(action_ids) do
    local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[i % #tokens + 1]}
    requests[i] = wrk.format("POST", "/api/hitl/actions/" .. action_id .. "/approve", headers, wrk.body)
  end
end

function request()
  sent = sent + 1
  return requests[(sent - 1) % #requests + 1]  -- past the end: decided already, a 409
end
"""


def decide_script(folder, name: str, ids: list[str], tokens: list[str], threads: int):
    ids_path = folder / f"{name}.ids"
    ids_path.write_text("".join(f"{action_id}\n" for action_id in ids))
    lua = (DECIDE_LUA.replace("@THREADS@", str(threads)).replace("@IDS_PATH@", str(ids_path))
           .replace("@TOKENS@", ", ".join(map(serving.lua_string, tokens))))
    return serving.wrk_script(folder, name, method="POST", body=json.dumps(DECISION), lua=lua)


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
    harness.heading("1b. POST /api/hitl/actions/{action_id}/approve under the app server")
    first, rest = ids[0], ids[1:]
    warm = int(len(rest) * args.http_warmup / (args.http_warmup + args.seconds))
    warm_ids, measured_ids = rest[:warm], rest[warm:]
    with harness.scratch_folder("appr") as folder:
        warm_script = decide_script(folder, "warm", warm_ids, tokens, args.threads)
        script = decide_script(folder, "decide", measured_ids, tokens, args.threads)
        with serving.app_server(env, args.port, args.workers, folder) as base_url:
            text = serving.http_expect(base_url + DECIDE_PATH.format(action_id=first), 200, "approve", body=DECISION,
                                       token=tokens[0])
            print(f"the app server with {args.workers} workers on {base_url}; {len(tokens)} operators' tokens in turn; "
                  f"one request first: HTTP 200 {text[:120].decode(errors='replace')}...")
            warmup = None
            if args.http_warmup > 0 and warm_ids:
                warmup = serving.wrk_run(args, base_url, warm_script, args.http_warmup)
            print(f"\n{serving.wrk_command(args)} (after a {args.http_warmup:g} s "
                  f"warm-up on {len(warm_ids):,} other actions), each request on a different one of "
                  f"{len(measured_ids):,} pending actions:")
            figures = http["decide"] = serving.wrk_run(args, base_url, script, args.seconds, show=True)
            report_wrk(figures, "decisions")
            if figures["requests"] > len(measured_ids):
                print(f"  warning: {figures['requests']:,.0f} requests for {len(measured_ids):,} pending actions: "
                      f"the threads ran out and the rest were 409s; raise --pending")

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

    harness.heading("1. approval decisions: the pending actions")
    ids = [f"{DECIDE_PREFIX}{i:06d}" for i in range(args.pending)]
    seconds = harness.pending_open(ids, engine, ACTION_TYPE, batch=args.batch)
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
        level = harness.weighted(rng, harness.PENDING_LEVELS) if is_pending else rng.choice(list(harness.SCORES))
        status = "PENDING_APPROVAL" if is_pending else harness.weighted(rng, harness.DONE_STATUSES)
        action = Action(action_id=f"{QUEUE_PREFIX}{i:06d}", action_type=ACTION_TYPE, title=f"Draft e-mail {i}",
                        status=status, risk_level=level, requires_human_review=True, created_by=ENGINE_NAME,
                        source="system", created_at=created, updated_at=created)
        actions.append(action)
        if is_pending or i % 2 == 0:
            state = "pending" if is_pending else ("rejected" if status == "REJECTED" else "approved")
            requests.append(ApprovalRequest(
                action_id=action.action_id, round=1, state=state, risk_level=level, score=harness.SCORES[level], reasons=[],
                requires_approval=True, requested_by=ENGINE_NAME, requested_via=ENGINE_NAME,
                expires_at=now + timedelta(days=3) if is_pending else created + timedelta(days=3),
                decided_at=None if is_pending else created + timedelta(hours=1),
            ))
    with transaction.atomic():
        Action.objects.bulk_create(actions, batch_size=2000)
        ApprovalRequest.objects.bulk_create(requests, batch_size=2000)
    # part 1's rows, deleted, are cleared too, so that autovacuum does not run during the timing
    harness.sql("VACUUM (ANALYZE) zakops.actions, approvals_approvalrequest, zakops.deal_events, zakops.outbox")


def page_in_order(page: list) -> bool:
    """Critical first, then oldest first, each row with its open (pending) request."""
    severity = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    keys = [(severity.get(row["risk_level"], 4), row["created_at"]) for row in page]
    return keys == sorted(keys) and all(row["request_id"] and row["state"] == "pending" for row in page)


def queue_in_process(args, token: str) -> dict:
    from approvals.api.serializers import QueueItemSerializer
    from approvals.selectors import approval_queue

    harness.heading("2a. GET /api/hitl/approval-queue?limit=50 in process")
    client = harness.test_client()

    def page(_):
        response = client.get(QUEUE_PATH, HTTP_AUTHORIZATION=f"Bearer {token}")
        if response.status_code != 200:
            raise harness.BenchError(f"the queue answered {response.status_code}: {response.content[:200]!r}")
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
    print(f"  target: p95 < {TARGET_QUEUE_P95_MS:g} ms: {harness.verdict(p95 < TARGET_QUEUE_P95_MS)}")

    results["selector"], times = time_calls(selector, targets, args.warmup)
    report_calls("(b) approval_queue() and QueueItemSerializer alone", results["selector"], times,
                 "in the rest (ORM, serializer)")

    statements = harness.captured(lambda: approval_queue(status="PENDING_APPROVAL", limit=50))
    results["plans"] = plans = [harness.explain(statement, params) for statement, params in statements]
    print("\nEXPLAIN (ANALYZE, BUFFERS) of the selector's statements:")
    for n, (ms, lines) in enumerate(plans, 1):
        print(f"  statement {n}: {ms:.2f} ms")
        print("\n".join(f"    | {line[:160]}{'…' if len(line) > 160 else ''}" for line in lines))
    return results


def queue_http(args, env: dict, token: str) -> dict:
    """(a) as many connections as workers, so that no request waits for a worker: the
    latency of a page; (b) the load of the other runs: throughput, latency with queueing."""
    harness.heading(f"2b. GET {QUEUE_PATH} under the app server")
    results = {}
    with harness.scratch_folder("appr") as folder:
        script = serving.wrk_script(folder, "queue", headers={"Authorization": f"Bearer {token}"})
        with serving.app_server(env, args.port, args.workers, folder) as base_url:
            url = base_url + QUEUE_PATH
            text = serving.http_expect(url, 200, "the queue", token=token)
            print(f"the app server with {args.workers} workers on {base_url}; one request first: HTTP 200, "
                  f"{len(text):,} bytes: {text[:100].decode(errors='replace')}...")
            if args.http_warmup > 0:
                serving.wrk_run(args, url, script, args.http_warmup)
            for letter, key, connections, note in (
                ("a", "latency", args.workers, "one connection per worker, so no request waits for a worker"),
                ("b", "load", None, f"{args.connections} connections on {args.workers} workers: latency includes queueing"),
            ):
                print(f"\n({letter}) {serving.wrk_command(args, connections)}, {note}:")
                results[key] = serving.wrk_run(args, url, script, args.seconds, connections=connections, show=True)
                report_wrk(results[key], "req")
        p95 = results["latency"]["p95_us"] / 1000
        print(f"\ntarget: p95 < {TARGET_QUEUE_P95_MS:g} ms without queueing: {harness.verdict(p95 < TARGET_QUEUE_P95_MS)}")
    return results


def bench_queue(args, env: dict, token: str, results: dict) -> None:
    from approvals.models import ApprovalRequest
    from zakops.models import Action

    harness.heading("2. the approval queue: the data")
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


# --- summary and main ------------------------------------------------------------------


def summary_rows(args, results: dict) -> list:
    rows = []
    if "setup" in results:
        setup = results["setup"]
        rows.append(("setup: approval_request()", f"{setup['count'] / setup['seconds']:,.0f} /s",
                     f"{setup['count']:,} in {setup['seconds']:.1f} s, {setup['batch']:,} per transaction"))
    if "decide" in results:
        decide = results["decide"]
        rows.append(("approve in process: p50 / p95", f"{decide['p50']:.2f} / {decide['p95']:.2f} ms",
                     f"test client; {decide['in_sql']:.2f} ms in {decide['statements']} SQL statements (p50)"))
    if "queue" in results:
        queue = results["queue"]
        request, selector = queue["request"], queue["selector"]
        rows += [
            ("queue in process: p50 / p95", f"{request['p50']:.2f} / {request['p95']:.2f} ms",
             f"test client, {queue.get('pending', 0):,} pending, {request['in_sql']:.2f} ms in SQL (p50); "
             f"target p95 < {TARGET_QUEUE_P95_MS:g} ms: {harness.verdict(request['p95'] < TARGET_QUEUE_P95_MS)}"),
            ("  selector + serializer alone: p50 / p95", f"{selector['p50']:.2f} / {selector['p95']:.2f} ms", ""),
        ]
    http = results.get("http", {})
    load = f"{args.workers} app server workers, {serving.wrk_command(args)}"
    if "decide" in http:
        rps = http["decide"]["rps"]
        rows += serving.wrk_rows("HTTP approve", http["decide"], f"target >= {TARGET_DECISIONS_RPS:g}/s: "
                                 f"{harness.verdict(rps >= TARGET_DECISIONS_RPS)}; {load}", unit="/s")
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
        if (figures := http.get("queue", {}).get(key)) is None:
            continue
        p95 = figures["p95_us"] / 1000
        rows += serving.wrk_rows(
            label, figures, load if key == "load" else f"{args.workers} app server workers", percentiles=(50, 95, 99),
            latency_note=f"target p95 < {TARGET_QUEUE_P95_MS:g} ms: {harness.verdict(p95 < TARGET_QUEUE_P95_MS)}"
            if key == "latency" else "waiting for a worker included",
        )
    return rows


def arguments():
    parser = harness.bench_parser(__doc__)
    harness.server_arguments(parser, port=8767,
                             seconds_help="wrk duration of each measured run, decisions and queue (default 10)",
                             warmup_help="seconds of wrk before each measured run")
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
    harness.final_arguments(parser)
    args = parser.parse_args()
    if args.pending is None:
        in_process = args.warmup + args.decide_calls
        args.pending = in_process if args.skip_http else in_process + round(1000 * (args.http_warmup + args.seconds))
    if not 1 <= args.operators < 100 or args.queue_pending > args.actions or args.pending < 100:
        parser.error("need 1 to 99 operators, --queue-pending <= --actions and --pending >= 100")
    return args


def measure(args, results: dict) -> None:
    emails = [OPERATOR_EMAIL.format(n=n) for n in range(1, 100)]
    with harness.bench_database(args, "appr") as db:
        env = harness.django_start(db, "wrk, the app server and PostgreSQL")
        harness.load_print()
        forget_people = functools.partial(harness.people_delete, usernames=[ENGINE_NAME], emails=emails)
        with harness.bench_rows(db, BENCH_PREFIX, also=forget_people):
            engine, tokens = people(args.operators)
            if "http_skipped" not in results:
                results["http"] = {}
            bench_decisions(args, env, engine, tokens, results)
            harness.bench_rows_delete(DECIDE_PREFIX)  # the queue's table holds part 2's actions only
            bench_queue(args, env, tokens[0], results)


if __name__ == "__main__":
    args = arguments()
    sys.exit(harness.bench_main(args, measure, rows=summary_rows, http_name="HTTP approve and queue",
                                extra_seconds=3 * args.seconds + 2 * args.http_warmup))
