"""Benchmark of the engine's hot path against a reference service, measured in the same run.
It prints figures and asserts nothing.

Ours: the app under its production server command (`_common.app_server`), production
settings, the engine's bearer token. The reference (bench/reference/): FastAPI on uvicorn
(--loop uvloop --http httptools), no authentication, the same enabled rules read from the
same table and held in memory, the poll through psycopg's async pool with the SQL the app's
selector runs. Floors: a fixed JSON answer, as WSGI under our server command and as ASGI
under uvicorn with the reference's flags.

With wrk (-t2 -c16, --seconds per run) in --rounds interleaved rounds (ours, reference,
ours, reference, the floors), at 1 and 2 worker processes a side (--workers):
`POST /api/hitl/assess-risk` and `GET /api/hitl/actions/{action_id}/approval` (a pending
action picked at random per request). The headline is the median req/s per side and the
ratio ours/reference (aim: at least 1.0x); then each side's worker memory after the load,
RSS and PSS (aim: ours at most 1.2x the reference's). Before the load, both services are
asked the same questions and every field both answer is compared.

    .venv/bin/python bench/engine.py [--seconds 5] [--rounds 3] [--workers 1 2]
"""

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import _common as common  # bench/_common.py: this script's folder is first on sys.path

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


# --- the database ----------------------------------------------------------------------


def database(args):
    """The given PostgreSQL database, or a scratch one dropped at the end."""
    return common.postgres_database(args, f"hitl_bench_engine_{os.getpid()}")


def bench_rows_delete() -> None:
    """The bench's actions, their requests and the rows the services wrote for them."""
    from django.db import connection

    like = f"{ACTION_PREFIX}%"
    common.approval_requests_delete(like)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM zakops.deal_events WHERE details->>'action_id' LIKE %s", [like])
        cursor.execute("DELETE FROM zakops.outbox WHERE aggregate_id LIKE %s", [like])
        cursor.execute("DELETE FROM zakops.actions WHERE action_id LIKE %s", [like])


def pending_open(count: int) -> list[str]:
    """`count` actions with a pending request, opened by the bench's service account through
    approval_request() in one transaction; their ids."""
    from django.db import connection, transaction

    from accounts.selectors import actor_of
    from accounts.services import service_account_ensure
    from approvals.services.requests import approval_request

    engine = actor_of(service_account_ensure(name=SERVICE_ACCOUNT))
    ids = [f"{ACTION_PREFIX}{n:05d}" for n in range(count)]
    with transaction.atomic():
        for action_id in ids:
            request, created = approval_request(action_id=action_id, action_type=ACTION_TYPE, requester=engine)
            if not created or request.state != "pending":
                raise common.BenchError(f"approval_request({action_id}) gave a {request.state} request")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE zakops.actions, approvals_approvalrequest")
    return ids


def reference_module(name: str):
    """A module of bench/reference/, imported in this process (the folder goes last on sys.path)."""
    if str(REFERENCE) not in sys.path:
        sys.path.append(str(REFERENCE))
    return importlib.import_module(name)


