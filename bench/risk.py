"""Benchmark of risk assessment, in process and over HTTP. It prints figures and asserts nothing.

1. The assessor, `risk.services.risk_assess()`, called in this process over a mix of 20
   calls (the ZakOps catalogue's action types with their sample inputs, plus generated
   vendor types that match many rules): median, p95 and mean microseconds per call, (a) with the
   default rules the migrations create and (b) with 1,000 generated rules added. Also the
   time to load the rule book (query and compile), paid once per change per process.
   Targets: under 8 µs median with the defaults, under 100 µs with 1,000 rules; the old
   design's assessor took about 24 µs with 6 rules.
2. `POST /api/hitl/assess-risk` under gunicorn with production settings and a bearer
   token, loaded with wrk: requests/s, p50/p99 latency, responses that are not 2xx/3xx
   and socket errors. The old design served about 2,500 req/s, without authentication.

The database is a scratch one, created and dropped here: PostgreSQL by default
(postgres://postgres@127.0.0.1:5432, trust auth, via createdb/dropdb), a temporary SQLite
file with --sqlite. With --database-url (or DATABASE_URL) that database is used as it is;
the generated rules are deleted and the bench token revoked afterwards.

    .venv/bin/python bench/risk.py [--sqlite] [--seconds 10] [--workers 2]
"""

import argparse
import contextlib
import gc
import json
import logging
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)  # the venv's python: gunicorn sits beside it
GUNICORN = PYTHON.parent / "gunicorn"
PG_SERVER = "postgres://postgres@127.0.0.1:5432"

TARGET_DEFAULT_US = 8.0
TARGET_MANY_US = 100.0
OLD_ASSESS_US = 24.0  # old design, 6 rules
OLD_HTTP_RPS = 2500.0  # old design, no authentication

RULE_PREFIX = "bench_generated_"
VENDORS, THINGS = 50, 20  # 1,000 distinct types VENDOR{v}.DO_THING_{t}
LEVELS = ("low", "medium", "high", "critical")
ENDPOINT = "/api/hitl/assess-risk"
REQUEST_BODY = {"action_type": "COMMUNICATION.SEND_EMAIL", "action_data": {"to": "cfo@seller.example"}}


class BenchError(Exception):
    """A step failed; the message says which and why."""


# --- helpers ---------------------------------------------------------------------------


