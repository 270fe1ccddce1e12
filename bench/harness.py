"""What every benchmark in this folder runs on: the options, the time bound and the summary,
the database and Django, timing and interleaved comparisons, the bench's rows and people.

bench/ is not a package: a script imports this as `harness`, found through its own folder,
which Python puts first on sys.path when it runs the script. Servers, wrk and /proc are in
`serving.py`.
"""

import argparse
import contextlib
import gc
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)  # the venv's python: the servers, manage.py and locust run on it
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
# Scratch databases are called <prefix>_<benchmark>_<pid>; the prefix keeps parallel runs apart.
SCRATCH_PREFIX = os.environ.get("BENCH_SCRATCH_PREFIX") or "hitl_bench"
POSTGRES_DATABASE_HELP = (
    "run on this PostgreSQL database as it is (default: DATABASE_URL if set, else a scratch database)"
)


class BenchError(Exception):
    """A step failed; the message says which and why."""


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


def heading(text: str) -> None:
    print(f"\n== {text}", flush=True)


@contextlib.contextmanager
def scratch_folder(kind: str):
    """A temporary folder for the run's logs and scripts, removed when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix=f"hitl-bench-{kind}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def machine() -> str:
    model, memory_kb = platform.machine(), 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), model)
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{os.cpu_count()} CPUs ({model}), {memory_kb / 1024 / 1024:.1f} GiB RAM, {platform.system()} {platform.release()}"


def load_print() -> None:
    """The figures assume an otherwise idle machine: say how busy it was."""
    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (the figures assume an otherwise idle machine"
          + ("; it has been busy, which lowers them)" if load[0] > 0.5 else ")"))


# --- options, the time bound and the summary --------------------------------------------


def bench_parser(doc: str, *, database: bool = True) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of the script's docstring, with
    --database-url unless the script offers other choices of database."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if database:
        database_argument(parser, POSTGRES_DATABASE_HELP)
    return parser


def database_argument(parser, help_text: str) -> None:
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or None, help=help_text)


def server_arguments(parser, *, port: int, seconds: float = 10, seconds_help: str, workers=2,
                     warmup: float = 2, warmup_help: str, whole_seconds: bool = False) -> None:
    """The options of a benchmark that loads the app server with wrk."""
    number = int if whole_seconds else float
    parser.add_argument("--seconds", type=number, default=seconds, help=seconds_help)
    if isinstance(workers, list):
        parser.add_argument("--workers", type=int, nargs="+", default=workers,
                            help=f"worker processes a side, one set of rounds each (default: {' '.join(map(str, workers))})")
    else:
        parser.add_argument("--workers", type=int, default=workers,
                            help=f"worker processes of the app server (default {workers})")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--port", type=int, default=port, help=f"preferred port on 127.0.0.1 (default {port})")
    parser.add_argument("--http-warmup", type=number, default=warmup, help=warmup_help)


def final_arguments(parser, *, skip_http: bool = True, timeout: int = 600, plus: str = "the wrk runs") -> None:
    if skip_http:
        parser.add_argument("--skip-http", action="store_true", help="only the in-process part")
    else:
        parser.set_defaults(skip_http=False)
    parser.add_argument("--timeout", type=int, default=timeout,
                        help=f"stop everything after this many seconds{', plus ' + plus if plus else ''} (default {timeout})")


def on_alarm(signum, frame):
    raise TimeoutError("the benchmark ran past --timeout; stopped")


def bench_main(args, measure, *, rows=None, http_name: str | None = None, extra_seconds: float = 0) -> int:
    """Run `measure(args, results)` within --timeout plus `extra_seconds` (the load runs),
    and print `rows(args, results)` as the summary even when a step fails, so that what was
    measured is not lost. Cleanup is left to `measure`'s context managers, which an error,
    the alarm or ^C unwinds. `http_name`: the part that needs wrk, skipped without it.
    The exit status is `measure`'s (0 when it returns None), 1 on an error."""
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.timeout + int(extra_seconds))
    results, status = {}, 0
    if http_name is None:
        pass
    elif args.skip_http:
        results["http_skipped"] = "--skip-http"
    elif shutil.which("wrk") is None:
        results["http_skipped"] = "wrk not installed: apt-get install wrk"
        print("wrk is not installed, so the HTTP part is skipped: install it with `sudo apt-get install wrk`.")
    try:
        status = measure(args, results) or 0
    except (BenchError, TimeoutError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("\ninterrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
    if rows is not None:
        summary_print(rows(args, results) + ([(http_name, "skipped", results["http_skipped"])]
                                             if "http_skipped" in results else []))
    return status


def summary_print(rows: list) -> None:
    """(name, value, note) rows under a "Summary" heading, the values aligned."""
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    heading("Summary")
    for name, value, note in rows:
        print(f"{name:<{widths[0]}}  {value:>{widths[1]}}  {note}".rstrip())


# --- the database and Django -------------------------------------------------------------


@dataclass
class Database:
    url: str
    label: str
    scratch: bool  # created here, dropped at the end


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
    return url


@contextlib.contextmanager
def bench_database(args, kind: str, *, sqlite: bool = False):
    """The database to run on: the given one (--database-url; PostgreSQL only unless the
    script offers --sqlite), a temporary SQLite file (--sqlite), or a scratch PostgreSQL one
    called <prefix>_<kind>_<pid>. A scratch database is dropped when the block ends,
    however it ends, after this process's connections to it are closed."""
    if args.database_url:
        if not sqlite and urlsplit(args.database_url).scheme not in ("postgres", "postgresql"):
            raise BenchError("this benchmark runs on PostgreSQL only; --database-url must be postgres://...")
        yield Database(args.database_url, f"given: {redact(args.database_url)}", scratch=False)
        return
    if getattr(args, "sqlite", False):
        with scratch_folder(kind) as folder:
            yield Database(f"sqlite:///{folder}/bench.sqlite3", f"SQLite, temporary file in {folder}", scratch=True)
        return
    name = f"{SCRATCH_PREFIX}_{kind}_{os.getpid()}"
    with scratch_postgres(name, hint=" Or use --sqlite." if sqlite else "") as url:
        try:
            yield Database(url, f"PostgreSQL, scratch database {name}", scratch=True)
        finally:
            django_disconnect()


@contextlib.contextmanager
def scratch_postgres(name: str, *, server: str = PG_SERVER, hint: str = ""):
    """A database `name` created with createdb on the server of the URL `server` (with its
    user and password), dropped when the block ends, however it ends; yields its URL."""
    parts = urlsplit(server)
    options = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    options += ["-U", parts.username] if parts.username else []
    env = {**os.environ, **({"PGPASSWORD": parts.password} if parts.password else {})}
    try:
        run(["createdb", *options, name], env=env, timeout=30)
    except BenchError as exc:
        raise BenchError(f"{exc}\nIs PostgreSQL on {parts.hostname}:{parts.port or 5432} reachable?{hint}") from None
    try:
        yield urlunsplit(parts._replace(path=f"/{name}", query=""))
    finally:
        try:
            run(["dropdb", *options, "--force", "--if-exists", name], env=env, timeout=60)
        except BenchError as exc:
            print(f"warning: could not drop {name}: {exc}", file=sys.stderr)


def django_environment(database_url: str, **extra) -> dict:
    """The production profile for this process and for the app server, on plain http: no TLS
    redirect (DJANGO_SECURE=false), served on 127.0.0.1."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="zakops_hitl.settings", DJANGO_ENV="production", DATABASE_URL=database_url,
        DJANGO_DEBUG="false", DJANGO_SECURE="false",
        DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
    )
    env.setdefault("LOG_LEVEL", "WARNING")
    hosts = env.get("DJANGO_ALLOWED_HOSTS") or "localhost"
    if "127.0.0.1" not in [h.strip() for h in hosts.split(",")]:
        env["DJANGO_ALLOWED_HOSTS"] = f"{hosts},127.0.0.1"
    env.update(extra)
    return env


def django_start(db: Database, shared_by: str, **extra_env) -> dict:
    """Django set up and migrated on `db` in this process, and a line on what the figures
    ran on; the environment, which the app server gets too. The project folder goes first
    on sys.path: the scripts' own folder would otherwise make `import risk` or `import
    checkpoints` find the script of that name instead of the app."""
    env = django_environment(db.url, **extra_env)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    print(f"database: {db.label} (migrated)\n"
          f"Python {platform.python_version()}, Django {django.get_version()}, {machine()}, shared by {shared_by}")
    return env


def django_disconnect() -> None:
    """Close this process's connections, the change listener's too, before the scratch
    database is dropped."""
    if "django.db" not in sys.modules:
        return
    from django.db import connections

    if "common.changes" in sys.modules:
        from common.changes import feed

        feed.stop()
    connections.close_all()


def sql(statement: str, params=()) -> list:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def test_client():
    """Django's test client, on a host the production settings allow. WhiteNoise's warning
    that the static files are not collected is left out."""
    import warnings

    from django.test import Client

    warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)
    return Client(HTTP_HOST="127.0.0.1")


# --- timing in this process and comparisons ------------------------------------------------


def percentile(sorted_values, fraction: float):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def summarize(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"calls": len(ordered), "p50": statistics.median(ordered), "p95": percentile(ordered, 0.95),
            "mean": statistics.fmean(ordered)}


class Statements:
    """A Django execute wrapper: per timed call, each statement and its nanoseconds (execute
    to rows back). COMMIT is not a statement here: the connection sends it, so its round
    trip falls outside."""

    def __init__(self):
        self.per_call = []  # one [(sql, ns), ...] per timed call

    def __call__(self, execute, statement, params, many, context):
        start = time.perf_counter_ns()
        result = execute(statement, params, many, context)
        if self.per_call:
            self.per_call[-1].append((statement, time.perf_counter_ns() - start))
        return result

    def counts(self) -> list[int]:
        return [len(call) for call in self.per_call]

    def count(self) -> int:
        return round(statistics.median(self.counts()))

    def median_ms(self) -> float:
        return statistics.median(sum(ns for _, ns in call) for call in self.per_call) / 1e6

    def verbs(self) -> str:
        """"SELECT 4 (0.61 ms), UPDATE 2 (0.30 ms), …": median statements and ms per call."""
        per_call = [{} for _ in self.per_call]
        for verbs, call in zip(per_call, self.per_call):
            for statement, ns in call:
                count, total = verbs.get(verb := statement.split(None, 1)[0].upper(), (0, 0))
                verbs[verb] = (count + 1, total + ns)
        order = dict.fromkeys(verb for call in per_call for verb in call)  # in the order they ran
        return ", ".join(
            f"{verb} {statistics.median(call.get(verb, (0, 0))[0] for call in per_call):g} "
            f"({statistics.median(call.get(verb, (0, 0))[1] for call in per_call) / 1e6:.2f} ms)"
            for verb in order
        )


def time_calls(call, targets: list, warmup: int = 0, statements: Statements | None = None) -> list[float]:
    """Milliseconds per call of `call(target)`, each timed on its own, one call per target;
    the first `warmup` targets are called untimed. `statements`, if given, records the SQL
    of each timed call."""
    from django.db import connection

    for target in targets[:warmup]:
        call(target)
    clock = time.perf_counter_ns
    samples = []
    gc.collect()  # start the timing with no garbage pending
    with connection.execute_wrapper(statements) if statements else contextlib.nullcontext():
        for target in targets[warmup:]:
            if statements:
                statements.per_call.append([])
            start = clock()
            call(target)
            samples.append((clock() - start) / 1e6)
    return samples


def captured(call) -> list:
    """The statements one call of `call()` runs, with their parameters: [(sql, params)]."""
    from django.db import connection

    statements = []

    def capture(execute, statement, params, many, context):
        statements.append((statement, params))
        return execute(statement, params, many, context)

    with connection.execute_wrapper(capture):
        call()
    return statements


def explain(statement: str, params) -> tuple[float, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of a statement: (execution ms, the plan's lines)."""
    lines = [row[0] for row in sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params)]
    ms = next((float(line.split()[2]) for line in lines if line.startswith("Execution Time")), float("nan"))
    return ms, lines


def interleaved(sides: dict, rounds: int, *, alternate: bool = False, each_round=None) -> dict:
    """Every side measured once a round, in turn (A B A B …), so that other load on the
    machine falls on all sides alike: `sides` maps a name to a call of the round's number
    that returns that round's figure. With `alternate` every other round runs in reverse
    order (B A), so that no side always goes first. `each_round(number, figures)` is told
    of each round's figures. Returns each side's figures, one per round."""
    names = list(sides)
    measured = {name: [] for name in names}
    for number in range(1, rounds + 1):
        for name in names[::-1] if alternate and number % 2 == 0 else names:
            measured[name].append(sides[name](number))
        if each_round:
            each_round(number, {name: values[-1] for name, values in measured.items()})
    return measured


def verdict(met: bool) -> str:
    """For a figure measured in this run against a target stated beside it."""
    return "met" if met else "NOT met"


def compared(name: str, ours: list, theirs: list, *, unit: str, digits: int = 2, aim: float | None = None,
             higher_is_better: bool = False, what: str = "median", other: str = "reference") -> dict:
    """The medians of figures both sides measured in this run (one per round, or every
    sample), printed with their ratio ours/`other` and the verdict on that ratio against
    `aim` (without an aim, which side was better). Never fed a figure from elsewhere:
    the verdict is only ever this run's."""
    mine, their = statistics.median(ours), statistics.median(theirs)
    ratio = mine / their
    if aim is None:  # no target: which side did better
        ours_better = ratio > 1 if higher_is_better else ratio < 1
        note, met = f"{'ours' if ours_better else other} {'higher' if higher_is_better else 'faster'}", None
    else:
        met = ratio >= aim if higher_is_better else ratio <= aim
        note = f"aim {'>=' if higher_is_better else '<='} {aim:.1f}x: {verdict(met)}"
    print(f"{name}: {what} ours {mine:,.{digits}f} {unit}, {other} {their:,.{digits}f} {unit} -> "
          f"ours/{other} {ratio:.2f}x ({note})")
    return {"ours": mine, "theirs": their, "ratio": ratio, "met": met, "note": note}


# --- the bench's rows and people ---------------------------------------------------------


def bench_rows_delete(action_prefix: str, *, deal_prefix: str | None = None) -> None:
    """Delete the bench's actions (ids starting with `action_prefix`) and every row the
    services wrote for them: their approval requests and what hangs off those
    (notifications, votes, claims), deal events, outbox rows and checkpoints; and the
    bench's deals."""
    like = [f"{action_prefix}%"]
    requests = "SELECT id FROM approvals_approvalrequest WHERE action_id LIKE %s"
    sql("DELETE FROM notifications_notification WHERE event_id IN "
        f"(SELECT id FROM notifications_notificationevent WHERE request_id IN ({requests}))", like)
    for table in ("notifications_notificationevent", "approvals_approvalvote", "approvals_claim"):
        sql(f"DELETE FROM {table} WHERE request_id IN ({requests})", like)
    sql("DELETE FROM approvals_approvalrequest WHERE action_id LIKE %s", like)
    sql("DELETE FROM zakops.deal_events WHERE details->>'action_id' LIKE %s", like)
    sql("DELETE FROM zakops.outbox WHERE aggregate_id LIKE %s", like)
    sql("DELETE FROM zakops.execution_checkpoints WHERE action_id LIKE %s", like)
    sql("DELETE FROM zakops.actions WHERE action_id LIKE %s", like)
    if deal_prefix:
        sql("DELETE FROM zakops.deals WHERE deal_id LIKE %s", [f"{deal_prefix}%"])


@contextlib.contextmanager
def bench_rows(db: Database, action_prefix: str, *, deal_prefix: str | None = None, also=None):
    """The block runs with no bench rows left by an interrupted run; on a given database
    they are deleted again when it ends, however it ends, with what `also()` deletes (the
    bench's tokens or people), so that the run leaves nothing behind."""
    bench_rows_delete(action_prefix, deal_prefix=deal_prefix)
    try:
        yield
    finally:
        if not db.scratch:
            bench_rows_delete(action_prefix, deal_prefix=deal_prefix)
            if also:
                also()


def people_delete(*, usernames=(), emails=(), session_keys=()) -> None:
    """The bench's accounts (their tokens go with them), their zakops.operators rows and
    sessions."""
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session

    from zakops.models import Operator

    Session.objects.filter(session_key__in=list(session_keys)).delete()
    get_user_model().objects.filter(username__in=[*usernames, *emails]).delete()
    Operator.objects.filter(email__in=list(emails)).delete()


def service_token(env: dict) -> str:
    """A bearer token of the `bench` service account, made as an operator would."""
    output = run([PYTHON, "manage.py", "create_service_token", "bench"], env=env, timeout=60)
    return output.strip().splitlines()[-1].strip()


def token_revoke() -> None:
    """On a database that is not ours, the bench tokens do not outlive the run."""
    from django.utils import timezone

    from accounts.models import ApiToken

    tokens = ApiToken.objects.filter(name="create_service_token bench", revoked_at__isnull=True)
    tokens.update(revoked_at=timezone.now())


def pending_open(ids: list[str], requester, action_type: str, *, batch: int = 1000) -> float:
    """A pending request on each action, through approval_request(), `batch` calls per
    transaction, then fresh statistics (as autovacuum would have soon); the seconds the
    requests took."""
    from django.db import transaction

    from approvals.services.requests import approval_request

    started = time.monotonic()
    for start in range(0, len(ids), batch):
        with transaction.atomic():
            for action_id in ids[start:start + batch]:
                request, created = approval_request(action_id=action_id, action_type=action_type, requester=requester)
                if not created or request.state != "pending":
                    raise BenchError(f"approval_request({action_id}) gave a {request.state} request")
    seconds = time.monotonic() - started
    sql("ANALYZE zakops.actions, approvals_approvalrequest, zakops.deal_events, zakops.outbox")
    return seconds


# The queue data approvals.py and pages.py bulk-insert: the settled actions' statuses, the
# pending ones' risk levels, and a score per level.
DONE_STATUSES = (("COMPLETED", 0.80), ("QUEUED", 0.03), ("REJECTED", 0.08), ("CANCELLED", 0.05), ("FAILED", 0.04))
PENDING_LEVELS = (("critical", 0.05), ("high", 0.20), ("medium", 0.45), ("low", 0.30))
SCORES = {"critical": 0.95, "high": 0.75, "medium": 0.5, "low": 0.2}


def weighted(rng, choices) -> str:
    """One of `choices`, (value, weight) pairs, drawn with `rng`."""
    values, weights = zip(*choices)
    return rng.choices(values, weights)[0]
