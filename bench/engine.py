"""The engine's hot path, `POST assess-risk` and `GET actions/{id}/approval`, under the app
server against a reference service (bench/reference/), both loaded with wrk in the same run.

    .venv/bin/python bench/engine.py [--seconds 5] [--rounds 3] [--workers 1 2]
"""

import contextlib
import importlib
import importlib.util
import json
import statistics
import sys
from pathlib import Path

import harness  # bench/harness.py and serving.py: this script's folder is first on sys.path
import serving

REFERENCE = Path(__file__).resolve().parent / "reference"
UVICORN_FLAGS = ("--loop", "uvloop", "--http", "httptools")
ASSESS_PATH = "/api/hitl/assess-risk"
POLL_PATH = "/api/hitl/actions/{action_id}/approval"
ASSESS_BODY = {"action_type": "COMMUNICATION.SEND_EMAIL", "action_data": {"to": "cfo@seller.example"}}
ACTION_PREFIX = "bench-engine-"
ACTION_TYPE = "COMMUNICATION.DRAFT_EMAIL"  # medium risk: the request stays pending
SERVICE_ACCOUNT = "bench"  # the account `create_service_token bench` makes
AIM_RPS_RATIO = 1.0  # ours/reference req/s, at least
AIM_MEMORY_RATIO = 1.2  # ours/reference worker memory, at most
SIDES = ("ours", "reference")
ENDPOINTS = (("assess", f"POST {ASSESS_PATH}", "assess-risk"), ("poll", f"GET {POLL_PATH}", "poll"))


def poll_sql_check(action_id: str) -> str | None:
    """None if the reference runs the very SQL the app's selector runs; else both."""
    from approvals.selectors import approval_polled_stored

    if str(REFERENCE) not in sys.path:
        sys.path.append(str(REFERENCE))  # last: bench/reference/app.py, not an app of the project
    ours = [statement for statement, _ in harness.captured(lambda: approval_polled_stored(action_id=action_id))]
    reference = [importlib.import_module("app").POLL_SQL]
    return None if ours == reference else f"the app's selector runs:\n  {ours}\nthe reference runs:\n  {reference}"


def uvicorn(env: dict, port: int, workers: int, folder: Path, app: str):
    """uvicorn serving `app` (module:name in bench/reference/) with the reference's flags on
    127.0.0.1, on `port` or the next free one. With one worker uvicorn serves from its own
    process, with more from a supervisor's children."""
    port = serving.free_port(port)
    cmd = [
        harness.PYTHON, "-m", "uvicorn", app, "--app-dir", REFERENCE, "--host", "127.0.0.1", "--port", port,
        "--workers", workers, *UVICORN_FLAGS, "--no-access-log", "--log-level", "warning",
    ]
    return serving.served(cmd, env, port, folder / f"uvicorn-{port}.log", "uvicorn")


def assess_cases() -> list[dict]:
    """The body wrk sends, the catalogue's types with their sample inputs, and a few that
    bring in the modifiers (bulk, financial, external, a closed deal, test mode)."""
    from zakops.catalogue import ACTION_CATALOGUE

    cases = [ASSESS_BODY]
    cases += [{"action_type": entry.action_type, "action_data": entry.inputs} for entry in ACTION_CATALOGUE]
    cases += [
        {"action_type": "FINANCIAL.TRANSFER_FUNDS", "action_data": {"amount": "12,500", "iban": "DE00"},
         "context": {"deal_stage": "closed"}},
        {"action_type": "COMMUNICATION.SEND_EMAIL",
         "action_data": {"recipients": [f"user{n}@client.example" for n in range(12)]}, "context": {"is_test_mode": True}},
        {"action_type": "crm.get_contact", "action_data": {"email": "Ann <ann@zakops.com>"}},
        {"action_type": "UNKNOWN.NEW_ACTION"},
    ]
    return cases


def answers_differ(label: str, ours: tuple, reference: tuple) -> tuple[list[str], set]:
    """The differences in the fields both answers have, and the fields only one has."""
    if ours[0] != 200 or reference[0] != 200:
        head = [answer[:120].decode(errors="replace") for _, answer in (ours, reference)]
        return [f"{label}: HTTP {ours[0]} (ours) vs {reference[0]} (reference): {head[0]} | {head[1]}"], set()
    mine, theirs = json.loads(ours[1]), json.loads(reference[1])
    differences = [
        f"{label}: {key}: ours {mine[key]!r}, reference {theirs[key]!r}"
        for key in sorted(mine.keys() & theirs.keys())
        if mine[key] != theirs[key]
    ]
    return differences, set(mine.keys() ^ theirs.keys())