def run(cmd, *, env=None, timeout=120) -> str:
    """Run a command from the project folder; its stdout, or BenchError with its output."""
    try:
        done = subprocess.run(
            [str(c) for c in cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{cmd[0]} took more than {timeout} s") from None
    except FileNotFoundError:
        raise BenchError(f"{cmd[0]} is not installed") from None
    if done.returncode != 0:
        raise BenchError(f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def percentile(sorted_values, fraction: float):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def heading(text: str) -> None:
    print(f"\n== {text}", flush=True)


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def on_alarm(signum, frame):
    raise TimeoutError("the benchmark ran past --timeout; stopped")


# --- the database ----------------------------------------------------------------------


@dataclass
class Database:
    url: str
    label: str
    scratch: bool  # created here, dropped at the end


@contextlib.contextmanager
def database(args):
    """The database to run on: the given one, a temporary SQLite file, or a scratch PostgreSQL one."""
    if args.database_url:
        yield Database(args.database_url, f"given: {redact(args.database_url)}", scratch=False)
    elif args.sqlite:
        folder = tempfile.mkdtemp(prefix="hitl-bench-")
        try:
            yield Database(f"sqlite:///{folder}/bench.sqlite3", f"SQLite, temporary file in {folder}", scratch=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        name = f"hitl_bench_{os.getpid()}"
        server = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
        try:
            run(["createdb", *server, name], timeout=30)
        except BenchError as exc:
            hint = "Is PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth)? Or use --sqlite."
            raise BenchError(f"{exc}\n{hint}") from None
        try:
            yield Database(f"{PG_SERVER}/{name}", f"PostgreSQL, scratch database {name}", scratch=True)
        finally:
            django_disconnect()
            try:
                run(["dropdb", *server, "--force", "--if-exists", name], timeout=60)
            except BenchError as exc:
                print(f"warning: could not drop {name}: {exc}", file=sys.stderr)


def django_environment(database_url: str) -> dict:
    """Production settings for this process and for gunicorn: no debug, no TLS redirect."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="zakops_hitl.settings",
        DATABASE_URL=database_url,
        DJANGO_DEBUG="false",
        DJANGO_SECURE="false",
        DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
    )
    env.setdefault("LOG_LEVEL", "WARNING")
    hosts = env.get("DJANGO_ALLOWED_HOSTS")
    if hosts and "127.0.0.1" not in [h.strip() for h in hosts.split(",")]:
        env["DJANGO_ALLOWED_HOSTS"] = f"{hosts},127.0.0.1"
    return env


def django_setup(env: dict) -> None:
    """Configure Django in this process on the bench database and migrate it."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def django_disconnect() -> None:
    """Close this process's connections before the scratch database is dropped."""
    if "django.db" not in sys.modules:
        return
    from django.db import connections

    # On PostgreSQL the rule cache's LISTEN thread would log its lost connection.
    logging.getLogger("risk.rulebook").disabled = True
    connections.close_all()


# --- 1. the assessor in this process ---------------------------------------------------


def generated_rules(count: int, seed: int = 1):
    """`count` enabled rules over 1,000 namespaced types: exact types, globs of several
    shapes (some matching a whole vendor or a thing across vendors), input patterns,
    minimum amounts, and a few rules on the catalogue's own types."""
    rng = random.Random(seed)
    for i in range(count):
        vendor, thing = i % VENDORS, (i // VENDORS) % THINGS
        spec = {
            "name": f"{RULE_PREFIX}{i:04d}",
            "description": f"Vendor {vendor} integration, operation {thing}",
            "risk_level": rng.choice(LEVELS),
            "requires_approval": rng.random() < 0.6,
            "enabled": True,
            "action_types": [],
            "action_type_patterns": [],
            "input_patterns": {},
            "min_amount": None,
        }
        kind = rng.random()
        if i % 100 == 0:
            spec["action_type_patterns"] = ["COMMUNICATION.*", "*.SEND_*"]
            spec["input_patterns"] = {"to": rf"@partner{vendor}\.com$"}
        elif i % 100 == 50:
            spec["action_type_patterns"] = ["FINANCIAL.*", f"VENDOR{vendor}.*"]
            spec["min_amount"] = Decimal(100_000)
        elif kind < 0.6:
            spec["action_types"] = [f"VENDOR{vendor}.DO_THING_{thing}", f"VENDOR{vendor}.UNDO_THING_{thing}"]
        elif kind < 0.7:
            spec["action_type_patterns"] = [f"VENDOR{vendor}.DO_THING_{thing}?"]
        elif kind < 0.8:
            spec["action_type_patterns"] = [f"VENDOR{vendor}.*"]
        elif kind < 0.9:
            spec["action_type_patterns"] = [f"*.DO_THING_{thing}"]
        else:
            spec["action_type_patterns"] = [f"VENDOR{vendor // 10}*.DO_THING_*"]
        if rng.random() < 0.2:
            spec["input_patterns"] = {**spec["input_patterns"], "to": rf"@partner{vendor}\.com$"}
        if rng.random() < 0.15:
            spec["min_amount"] = Decimal(1000 * (thing + 1))
        yield spec


def assess_cases() -> list:
    """20 calls as (group, action_type, inputs, context): the catalogue's 13 types with
    their sample inputs; 5 generated vendor types whose types match 10 to 41 of the
    generated rules (with bulk, financial and external inputs, a closed deal); a catalogue
    type with a partner address, and a type no rule matches."""
    from zakops.catalogue import ACTION_CATALOGUE

    cases = [("catalogue", entry.action_type, entry.inputs, {}) for entry in ACTION_CATALOGUE]
    cases += [
        ("vendor", "VENDOR41.DO_THING_11", {"to": "ops@partner41.com", "amount": 75000}, {}),
        ("vendor", "vendor42.do_thing_0", {"note": "lower case"}, {"deal_stage": "closed"}),
        ("vendor", "VENDOR18.DO_THING_12", {"amount": 50000, "currency": "EUR"}, {}),
        ("vendor", "VENDOR13.DO_THING_9", {"recipients": [f"user{n}@client.example" for n in range(12)]}, {}),
        ("vendor", "VENDOR8.DO_THING_3", {"to": "ops@partner8.com", "subject": "Renewal"}, {}),
        ("other", "COMMUNICATION.SEND_EMAIL", {"to": "Ann <ceo@partner0.com>", "amount": "12,500"},
         {"is_test_mode": True}),
        ("other", "UNKNOWN.NEW_ACTION", {"note": "no rule matches"}, {}),
    ]
    return cases


def rules_add(count: int) -> None:
    from django.db import transaction

    from risk.models import RiskRule
    from risk.rulebook import rulebook_changed

    rules = [RiskRule(**spec) for spec in generated_rules(count)]
    for rule in rules:
        rule.full_clean(validate_unique=False)  # the admin's validators: patterns compile
    with transaction.atomic():
        RiskRule.objects.bulk_create(rules, batch_size=500)
        rulebook_changed()


def rules_remove() -> None:
    from django.db import transaction

    from risk.models import RiskRule
    from risk.rulebook import rulebook_changed

    with transaction.atomic():
        RiskRule.objects.filter(name__startswith=RULE_PREFIX).delete()
        rulebook_changed()


def rulebook_settle(timeout: float = 10.0) -> bool:
    """Wait until the cached rule book stays the same object for half a second (on
    PostgreSQL: the LISTEN thread is connected and our own change's NOTIFY has arrived),
    so that the timing measures the cached path. False if it never settles."""
    from risk.rulebook import rulebook_current

    deadline = time.monotonic() + timeout
    book, since = rulebook_current(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        current = rulebook_current()
        if current is not book:
            book, since = current, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            return True
    return False


def time_assessor(cases, rounds: int, warmup: int) -> dict:
    """Microseconds per call: every call timed on its own, over `rounds` passes of the cases."""
    from risk.rulebook import rulebook_current
    from risk.services import risk_assess

    for _ in range(warmup):
        for _group, action_type, inputs, context in cases:
            risk_assess(action_type=action_type, inputs=inputs, context=context)
    settled = rulebook_settle()
    gc.collect()  # start the timing with no garbage pending
    book = rulebook_current()
    clock = time.perf_counter_ns
    per_case = [[] for _ in cases]
    for _ in range(rounds):
        for samples, (_group, action_type, inputs, context) in zip(per_case, cases):
            start = clock()
            risk_assess(action_type=action_type, inputs=inputs, context=context)
            samples.append(clock() - start)
    everything = sorted(ns for samples in per_case for ns in samples)
    groups = {}
    for samples, (group, action_type, _, _) in zip(per_case, cases):
        entry = groups.setdefault(group, {"samples": [], "candidates": []})
        entry["samples"].extend(samples)
        entry["candidates"].append(len(book.candidates(action_type)))
    slowest = max(range(len(cases)), key=lambda i: statistics.median(per_case[i]))
    return {
        "rules": len(book.rules),
        "calls": len(everything),
        "median": statistics.median(everything) / 1000,
        "p95": percentile(everything, 0.95) / 1000,
        "mean": statistics.fmean(everything) / 1000,
        "slowest": (  # (action type, median µs, rules whose type matches)
            cases[slowest][1],
            statistics.median(per_case[slowest]) / 1000,
            len(book.candidates(cases[slowest][1])),
        ),
        "groups": {
            group: {
                "calls": len(entry["candidates"]),
                "median": statistics.median(entry["samples"]) / 1000,
                "matching": (min(entry["candidates"]), max(entry["candidates"])),
            }
            for group, entry in groups.items()
        },
        "settled": settled,
        "reloaded": rulebook_current() is not book,
    }


def time_load() -> float:
    """Median milliseconds to load the rule book: one query and compiling every rule."""
    from risk.rulebook import rulebook_load

    return statistics.median(timeit.repeat(rulebook_load, number=1, repeat=5)) * 1000


def report_assessor(label: str, figures: dict, target: float) -> None:
    verdict = "met" if figures["median"] < target else "NOT met"
    print(
        f"{label}: {figures['rules']} enabled rules, {figures['calls']:,} calls\n"
        f"  median {figures['median']:.2f} µs, p95 {figures['p95']:.2f} µs, mean {figures['mean']:.2f} µs "
        f"(target: median < {target:g} µs, {verdict})"
    )
    for group, entry in figures["groups"].items():
        low, high = entry["matching"]
        print(
            f"  {group + ' types':<16} ({entry['calls']:>2} per pass): median {entry['median']:6.2f} µs, "
            f"rules whose type matches: {low}-{high}"
        )
    action_type, median, matching = figures["slowest"]
    print(f"  slowest call: {action_type}, median {median:.2f} µs; rules whose type matches: {matching}")
    print(f"  rule book load (query + compile): {figures['load_ms']:.1f} ms")
    if not figures["settled"] or figures["reloaded"]:
        print("  warning: the rule book reloaded during the timing; figures include database reads")


def bench_assessor(args) -> dict:
    heading("1. risk_assess() in process")
    cases = assess_cases()
    types = len({action_type.upper() for _, action_type, _, _ in cases})
    print(f"{len(cases)} calls per pass over {types} action types; {args.warmup} warm-up passes, {args.rounds} timed.")
    results = {}
    results["default"] = time_assessor(cases, args.rounds, args.warmup)
    results["default"]["load_ms"] = time_load()
    report_assessor("(a) default rules", results["default"], TARGET_DEFAULT_US)
    speedup = OLD_ASSESS_US / results["default"]["median"]
    print(f"  old design: ~{OLD_ASSESS_US:g} µs with 6 rules -> {speedup:.1f}x faster")

    started = time.monotonic()
    rules_add(args.rules)
    print(f"\nadded {args.rules:,} generated rules in {time.monotonic() - started:.1f} s (validated, bulk insert)")
    try:
        results["many"] = time_assessor(cases, args.rounds, args.warmup)
        results["many"]["load_ms"] = time_load()
        report_assessor(f"(b) default + {args.rules:,} generated rules", results["many"], TARGET_MANY_US)
    finally:
        rules_remove()
    return results


# --- 2. the HTTP endpoint under gunicorn -----------------------------------------------

WRK_LUA = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH-RESULT %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""
WRK_FIELDS = ("requests", "duration_us", "connect", "read", "write", "non2xx", "timeout", "p50_us", "p99_us", "max_us")

# Straight to 127.0.0.1, whatever http_proxy says.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise BenchError("no free port on 127.0.0.1")


def service_token(env: dict) -> str:
    output = run([PYTHON, "manage.py", "create_service_token", "bench"], env=env, timeout=60)
    return output.strip().splitlines()[-1].strip()


def http_call(url: str, *, body: dict | None = None, token: str | None = None, timeout: float = 5) -> tuple:
    """(status, body text) of a GET, or of a JSON POST when `body` is given."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with HTTP.open(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def server_wait(proc, base_url: str, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"gunicorn exited with {proc.returncode}:\n{log_tail(log_path)}")
        try:
            if http_call(f"{base_url}/healthz", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"gunicorn did not answer /healthz within {timeout:g} s:\n{log_tail(log_path)}")


def server_stop(proc) -> None:
    """TERM to the gunicorn master (graceful); KILL to its process group if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the master and its workers
            proc.wait(timeout=5)


@contextlib.contextmanager
def gunicorn(env: dict, port: int, workers: int, folder: Path):
    """gunicorn serving the app on 127.0.0.1:port until the block ends, however it ends."""
    log_path = folder / "gunicorn.log"
    cmd = [GUNICORN, "zakops_hitl.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--chdir", ROOT]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(c) for c in cmd], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            server_wait(proc, base_url, log_path)
            yield base_url
        finally:
            server_stop(proc)


def wrk(args, url: str, script: Path, seconds: float) -> tuple[dict, str]:
    cmd = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s",
        "--timeout", "5s", "--latency", "-s", script, url,
    ]
    output = run(cmd, timeout=seconds + 30)
    lines = output.splitlines()
    result = next((line for line in lines if line.startswith("BENCH-RESULT ")), None)
    if result is None:
        raise BenchError(f"wrk printed no result:\n{output}")
    figures = dict(zip(WRK_FIELDS, (float(v) for v in result.split()[1:])))
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    return figures, "\n".join(line for line in lines if line is not result)


def bench_http(args, env: dict) -> dict:
    heading(f"2. POST {ENDPOINT} under gunicorn")
    token = service_token(env)
    port = free_port(args.port)
    folder = Path(tempfile.mkdtemp(prefix="hitl-bench-http-"))
    try:
        script = folder / "assess.lua"
        script.write_text(WRK_LUA.format(body=json.dumps(json.dumps(REQUEST_BODY)), token=token))
        with gunicorn(env, port, args.workers, folder) as base_url:
            status, body = http_call(f"{base_url}{ENDPOINT}", body=REQUEST_BODY, token=token)
            print(f"gunicorn -w {args.workers} on 127.0.0.1:{port}; one request first: HTTP {status} {body[:160]}")
            if status != 200:
                raise BenchError(f"{ENDPOINT} answered {status}, not 200; not loading it")
            if args.http_warmup > 0:
                wrk(args, f"{base_url}{ENDPOINT}", script, args.http_warmup)
            load = f"-t{args.threads} -c{args.connections} -d{args.seconds:g}s"
            print(f"wrk {load} (after a {args.http_warmup:g} s warm-up):")
            figures, output = wrk(args, f"{base_url}{ENDPOINT}", script, args.seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("\n".join(f"  | {line}" for line in output.splitlines()))
    errors = figures["connect"] + figures["read"] + figures["write"] + figures["timeout"]
    print(
        f"  {figures['rps']:,.0f} req/s, p50 {figures['p50_us'] / 1000:.2f} ms, p99 {figures['p99_us'] / 1000:.2f} ms, "
        f"non-2xx/3xx {figures['non2xx']:.0f}, socket errors {errors:.0f}\n"
        f"  old design: ~{OLD_HTTP_RPS:,.0f} req/s without authentication -> {figures['rps'] / OLD_HTTP_RPS:.2f}x"
    )
    figures["errors"] = errors
    return figures


def token_revoke() -> None:
    """On a database that is not ours, the bench tokens do not outlive the run."""
    from django.utils import timezone

    from accounts.models import ApiToken

    tokens = ApiToken.objects.filter(name="create_service_token bench", revoked_at__isnull=True)
    tokens.update(revoked_at=timezone.now())


# --- summary ---------------------------------------------------------------------------


def assess_rows(label: str, figures: dict, target: float) -> list:
    verdict = "met" if figures["median"] < target else "NOT met"
    rows = [
        (f"assess, {label}: median", f"{figures['median']:.2f} µs", f"target < {target:g} µs: {verdict}"),
        (f"assess, {label}: p95", f"{figures['p95']:.2f} µs", ""),
    ]
    vendor = figures["groups"].get("vendor")
    if vendor and figures["rules"] > 100:
        low, high = vendor["matching"]
        action_type, median, matching = figures["slowest"]
        rows += [
            (f"assess, {label}: vendor types", f"{vendor['median']:.2f} µs", f"median; {low}-{high} rules match"),
            (f"assess, {label}: slowest type", f"{median:.2f} µs", f"median; {action_type}, {matching} rules match"),
        ]
    load = f"{figures['load_ms']:.1f} ms"
    rows.append((f"rule book load, {figures['rules']} rules", load, "once per change, per process"))
    return rows


def http_rows(args, http: dict) -> list:
    return [
        (f"HTTP assess-risk, {args.workers} workers", f"{http['rps']:,.0f} req/s",
         f"old ~{OLD_HTTP_RPS:,.0f} req/s without auth: {http['rps'] / OLD_HTTP_RPS:.2f}x"),
        ("HTTP p50 / p99 latency", f"{http['p50_us'] / 1000:.2f} / {http['p99_us'] / 1000:.2f} ms",
         f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s"),
        ("HTTP non-2xx/3xx / socket errors", f"{http['non2xx']:.0f} / {http['errors']:.0f}",
         f"of {http['requests']:,.0f} requests"),
    ]


def summary(args, results: dict) -> None:
    rows = []
    assess = results.get("assess", {})
    if "default" in assess:
        rows += assess_rows(f"{assess['default']['rules']} default rules", assess["default"], TARGET_DEFAULT_US)
        speedup = OLD_ASSESS_US / assess["default"]["median"]
        rows.append(("old design, 6 rules", f"~{OLD_ASSESS_US:g} µs", f"now {speedup:.1f}x faster"))
    if "many" in assess:
        rows += assess_rows(f"{assess['many']['rules']} rules", assess["many"], TARGET_MANY_US)
    if "http" in results:
        rows += http_rows(args, results["http"])
    elif "http_skipped" in results:
        rows.append(("HTTP assess-risk", "skipped", results["http_skipped"]))
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    heading("Summary")
    for name, value, note in rows:
        print(f"{name:<{widths[0]}}  {value:>{widths[1]}}  {note}".rstrip())


# --- main ------------------------------------------------------------------------------


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--sqlite", action="store_true", help="a temporary SQLite file instead of scratch PostgreSQL")
    where.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL") or None,
        help="run on this database as it is (default: DATABASE_URL if set, else a scratch PostgreSQL database)",
    )
    parser.add_argument("--seconds", type=float, default=10, help="wrk duration (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--port", type=int, default=8765, help="preferred port on 127.0.0.1 (default 8765)")
    parser.add_argument("--http-warmup", type=float, default=2, help="seconds of wrk before the measured run")
    parser.add_argument("--rules", type=int, default=1000, help="generated rules for (b) (default 1000)")
    parser.add_argument("--rounds", type=int, default=2000, help="timed passes over the 20 calls (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed passes first (default 200)")
    parser.add_argument("--skip-assess", action="store_true", help="only the HTTP part")
    parser.add_argument("--skip-http", action="store_true", help="only the in-process part")
    parser.add_argument(
        "--timeout", type=int, default=600,
        help="stop everything after this many seconds, plus the wrk runs (default 600)",
    )
    return parser.parse_args()


def main() -> int:
    args = arguments()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.timeout + int(args.seconds + args.http_warmup))
    results = {}
    if args.skip_http:
        results["http_skipped"] = "--skip-http"
    elif shutil.which("wrk") is None:
        results["http_skipped"] = "wrk not installed: apt-get install wrk"
        print("wrk is not installed, so the HTTP part is skipped: install it with `sudo apt-get install wrk`.")
    try:
        with database(args) as db:
            env = django_environment(db.url)
            django_setup(env)
            import django

            print(
                f"database: {db.label} (migrated)\n"
                f"Python {platform.python_version()}, Django {django.get_version()}, "
                f"{os.cpu_count()} CPUs ({platform.machine()}), shared by wrk and gunicorn"
            )
            try:
                if not args.skip_assess:
                    results["assess"] = bench_assessor(args)
                if "http_skipped" not in results:
                    results["http"] = bench_http(args, env)
            finally:
                if not db.scratch:
                    token_revoke()
    except (BenchError, TimeoutError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        summary(args, results)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
    summary(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
