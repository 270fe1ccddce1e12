"""A mixed load run: the engine and reviewers at once under the app server, driven by locust
(bench/locustfile.py); it checks the database afterwards and asserts nothing about speed.

    .venv/bin/python -m pip install -r bench/requirements.txt     # locust
    .venv/bin/python bench/mixed.py [--seconds 60] [--engines 16] [--reviewers 4] [--workers 2]
"""

import json
import logging
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import harness  # bench/harness.py and serving.py: this script's folder is first on sys.path
import serving

ACTION_PREFIX = "bench-mixed-"
ENGINE_NAME = "bench-mixed-engine"
REVIEWER_EMAIL = "bench-reviewer-{n}@bench.example.com"
BACKLOG = 300  # pending requests opened before the run, so reviewers have work at once


def arguments():
    parser = harness.bench_parser(__doc__)
    parser.add_argument("--seconds", type=int, default=60, help="how long locust runs (default 60)")
    parser.add_argument("--engines", type=int, default=16, help="engine users (default 16)")
    parser.add_argument("--reviewers", type=int, default=4, help="reviewers, each signed in (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the app server (default 2)")
    parser.add_argument("--port", type=int, default=8093, help="preferred port on 127.0.0.1 (default 8093)")
    harness.final_arguments(parser, skip_http=False, timeout=300, plus="the run")
    return parser.parse_args()


def prepare(args, folder: Path) -> dict:
    """Accounts, tokens and a backlog of pending requests; returns locust's environment."""
    from accounts.selectors import actor_of
    from accounts.services import api_token_create, operator_upsert, service_account_ensure
    from approvals.services.requests import approval_request

    engine = service_account_ensure(name=ENGINE_NAME)
    token = api_token_create(user=engine, name="bench mixed")[1]
    reviewers = []
    for n in range(1, args.reviewers + 1):
        password = secrets.token_urlsafe(16)
        operator_upsert(email=REVIEWER_EMAIL.format(n=n), role="operator", password=password, name=f"Bench reviewer {n}")
        reviewers.append(f"{REVIEWER_EMAIL.format(n=n)}:{password}")
    started = time.perf_counter()
    for i in range(BACKLOG):
        approval_request(
            action_id=f"{ACTION_PREFIX}backlog-{i:05d}", action_type="COMMUNICATION.DRAFT_EMAIL",
            title=f"Backlog draft {i}", requester=actor_of(engine),
        )
    print(f"{BACKLOG} pending requests opened in {time.perf_counter() - started:.1f} s; {args.reviewers} reviewers")
    return {
        "BENCH_ENGINE_TOKEN": token,
        "BENCH_REVIEWERS": ",".join(reviewers),
        "BENCH_ACTION_PREFIX": ACTION_PREFIX,
        "BENCH_OUTCOMES": str(folder / "outcomes.json"),
    }


def locust_run(args, base_url: str, folder: Path, env: dict) -> subprocess.CompletedProcess:
    users = args.engines + args.reviewers
    command = [
        harness.PYTHON, "-m", "locust", "-f", str(harness.ROOT / "bench" / "locustfile.py"), "--headless",
        "--host", base_url, "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{args.seconds}s",
        "--stop-timeout", "5", "--csv", str(folder / "mixed"), "--only-summary", "--loglevel", "WARNING",
    ]
    return subprocess.run(
        [str(c) for c in command], cwd=harness.ROOT, env=env, capture_output=True, text=True, timeout=args.seconds + 120
    )


def print_stats(outcomes: dict) -> None:
    harness.heading("Per endpoint (ms)")
    rows = [*outcomes["endpoints"], {**outcomes["all"], "name": "all"}]
    width = max(len(row["name"]) for row in rows)
    print(f"{'endpoint':<{width}}  {'requests':>8}  {'req/s':>7}  {'p50':>5}  {'p95':>5}  {'p99':>5}  {'errors':>6}")
    for row in rows:
        print(
            f"{row['name']:<{width}}  {row['requests']:>8}  {row['rps']:>7.1f}  "
            f"{row['p50']:>5.0f}  {row['p95']:>5.0f}  {row['p99']:>5.0f}  {row['errors']:>6}"
        )