def answers_compare(ours_url: str, reference_url: str, token: str, ids: list[str]) -> dict:
    harness.heading("The same questions to both (every field both answer)")
    serving.http_expect(f"{ours_url}{ASSESS_PATH}", 200, f"ours: {ASSESS_PATH}", body=ASSESS_BODY, token=token)
    serving.http_expect(f"{reference_url}{ASSESS_PATH}", 200, f"reference: {ASSESS_PATH}", body=ASSESS_BODY)
    questions = [(f"assess {body['action_type']}", ASSESS_PATH, {"body": body}) for body in assess_cases()]
    questions += [(f"poll {action_id}", POLL_PATH.format(action_id=action_id), {}) for action_id in ids[:5]]
    differences, one_sided = [], set()
    for label, path, call in questions:
        found, only = answers_differ(label, serving.http_call(f"{ours_url}{path}", token=token, **call),
                                     serving.http_call(f"{reference_url}{path}", **call))
        differences += found
        one_sided |= only
    for line in differences:
        print(f"  DIFFERENT {line}")
    polls = min(len(ids), 5)
    print(
        f"{len(questions) - polls} assessments and {polls} polls: "
        + (f"{len(differences)} differences" if differences else "the same answers")
        + (f"; fields only one side has: {', '.join(sorted(one_sided))}" if one_sided else "")
    )
    return {"questions": len(questions), "differences": len(differences)}


def run_line(figures: dict) -> str:
    line = f"{figures['rps']:>9,.0f} req/s  p50 {figures['p50_us'] / 1000:6.2f} ms  p99 {figures['p99_us'] / 1000:6.2f} ms"
    if figures["non2xx"] or figures["errors"]:
        line += f"  {serving.wrk_errors(figures)}"
    return line


def bench_workers(args, env: dict, token: str, ids: list[str], workers: int, folder: Path, results: dict) -> None:
    harness.heading(f"{workers} worker process{'es' if workers > 1 else ''} a side")
    reference_env = {**env, "REFERENCE_DATABASE_URL": env["DATABASE_URL"]}
    figures = results["by_workers"].setdefault(workers, {"non2xx": 0, "errors": 0})
    with contextlib.ExitStack() as stack:
        servers, port = {}, args.port
        for key, start in (
            ("ours", lambda p: serving.app_server(env, p, workers, folder)),
            ("reference", lambda p: uvicorn(reference_env, p, workers, folder, "app:app")),
            ("wsgi floor", lambda p: serving.app_server(env, p, workers, folder, app="bench.reference.floors:wsgi")),
            ("asgi floor", lambda p: uvicorn(env, p, workers, folder, "floors:asgi")),
        ):
            servers[key] = stack.enter_context(start(port))
            port = serving.port_of(servers[key]) + 1
        ports = {key: f":{serving.port_of(url)}" for key, url in servers.items()}
        print(f"ours: the app server on {ports['ours']}; reference: uvicorn {' '.join(UVICORN_FLAGS)} on "
              f"{ports['reference']}; floors: WSGI under the app server on {ports['wsgi floor']}, "
              f"ASGI under uvicorn on {ports['asgi floor']}")
        if "answers" not in results:
            results["answers"] = answers_compare(servers["ours"], servers["reference"], token, ids)

        assess = {"method": "POST", "body": json.dumps(ASSESS_BODY), "headers": {"Content-Type": "application/json"}}
        poll = {"paths": [POLL_PATH.format(action_id=action_id) for action_id in ids]}
        auth = {"Authorization": f"Bearer {token}"}
        runs = {}  # (endpoint, side): (url, script), in the order of a round
        for endpoint, options, path in (("assess", assess, ASSESS_PATH), ("poll", poll, "/"), ("floor", {}, "/")):
            for side in SIDES if endpoint != "floor" else ("wsgi floor", "asgi floor"):
                headers = {**options.get("headers", {}), **(auth if side == "ours" else {})}
                name = f"{endpoint}-{side.replace(' ', '-')}"
                script = serving.wrk_script(folder, name, **{**options, "headers": headers})
                runs[(endpoint, side)] = (f"{servers[side]}{path}", script)
        if args.http_warmup > 0:
            for url, script in runs.values():
                serving.wrk_run(args, url, script, args.http_warmup)
        print(f"{serving.wrk_command(args)} per run, {args.rounds} rounds (after {args.http_warmup:g} s of warm-up each):")

        def measured(key):
            def one_run(number: int) -> float:
                run = serving.wrk_run(args, *runs[key], args.seconds)
                figures["non2xx"] += run["non2xx"]
                figures["errors"] += run["errors"]
                print(f"  round {number}  {key[0]:<6} {key[1]:<10}  {run_line(run)}", flush=True)
                return run["rps"]

            return one_run

        rps = harness.interleaved({key: measured(key) for key in runs}, args.rounds)
        print()
        for endpoint, name, _short in ENDPOINTS:
            figures[endpoint] = harness.compared(name, rps[(endpoint, "ours")], rps[(endpoint, "reference")],
                                                 unit="req/s", digits=0, aim=AIM_RPS_RATIO, higher_is_better=True)
        figures["floors"] = {side: statistics.median(rps[("floor", side)]) for side in ("wsgi floor", "asgi floor")}
        print(f"floors: WSGI under the app server {figures['floors']['wsgi floor']:,.0f} req/s, "
              f"ASGI under uvicorn {figures['floors']['asgi floor']:,.0f} req/s")

        memory = {key: serving.server_memory(url) for key, url in servers.items()}
        print("memory after the load, per worker (mean), from /proc/<pid>/smaps_rollup:")
        for key, entry in memory.items():
            print(f"  {key:<10}  RSS {entry['rss']:6.1f} MiB  PSS {entry['pss']:6.1f} MiB  "
                  f"(workers {', '.join(map(str, entry['pids']))}; total RSS {entry['rss_total']:.1f}, "
                  f"PSS {entry['pss_total']:.1f} MiB)")
        for kind in ("rss", "pss"):
            figures[kind] = harness.compared(f"  {kind.upper()}", [memory["ours"][kind]], [memory["reference"][kind]],
                                             unit="MiB", digits=1, aim=AIM_MEMORY_RATIO, what="per worker")


