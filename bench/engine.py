"""The engine's hot path, `POST assess-risk` and `GET actions/{id}/approval` (also with
`If-None-Match`), under the app server against a reference service (bench/reference/,
psycopg in autocommit and asyncpg; the ratio is against the faster), all loaded with wrk
in the same run, interleaved; then how soon a decision made in this process is polled
from the app server's workers (cross-process staleness), and the workers' memory.

    .venv/bin/python bench/engine.py [--seconds 5] [--rounds 3] [--workers 1 2] [--quick]
"""

import contextlib
import http.client
import importlib
import importlib.util
import json
import statistics
import sys
import time
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
# The reference's drivers (bench/reference/app.py, REFERENCE_DRIVER): the ratio is against
# the faster of the fair two; "psycopg-transactions" is the reference as published before
# (no autocommit: BEGIN, SELECT, COMMIT a poll), measured for the record only.
REFERENCES = {"reference": "psycopg", "asyncpg": "asyncpg", "handicapped": "psycopg-transactions"}
FAIR = ("reference", "asyncpg")
ENDPOINTS = (("assess", f"POST {ASSESS_PATH}", "assess-risk"), ("poll", f"GET {POLL_PATH}", "poll"))
DECIDER = "bench-engine-decider@example.com"


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


def answers_compare(ours_url: str, reference_url: str, token: str, ids: list[str], name: str = "reference") -> dict:
    harness.heading(f"The same questions to ours and to {name} (every field both answer)")
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


def reference_server(env: dict, port: int, workers: int, folder: Path, driver: str):
    reference_env = {**env, "REFERENCE_DATABASE_URL": env["DATABASE_URL"], "REFERENCE_DRIVER": driver}
    return uvicorn(reference_env, port, workers, folder, "app:app")


def servers_start(stack, args, env: dict, workers: int, folder: Path) -> dict:
    starts = [("ours", lambda p: serving.app_server(env, p, workers, folder))]
    starts += [(side, lambda p, d=driver: reference_server(env, p, workers, folder, d)) for side, driver in REFERENCES.items()]
    starts += [
        ("wsgi floor", lambda p: serving.app_server(env, p, workers, folder, app="bench.reference.floors:wsgi")),
        ("asgi floor", lambda p: uvicorn(env, p, workers, folder, "floors:asgi")),
    ]
    servers, port = {}, args.port
    for key, start in starts:
        servers[key] = stack.enter_context(start(port))
        port = serving.port_of(servers[key]) + 1
    ports = ", ".join(f"{key} :{serving.port_of(url)}" for key, url in servers.items())
    print(f"ours: the app server; references: uvicorn {' '.join(UVICORN_FLAGS)}, drivers "
          f"{', '.join(f'{side} = {driver}' for side, driver in REFERENCES.items())}; floors: WSGI under the "
          f"app server, ASGI under uvicorn. Ports: {ports}")
    return servers