def database_check(outcomes: dict) -> list[str]:
    """What the database must show after the run; a list of problems (empty: all good)."""
    from django.db.models import Count

    from approvals.models import ApprovalRequest, RequestState
    from approvals.services.events import EVENTS
    from zakops.models import DealEvent, ExecutionCheckpoint, OutboxEvent

    problems = []
    requests = ApprovalRequest.objects.filter(action__action_id__startswith=ACTION_PREFIX)
    by_person = requests.filter(decided_by__isnull=False)
    events = DealEvent.objects.filter(details__action_id__startswith=ACTION_PREFIX)
    outbox = OutboxEvent.objects.filter(aggregate_id__startswith=ACTION_PREFIX)

    def per_request(rows, key):
        return dict(rows.values_list(key).annotate(n=Count("pk")).values_list(key, "n"))

    opened = per_request(events.filter(event_type=EVENTS[RequestState.PENDING]), "details__request_id")
    opened_out = per_request(outbox.filter(event_type=EVENTS[RequestState.PENDING]), "event_data__request_id")
    for request_id in map(str, requests.values_list("pk", flat=True)):
        if opened.get(request_id) != 1 or opened_out.get(request_id) != 1:
            problems.append(f"request {request_id}: {opened.get(request_id, 0)} requested events, {opened_out.get(request_id, 0)} outbox rows")
    decided_states = (RequestState.APPROVED, RequestState.REJECTED)
    for state in decided_states:
        ids = {str(pk) for pk in by_person.filter(state=state).values_list("pk", flat=True)}
        got = per_request(events.filter(event_type=EVENTS[state]), "details__request_id")
        got_out = per_request(outbox.filter(event_type=EVENTS[state]), "event_data__request_id")
        for request_id in ids | set(got) | set(got_out):
            if request_id not in ids or got.get(request_id) != 1 or got_out.get(request_id) != 1:
                problems.append(f"{state} {request_id}: {got.get(request_id, 0)} events, {got_out.get(request_id, 0)} outbox rows")
    created = requests.exclude(action__action_id__contains="-backlog-").count()
    if created != outcomes["opened"]:
        problems.append(f"{outcomes['opened']} requests answered 201, {created} in the database")
    decided = by_person.filter(state__in=decided_states).count()
    if decided != outcomes["decided"]:
        problems.append(f"{outcomes['decided']} decisions answered as won, {decided} in the database")
    numbers = ExecutionCheckpoint.objects.filter(action__action_id__startswith=ACTION_PREFIX).values_list("action_id", "sequence_number")
    per_action = {}
    for action_id, number in numbers:
        per_action.setdefault(action_id, []).append(number)
    gaps = [a for a, got in per_action.items() if sorted(got) != list(range(len(got)))]
    if gaps:
        problems.append(f"{len(gaps)} actions with checkpoint numbers that are not 0..n-1, e.g. {gaps[:3]}")
    saved = sum(len(v) for v in per_action.values())
    if saved != outcomes["checkpoints"]:
        problems.append(f"{outcomes['checkpoints']} checkpoints answered 201, {saved} in the database")
    print(
        f"database: {requests.count()} requests ({created} opened in the run), {decided} decided by reviewers "
        f"({outcomes['conflicts']} times a reviewer was second: told so on the page), {saved} checkpoints "
        f"on {len(per_action)} actions"
    )
    return problems


def measure(args, results: dict) -> int:
    print(f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    harness.load_print()
    with harness.bench_database(args, "mixed") as db, harness.scratch_folder("mixed") as folder:
        env = harness.django_start(
            db, f"the app server ({args.workers} workers), locust ({args.engines} engine users, {args.reviewers} "
                f"reviewers) and PostgreSQL",
            DJANGO_STATIC_ROOT=str(folder / "static"), LOG_LEVEL="INFO",
        )
        logging.getLogger("hitl").setLevel(logging.WARNING)  # this process's own lines: setup only
        harness.run([harness.PYTHON, "manage.py", "collectstatic", "--no-input", "-v0"], env=env)
        locust_env = {**env, **prepare(args, folder)}
        with serving.app_server(env, args.port, args.workers, folder) as base_url:
            harness.heading(f"locust for {args.seconds} s against {base_url}")
            done = locust_run(args, base_url, folder, locust_env)
        if not (folder / "outcomes.json").exists():
            raise harness.BenchError(f"locust wrote no figures ({done.returncode}):\n{done.stdout}{done.stderr}")
        outcomes = json.loads((folder / "outcomes.json").read_text())
        print_stats(outcomes)
        total = outcomes["all"]
        errors = total["errors"]
        if errors:
            print(f"\nerrors:\n{(folder / 'mixed_failures.csv').read_text()}")
        harness.heading("Database")
        problems = database_check(outcomes)
        for problem in problems[:20]:
            print(f"  problem: {problem}")
        log = serving.app_server_log(folder, serving.port_of(base_url)).read_text()
        log_lines = sum(1 for line in log.splitlines() if '"hitl.requests"' in line)
        harness.heading("Summary")
        print(f"{total['rps']:.0f} requests/s over {total['requests']} requests; "
              f"p50 {total['p50']:.0f} ms, p95 {total['p95']:.0f} ms, p99 {total['p99']:.0f} ms; errors {errors}; "
              f"{log_lines} request log lines")
        print("database: every request and decision has exactly one event and one outbox row" if not problems
              else f"database: {len(problems)} problems")
        return 0 if not errors and not problems else 1


if __name__ == "__main__":
    args = arguments()
    sys.exit(harness.bench_main(args, measure, extra_seconds=args.seconds))