def poll_sql_check(action_id: str) -> str | None:
    """None if the reference runs the very SQL the app's selector runs; else both."""
    from django.db import connection

    from approvals.selectors import approval_polled

    seen = []

    def record(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        approval_polled(action_id=action_id)
    ours, reference = seen, [reference_module("app").POLL_SQL]
    return None if ours == reference else f"the app's selector runs:\n  {ours}\nthe reference runs:\n  {reference}"


# --- the servers -----------------------------------------------------------------------


@contextlib.contextmanager
def uvicorn(env: dict, port: int, workers: int, folder: Path, app: str):
    """uvicorn serving `app` (module:name in bench/reference/) with the reference's flags on
    127.0.0.1:port until the block ends, however it ends; yields the base URL. With one
    worker uvicorn serves from its own process, with more from a supervisor's children."""
    log_path = folder / f"uvicorn-{port}.log"
    cmd = [
        common.PYTHON, "-m", "uvicorn", app, "--app-dir", REFERENCE, "--host", "127.0.0.1", "--port", port,
        "--workers", workers, *UVICORN_FLAGS, "--no-access-log", "--log-level", "warning",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(c) for c in cmd], cwd=common.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            common.server_wait(proc, base_url, log_path, name="uvicorn")
            yield base_url
        finally:
            common.server_stop(proc)


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


# --- wrk scripts -----------------------------------------------------------------------


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII text is a Lua string literal too


def lua_auth(token: str | None) -> str:
    return f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else ""


def lua_assess(token: str | None) -> str:
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = {lua_string(json.dumps(ASSESS_BODY))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        + lua_auth(token) + "\n" + common.WRK_DONE_LUA
    )


# Each thread draws the actions from its own random sequence.
LUA_POLL = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end
function init(args)
  math.randomseed(seed)
end
function request()
  return wrk.format("GET", "/api/hitl/actions/" .. ids[math.random(#ids)] .. "/approval")
end

"""


def lua_poll(ids: list[str], token: str | None) -> str:
    return "ids = {" + ", ".join(lua_string(i) for i in ids) + "}\n" + lua_auth(token) + LUA_POLL + common.WRK_DONE_LUA


# --- the answers both give -------------------------------------------------------------


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
        return [f"{label}: HTTP {ours[0]} (ours) vs {reference[0]} (reference): {ours[1][:120]} | {reference[1][:120]}"], set()
    mine, theirs = json.loads(ours[1]), json.loads(reference[1])
    differences = [
        f"{label}: {key}: ours {mine[key]!r}, reference {theirs[key]!r}"
        for key in sorted(mine.keys() & theirs.keys())
        if mine[key] != theirs[key]
    ]
    return differences, set(mine.keys() ^ theirs.keys())


def answers_compare(ours_url: str, reference_url: str, token: str, ids: list[str]) -> dict:
    common.heading("The same questions to both (every field both answer)")
    cases = assess_cases()
    first_ours = common.http_call(f"{ours_url}{ASSESS_PATH}", body=ASSESS_BODY, token=token)
    first_reference = common.http_call(f"{reference_url}{ASSESS_PATH}", body=ASSESS_BODY)
    for side, (status, body) in zip(SIDES, (first_ours, first_reference)):
        if status != 200:
            raise common.BenchError(f"{side}: {ASSESS_PATH} answered {status}, not 200; not loading it: {body[:300]}")
    differences, one_sided = [], set()
    for body in cases:
        found, only = answers_differ(
            f"assess {body['action_type']}",
            common.http_call(f"{ours_url}{ASSESS_PATH}", body=body, token=token),
            common.http_call(f"{reference_url}{ASSESS_PATH}", body=body),
        )
        differences += found
        one_sided |= only
    polled = ids[:5]
    for action_id in polled:
        path = POLL_PATH.format(action_id=action_id)
        found, only = answers_differ(
            f"poll {action_id}", common.http_call(f"{ours_url}{path}", token=token), common.http_call(f"{reference_url}{path}")
        )
        differences += found
        one_sided |= only
    for line in differences:
        print(f"  DIFFERENT {line}")
    print(
        f"{len(cases)} assessments and {len(polled)} polls: "
        + (f"{len(differences)} differences" if differences else "the same answers")
        + (f"; fields only one side has: {', '.join(sorted(one_sided))}" if one_sided else "")
    )
    return {"questions": len(cases) + len(polled), "differences": len(differences)}


# --- the measurement -------------------------------------------------------------------


def memory_of(base_url: str) -> dict:
    """The workers' pids and their mean and total RSS and PSS in MiB."""
    _master, workers = common.server_processes(port_of(base_url))
    figures = [common.process_memory(pid) for pid in workers]
    return {
        "pids": workers,
        "rss": statistics.fmean(f["rss"] for f in figures),
        "pss": statistics.fmean(f["pss"] for f in figures),
        "rss_total": sum(f["rss"] for f in figures),
        "pss_total": sum(f["pss"] for f in figures),
    }


def run_line(figures: dict) -> str:
    line = (
        f"{figures['rps']:>9,.0f} req/s  p50 {figures['p50_us'] / 1000:6.2f} ms  p99 {figures['p99_us'] / 1000:6.2f} ms"
    )
    if figures["non2xx"] or figures["errors"]:
        line += f"  non-2xx/3xx {figures['non2xx']:.0f}, socket errors {figures['errors']:.0f}"
    return line


def ratio_line(name: str, medians: dict) -> str:
    ratio = medians["ours"] / medians["reference"]
    return (
        f"{name}: median ours {medians['ours']:,.0f} req/s, reference {medians['reference']:,.0f} req/s -> "
        f"ours/reference {ratio:.2f}x (aim >= {AIM_RPS_RATIO:.1f}x: {common.verdict(ratio >= AIM_RPS_RATIO)})"
    )


def bench_workers(args, env: dict, token: str, ids: list[str], workers: int, folder: Path, results: dict) -> None:
    common.heading(f"{workers} worker process{'es' if workers > 1 else ''} a side")
    reference_env = {**env, "REFERENCE_DATABASE_URL": env["DATABASE_URL"]}
    figures = results["by_workers"].setdefault(workers, {"rps": {}, "non2xx": 0, "errors": 0})
    next_port = args.port
    with contextlib.ExitStack() as stack:
        servers = {}
        for key, start in (
            ("ours", lambda p: common.app_server(env, p, workers, folder)),
            ("reference", lambda p: uvicorn(reference_env, p, workers, folder, "app:app")),
            ("wsgi floor", lambda p: common.app_server(env, p, workers, folder, app="bench.reference.floors:wsgi")),
            ("asgi floor", lambda p: uvicorn(env, p, workers, folder, "floors:asgi")),
        ):
            port = common.free_port(next_port)
            servers[key] = stack.enter_context(start(port))
            next_port = port + 1
        print(
            f"ours: the app server on :{port_of(servers['ours'])}; reference: uvicorn {' '.join(UVICORN_FLAGS)} on "
            f":{port_of(servers['reference'])}; floors: WSGI under the app server on :{port_of(servers['wsgi floor'])}, "
            f"ASGI under uvicorn on :{port_of(servers['asgi floor'])}"
        )
        if "answers" not in results:
            results["answers"] = answers_compare(servers["ours"], servers["reference"], token, ids)

        scripts = {
            ("assess", "ours"): lua_assess(token), ("assess", "reference"): lua_assess(None),
            ("poll", "ours"): lua_poll(ids, token), ("poll", "reference"): lua_poll(ids, None),
            ("floor", "wsgi floor"): common.WRK_DONE_LUA, ("floor", "asgi floor"): common.WRK_DONE_LUA,
        }
        runs = []
        for (endpoint, side), text in scripts.items():
            script = folder / f"{endpoint}-{side.replace(' ', '-')}.lua"
            script.write_text(text)
            path = ASSESS_PATH if endpoint == "assess" else "/"
            runs.append((endpoint, side, f"{servers[side]}{path}", script))

        if args.http_warmup > 0:
            for _endpoint, _side, url, script in runs:
                common.wrk_run(args, url, script, args.http_warmup)
        print(
            f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s per run, {args.rounds} rounds "
            f"(after {args.http_warmup:g} s of warm-up each):"
        )
        for round_ in range(1, args.rounds + 1):
            for endpoint, side, url, script in runs:
                run, _output = common.wrk_run(args, url, script, args.seconds)
                figures["rps"].setdefault((endpoint, side), []).append(run["rps"])
                figures["non2xx"] += run["non2xx"]
                figures["errors"] += run["errors"]
                print(f"  round {round_}  {endpoint:<6} {side:<10}  {run_line(run)}", flush=True)

        medians = {key: statistics.median(values) for key, values in figures["rps"].items()}
        figures["medians"] = medians
        print()
        for endpoint, name in (("assess", f"POST {ASSESS_PATH}"), ("poll", f"GET {POLL_PATH}")):
            print(ratio_line(name, {side: medians[(endpoint, side)] for side in SIDES}))
        print(
            f"floors: WSGI under the app server {medians[('floor', 'wsgi floor')]:,.0f} req/s, "
            f"ASGI under uvicorn {medians[('floor', 'asgi floor')]:,.0f} req/s"
        )

        memory = {key: memory_of(url) for key, url in servers.items()}
        figures["memory"] = memory
        print("memory after the load, per worker (mean), from /proc/<pid>/smaps_rollup:")
        for key, entry in memory.items():
            print(
                f"  {key:<10}  RSS {entry['rss']:6.1f} MiB  PSS {entry['pss']:6.1f} MiB  "
                f"(workers {', '.join(map(str, entry['pids']))}; total RSS {entry['rss_total']:.1f}, "
                f"PSS {entry['pss_total']:.1f} MiB)"
            )
        for kind in ("rss", "pss"):
            ratio = memory["ours"][kind] / memory["reference"][kind]
            print(
                f"  ours/reference {kind.upper()}: {ratio:.2f}x "
                f"(aim <= {AIM_MEMORY_RATIO:.1f}x: {common.verdict(ratio <= AIM_MEMORY_RATIO)})"
            )


# --- summary ---------------------------------------------------------------------------


def in_process_rows(args, results: dict) -> list:
    return []


def http_rows(args, http: dict) -> list:
    rows = []
    answers = http.get("answers")
    if answers:
        same = "same" if not answers["differences"] else f"{answers['differences']} differences"
        rows.append(("answers, ours vs reference", same, f"{answers['questions']} questions, the fields both have"))
    if "sql" in http:
        rows.append(("poll SQL, ours vs reference", "same" if http["sql"] is None else "DIFFERENT", ""))
    for workers, figures in http.get("by_workers", {}).items():
        medians = figures.get("medians")
        if not medians:
            continue
        for endpoint, name in (("assess", "assess-risk"), ("poll", "poll")):
            ours, reference = medians[(endpoint, "ours")], medians[(endpoint, "reference")]
            ratio = ours / reference
            rows.append((
                f"-w {workers} {name}: ours/reference", f"{ratio:.2f}x",
                f"median {ours:,.0f} vs {reference:,.0f} req/s; aim >= {AIM_RPS_RATIO:.1f}x: "
                f"{common.verdict(ratio >= AIM_RPS_RATIO)}",
            ))
        rows.append((
            f"-w {workers} floors, WSGI / ASGI",
            f"{medians[('floor', 'wsgi floor')]:,.0f} / {medians[('floor', 'asgi floor')]:,.0f} req/s",
            "the app server / uvicorn, a fixed JSON",
        ))
        memory = figures.get("memory")
        if memory:
            for kind in ("rss", "pss"):
                ours, reference = memory["ours"][kind], memory["reference"][kind]
                ratio = ours / reference
                rows.append((
                    f"-w {workers} worker {kind.upper()}: ours/reference", f"{ratio:.2f}x",
                    f"{ours:.1f} vs {reference:.1f} MiB per worker; aim <= {AIM_MEMORY_RATIO:.1f}x: "
                    f"{common.verdict(ratio <= AIM_MEMORY_RATIO)}",
                ))
        if figures["non2xx"] or figures["errors"]:
            rows.append((f"-w {workers} non-2xx/3xx / socket errors", f"{figures['non2xx']:.0f} / {figures['errors']:.0f}",
                         "all runs"))
    return rows


# --- main ------------------------------------------------------------------------------


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or None,
                        help=common.POSTGRES_DATABASE_HELP)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration of each run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker processes a side, one set of rounds each (default: 1 2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--actions", type=int, default=1000, help="pending actions the poll picks from (default 1000)")
    parser.add_argument("--port", type=int, default=8780, help="first port tried on 127.0.0.1 (default 8780)")
    parser.add_argument("--http-warmup", type=int, default=1, help="seconds of wrk on each server first (default 1)")
    parser.add_argument(
        "--timeout", type=int, default=600, help="stop everything after this many seconds, plus the wrk runs (default 600)"
    )
    parser.set_defaults(skip_http=False)
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0 or args.actions < 1 or min(args.workers) < 1:
        parser.error("--rounds, --seconds, --actions and --workers must be positive")
    return args


def measure(args, results: dict) -> None:
    if "http_skipped" in results:
        raise common.BenchError("this benchmark needs wrk: apt-get install wrk")
    missing = [name for name in ("fastapi", "uvicorn", "uvloop", "httptools", "psycopg_pool")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise common.BenchError(f"{', '.join(missing)} not installed: pip install -r bench/requirements.txt")
    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (the figures assume an otherwise idle machine)")
    http = results["http"] = {"by_workers": {}}
    with database(args) as db:
        env = common.django_start(db, "wrk, the app server and uvicorn")
        folder = Path(tempfile.mkdtemp(prefix="hitl-bench-engine-"))
        try:
            bench_rows_delete()
            token = common.service_token(env)
            ids = pending_open(args.actions)
            print(f"{len(ids):,} pending actions ({ACTION_TYPE}) opened for the poll; the engine's bearer token made")
            http["sql"] = poll_sql_check(ids[0])
            print("poll SQL: " + ("the same statement on both sides" if http["sql"] is None else http["sql"]))
            for workers in args.workers:
                bench_workers(args, env, token, ids, workers, folder, http)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            if not db.scratch:
                bench_rows_delete()
                common.token_revoke()


def main() -> int:
    args = arguments()
    runs = len(args.workers) * 6 * (args.rounds * args.seconds + args.http_warmup + 1)
    return common.bench_main(
        args, wrk_seconds=runs, measure=measure, in_process_rows=in_process_rows, http_rows=http_rows,
        http_name="HTTP",
    )


if __name__ == "__main__":
    sys.exit(main())