class Poller:
    """GETs of the poll over one keep-alive connection (so one worker process answers them)."""

    def __init__(self, base_url: str, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", serving.port_of(base_url), timeout=10)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, action_id: str, **headers) -> tuple[int, dict, bytes]:
        self.conn.request("GET", POLL_PATH.format(action_id=action_id), headers={**self.headers, **headers})
        response = self.conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()

    def close(self):
        self.conn.close()


def etags_of(base_url: str, token: str, ids: list[str]) -> list[str]:
    poller = Poller(base_url, token)
    try:
        etags = []
        for action_id in ids:
            status, headers, body = poller.get(action_id)
            if status != 200 or "etag" not in {name.lower() for name in headers}:
                raise harness.BenchError(f"ours: the poll of {action_id} answered {status} without an ETag: {body[:200]!r}")
            etags.append(next(value for name, value in headers.items() if name.lower() == "etag"))
        return etags
    finally:
        poller.close()


def if_none_match_lua(ids: list[str], etags: list[str], token: str) -> str:
    """wrk's setup, init and request for polls each sending its action's current ETag."""
    pairs = ", ".join(f"{{{serving.lua_string(POLL_PATH.format(action_id=a))}, {serving.lua_string(e)}}}"
                      for a, e in zip(ids, etags))
    return "\n".join([
        f"local polls = {{{pairs}}}",
        "local requests = {}",
        'function setup(thread) table.insert(threads, thread); thread:set("seed", #threads) end',
        "function init(args)",
        "  math.randomseed(seed)",
        "  for i, poll in ipairs(polls) do",
        f"    requests[i] = wrk.format(nil, poll[1], {{[\"Authorization\"] = {serving.lua_string('Bearer ' + token)},"
        " [\"If-None-Match\"] = poll[2]})",
        "  end",
        "end",
        "function request() return requests[math.random(#requests)] end",
    ]) + "\n"


def wrk_runs(servers: dict, folder: Path, token: str, ids: list[str]) -> dict:
    """(endpoint, side): (url, script), in the order of a round."""
    assess = {"method": "POST", "body": json.dumps(ASSESS_BODY), "headers": {"Content-Type": "application/json"}}
    poll = {"paths": [POLL_PATH.format(action_id=action_id) for action_id in ids]}
    auth = {"Authorization": f"Bearer {token}"}
    runs = {}
    for side in ("ours", *FAIR):
        headers = {**assess["headers"], **(auth if side == "ours" else {})}
        runs[("assess", side)] = (f"{servers[side]}{ASSESS_PATH}", serving.wrk_script(folder, f"assess-{side}", **{**assess, "headers": headers}))
    for side in ("ours", *REFERENCES):
        headers = auth if side == "ours" else {}
        runs[("poll", side)] = (f"{servers[side]}/", serving.wrk_script(folder, f"poll-{side}", **poll, headers=headers))
    lua = if_none_match_lua(ids, etags_of(servers["ours"], token, ids), token)
    runs[("poll", "ours, If-None-Match")] = (f"{servers['ours']}/", serving.wrk_script(folder, "poll-inm", expect=304, lua=lua))
    for side in ("wsgi floor", "asgi floor"):
        runs[("floor", side)] = (f"{servers[side]}/", serving.wrk_script(folder, side.replace(" ", "-")))
    return runs


def against_fair(figures: dict, rps: dict) -> None:
    """Each endpoint's ratio against the faster fair reference (the higher median), and the
    poll with If-None-Match and against the handicapped reference beside it."""
    for endpoint, name, _short in ENDPOINTS:
        fastest = max(FAIR, key=lambda side: statistics.median(rps[(endpoint, side)]))
        figures[endpoint] = harness.compared(name, rps[(endpoint, "ours")], rps[(endpoint, fastest)], unit="req/s",
                                             digits=0, aim=AIM_RPS_RATIO, higher_is_better=True, other=fastest)
        figures[endpoint]["against"] = fastest
        figures[endpoint]["references"] = {side: statistics.median(rps[(endpoint, side)]) for side in FAIR}
    fastest = figures["poll"]["against"]
    figures["poll_inm"] = harness.compared(f"GET {POLL_PATH} with If-None-Match (304s)", rps[("poll", "ours, If-None-Match")],
                                           rps[("poll", fastest)], unit="req/s", digits=0, higher_is_better=True,
                                           other=fastest)
    figures["poll_handicapped"] = harness.compared(f"GET {POLL_PATH} against the reference as published before",
                                                   rps[("poll", "ours")], rps[("poll", "handicapped")], unit="req/s",
                                                   digits=0, higher_is_better=True, other="handicapped")


def staleness(base_url: str, token: str, ids: list[str], decider) -> dict:
    """A decision made in this process (process A, through the service, committed), then
    polls of its action from the app server (process B, one keep-alive connection, which
    had polled it twice before: its worker keeps the pending request) until one answers the
    decision: the milliseconds from the commit to that answer, and the stale answers."""
    from approvals.services.decisions import approval_decide

    delays, stale, missed = [], 0, 0
    for action_id in ids:
        poller = Poller(base_url, token)
        try:
            for _ in range(2):
                poller.get(action_id)
            approval_decide(action_id=action_id, decision="reject", actor=decider, reason="bench: staleness")
            committed = time.perf_counter()
            while True:
                status, _headers, body = poller.get(action_id)
                if status == 200 and json.loads(body)["state"] == "rejected":
                    delays.append((time.perf_counter() - committed) * 1000)
                    break
                stale += 1
                if time.perf_counter() - committed > 5:
                    missed += 1
                    break
        finally:
            poller.close()
    ordered = sorted(delays)
    found = {"decisions": len(ids), "stale": stale, "missed": missed,
             "p50": harness.percentile(ordered, 0.50) if ordered else None,
             "p99": harness.percentile(ordered, 0.99) if ordered else None, "max": ordered[-1] if ordered else None}
    print(f"cross-process staleness, {len(ids)} decisions: from the commit to the first poll answering it "
          f"p50 {found['p50']:.2f} ms, p99 {found['p99']:.2f} ms, max {found['max']:.2f} ms; "
          f"{stale} stale answers in all, {missed} never seen within 5 s")
    return found


def memory_compared(figures: dict, servers: dict) -> None:
    memory = {key: serving.server_memory(url) for key, url in servers.items()}
    print("memory after the load, per worker (mean), from /proc/<pid>/smaps_rollup:")
    for key, entry in memory.items():
        print(f"  {key:<11}  RSS {entry['rss']:6.1f} MiB  PSS {entry['pss']:6.1f} MiB  "
              f"(workers {', '.join(map(str, entry['pids']))}; total RSS {entry['rss_total']:.1f}, "
              f"PSS {entry['pss_total']:.1f} MiB)")
    against = figures["poll"]["against"]  # the fair reference the poll was compared with
    for kind in ("rss", "pss"):
        figures[kind] = harness.compared(f"  {kind.upper()}", [memory["ours"][kind]], [memory[against][kind]], unit="MiB",
                                         digits=1, aim=AIM_MEMORY_RATIO, what="per worker", other=against)


def bench_workers(args, env: dict, token: str, ids: list[str], decided: list[str], decider, workers: int, folder: Path,
                  results: dict) -> None:
    harness.heading(f"{workers} worker process{'es' if workers > 1 else ''} a side")
    figures = results["by_workers"].setdefault(workers, {"non2xx": 0, "errors": 0})
    with contextlib.ExitStack() as stack:
        servers = servers_start(stack, args, env, workers, folder)
        if "answers" not in results:
            results["answers"] = answers_compare(servers["ours"], servers["reference"], token, ids)
            results["answers_asyncpg"] = answers_compare(servers["ours"], servers["asyncpg"], token, ids, "asyncpg")
        runs = wrk_runs(servers, folder, token, ids)
        if args.http_warmup > 0:
            for url, script in runs.values():
                serving.wrk_run(args, url, script, args.http_warmup)
        print(f"{serving.wrk_command(args)} per run, {args.rounds} rounds (after {args.http_warmup:g} s of warm-up each):")

        def measured(key):
            def one_run(number: int) -> float:
                run = serving.wrk_run(args, *runs[key], args.seconds)
                figures["non2xx"] += run["non2xx"]
                figures["errors"] += run["errors"]
                unexpected = f"  {run['unexpected']} not 304" if run.get("unexpected") else ""
                print(f"  round {number}  {key[0]:<6} {key[1]:<21}  {run_line(run)}{unexpected}", flush=True)
                return run["rps"]

            return one_run

        rps = harness.interleaved({key: measured(key) for key in runs}, args.rounds)
        print()
        against_fair(figures, rps)
        figures["floors"] = {side: statistics.median(rps[("floor", side)]) for side in ("wsgi floor", "asgi floor")}
        print(f"floors: WSGI under the app server {figures['floors']['wsgi floor']:,.0f} req/s, "
              f"ASGI under uvicorn {figures['floors']['asgi floor']:,.0f} req/s")
        figures["staleness"] = staleness(servers["ours"], token, decided, decider)
        memory_compared(figures, servers)


def summary_rows(args, results: dict) -> list:
    http, rows = results.get("http", {}), []
    for key, side in (("answers", "reference"), ("answers_asyncpg", "asyncpg")):
        if answers := http.get(key):
            same = "same" if not answers["differences"] else f"{answers['differences']} differences"
            rows.append((f"answers, ours vs {side}", same, f"{answers['questions']} questions, the fields both have"))
    if "sql" in http:
        rows.append(("poll SQL, ours vs reference", "same" if http["sql"] is None else "DIFFERENT", ""))
    for workers, figures in http.get("by_workers", {}).items():
        if "floors" not in figures:
            continue
        for endpoint, _name, short in ENDPOINTS:
            ratio = figures[endpoint]
            others = ", ".join(f"{side} {value:,.0f}" for side, value in ratio["references"].items())
            rows.append((f"-w {workers} {short}: ours/{ratio['against']}", f"{ratio['ratio']:.2f}x",
                         f"median {ratio['ours']:,.0f} req/s; references {others}; {ratio['note']}"))
        for key, label in (("poll_inm", "poll with If-None-Match"), ("poll_handicapped", "poll: ours/handicapped")):
            ratio = figures[key]
            rows.append((f"-w {workers} {label}", f"{ratio['ratio']:.2f}x", f"median {ratio['ours']:,.0f} vs {ratio['theirs']:,.0f} req/s"))
        floors = figures["floors"]
        rows.append((f"-w {workers} floors, WSGI / ASGI",
                     f"{floors['wsgi floor']:,.0f} / {floors['asgi floor']:,.0f} req/s", "the app server / uvicorn, a fixed JSON"))
        if stale := figures.get("staleness"):
            rows.append((f"-w {workers} staleness p50 / p99", f"{stale['p50']:.2f} / {stale['p99']:.2f} ms",
                         f"{stale['decisions']} decisions, max {stale['max']:.2f} ms, {stale['stale']} stale answers, "
                         f"{stale['missed']} missed"))
        for kind in ("rss", "pss"):
            if ratio := figures.get(kind):
                rows.append((f"-w {workers} worker {kind.upper()}: ours/{figures['poll']['against']}", f"{ratio['ratio']:.2f}x",
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
    parser.add_argument("--decisions", type=int, default=200,
                        help="decisions timed for the cross-process staleness, per worker count (default 200)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run, a few minutes: 2 s runs, 2 rounds, 1 s warm-up, 300 actions, 50 decisions")
    harness.final_arguments(parser, skip_http=False)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.http_warmup, args.actions, args.decisions = 2, 2, 1, 300, 50
    if args.rounds < 1 or args.seconds <= 0 or args.actions < 1 or args.decisions < 1 or min(args.workers) < 1:
        parser.error("--rounds, --seconds, --actions, --decisions and --workers must be positive")
    return args


def measure(args, results: dict) -> None:
    if "http_skipped" in results:
        raise harness.BenchError("this benchmark needs wrk: apt-get install wrk")
    missing = [name for name in ("fastapi", "uvicorn", "uvloop", "httptools", "psycopg_pool", "asyncpg")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise harness.BenchError(f"{', '.join(missing)} not installed: pip install -r bench/requirements.txt")
    harness.load_print()
    http = results["http"] = {"by_workers": {}}
    with harness.bench_database(args, "engine") as db, harness.scratch_folder("engine") as folder:
        env = harness.django_start(db, "wrk, the app server and uvicorn")
        with harness.bench_rows(db, ACTION_PREFIX, also=cleanup):
            token = harness.service_token(env)
            from accounts.selectors import actor_of
            from accounts.services import operator_upsert, service_account_ensure

            ids = [f"{ACTION_PREFIX}{n:05d}" for n in range(args.actions)]
            decided = {workers: [f"{ACTION_PREFIX}decided-{workers}-{n:05d}" for n in range(args.decisions)]
                       for workers in args.workers}
            engine = actor_of(service_account_ensure(name=SERVICE_ACCOUNT))
            harness.pending_open(ids + [a for group in decided.values() for a in group], engine, ACTION_TYPE)
            decider = actor_of(operator_upsert(email=DECIDER, role="operator", password=DECIDER * 2, name="Bench decider"))
            print(f"{len(ids):,} pending actions ({ACTION_TYPE}) opened for the poll, {args.decisions} a worker count "
                  "for the decisions; the engine's bearer token made")
            http["sql"] = poll_sql_check(ids[0])
            print("poll SQL: " + ("the same statement on both sides" if http["sql"] is None else http["sql"]))
            for workers in args.workers:
                bench_workers(args, env, token, ids, decided[workers], decider, workers, folder, http)


def cleanup() -> None:
    harness.token_revoke()
    harness.people_delete(emails=[DECIDER])


if __name__ == "__main__":
    args = arguments()
    runs = len(args.workers) * (10 * (args.rounds * args.seconds + args.http_warmup + 1) + args.decisions * 0.2)
    sys.exit(harness.bench_main(args, measure, rows=summary_rows, http_name="HTTP", extra_seconds=runs))