def summary_rows(args, results: dict) -> list:
    http, rows = results.get("http", {}), []
    if answers := http.get("answers"):
        same = "same" if not answers["differences"] else f"{answers['differences']} differences"
        rows.append(("answers, ours vs reference", same, f"{answers['questions']} questions, the fields both have"))
    if "sql" in http:
        rows.append(("poll SQL, ours vs reference", "same" if http["sql"] is None else "DIFFERENT", ""))
    for workers, figures in http.get("by_workers", {}).items():
        if "floors" not in figures:
            continue
        for endpoint, _name, short in ENDPOINTS:
            ratio = figures[endpoint]
            rows.append((f"-w {workers} {short}: ours/reference", f"{ratio['ratio']:.2f}x",
                         f"median {ratio['ours']:,.0f} vs {ratio['theirs']:,.0f} req/s; {ratio['note']}"))
        floors = figures["floors"]
        rows.append((f"-w {workers} floors, WSGI / ASGI",
                     f"{floors['wsgi floor']:,.0f} / {floors['asgi floor']:,.0f} req/s", "the app server / uvicorn, a fixed JSON"))
        for kind in ("rss", "pss"):
            if ratio := figures.get(kind):
                rows.append((f"-w {workers} worker {kind.upper()}: ours/reference", f"{ratio['ratio']:.2f}x",
                             f"{ratio['ours']:.1f} vs {ratio['theirs']:.1f} MiB per worker; {ratio['note']}"))
        if figures["non2xx"] or figures["errors"]:
            rows.append((f"-w {workers} non-2xx/3xx / socket errors", f"{figures['non2xx']:.0f} / {figures['errors']:.0f}",
                         "all runs"))
    return rows


def arguments():
    parser = harness.bench_parser(__doc__)
    harness.server_arguments(
        parser, port=8780, seconds=5, seconds_help="wrk duration of each run (default 5)", workers=[1, 2], warmup=1,
        warmup_help="seconds of wrk on each server first (default 1)", whole_seconds=True,
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--actions", type=int, default=1000, help="pending actions the poll picks from (default 1000)")
    harness.final_arguments(parser, skip_http=False)
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0 or args.actions < 1 or min(args.workers) < 1:
        parser.error("--rounds, --seconds, --actions and --workers must be positive")
    return args


def measure(args, results: dict) -> None:
    if "http_skipped" in results:
        raise harness.BenchError("this benchmark needs wrk: apt-get install wrk")
    missing = [name for name in ("fastapi", "uvicorn", "uvloop", "httptools", "psycopg_pool")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise harness.BenchError(f"{', '.join(missing)} not installed: pip install -r bench/requirements.txt")
    harness.load_print()
    http = results["http"] = {"by_workers": {}}
    with harness.bench_database(args, "engine") as db, harness.scratch_folder("engine") as folder:
        env = harness.django_start(db, "wrk, the app server and uvicorn")
        with harness.bench_rows(db, ACTION_PREFIX, also=harness.token_revoke):
            token = harness.service_token(env)
            from accounts.selectors import actor_of
            from accounts.services import service_account_ensure

            ids = [f"{ACTION_PREFIX}{n:05d}" for n in range(args.actions)]
            harness.pending_open(ids, actor_of(service_account_ensure(name=SERVICE_ACCOUNT)), ACTION_TYPE)
            print(f"{len(ids):,} pending actions ({ACTION_TYPE}) opened for the poll; the engine's bearer token made")
            http["sql"] = poll_sql_check(ids[0])
            print("poll SQL: " + ("the same statement on both sides" if http["sql"] is None else http["sql"]))
            for workers in args.workers:
                bench_workers(args, env, token, ids, workers, folder, http)


if __name__ == "__main__":
    args = arguments()
    runs = len(args.workers) * 6 * (args.rounds * args.seconds + args.http_warmup + 1)
    sys.exit(harness.bench_main(args, measure, rows=summary_rows, http_name="HTTP", extra_seconds=runs))
