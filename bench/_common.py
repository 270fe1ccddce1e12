"""What the benchmarks in this folder share: the scratch database, Django set up on it,
timing calls in process, the app server on 127.0.0.1 (the production server command,
`app_server`), a server's processes and their memory, wrk and its figures, the bench token,
the summary table, the command-line options they have in common and the run's time bound.

bench/ is not a package: a script imports this as `_common`, found through its own folder,
which Python puts first on sys.path when it runs the script.
"""

import contextlib
import gc
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)  # the venv's python: the servers, manage.py and locust run on it
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
PG_OPTIONS = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]


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


def summarize(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"calls": len(ordered), "p50": statistics.median(ordered), "p95": percentile(ordered, 0.95),
            "mean": statistics.fmean(ordered)}


def time_calls(call, targets: list, warmup: int, statements) -> list[float]:
    """Milliseconds per call of `call(target)`, each timed on its own, one call per target;
    the first `warmup` targets are called untimed. `statements`, a Django execute wrapper
    that adds up per call, is installed for the timed calls and told of each new one by
    `statements.per_call.append({})`."""
    from django.db import connection

    for target in targets[:warmup]:
        call(target)
    clock = time.perf_counter_ns
    samples = []
    gc.collect()  # start the timing with no garbage pending
    with connection.execute_wrapper(statements):
        for target in targets[warmup:]:
            statements.per_call.append({})
            start = clock()
            call(target)
            samples.append((clock() - start) / 1e6)
    return samples


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


def given_database(url: str) -> Database:
    return Database(url, f"given: {redact(url)}", scratch=False)


POSTGRES_DATABASE_HELP = (
    "run on this PostgreSQL database as it is (default: DATABASE_URL if set, else a scratch database)"
)


def postgres_database(args, scratch_name: str):
    """For a benchmark that runs on PostgreSQL only: the given database (--database-url), or
    a scratch one called `scratch_name`, dropped at the end. A context manager."""
    if args.database_url:
        if urlsplit(args.database_url).scheme not in ("postgres", "postgresql"):
            raise BenchError("this benchmark runs on PostgreSQL only; --database-url must be postgres://...")
        return contextlib.nullcontext(given_database(args.database_url))
    return scratch_postgres(scratch_name)


@contextlib.contextmanager
def scratch_postgres(name: str, *, hint: str = ""):
    """A PostgreSQL database created on 127.0.0.1:5432 and dropped when the block ends,
    however it ends. `hint` is added to the advice when it cannot be created."""
    try:
        run(["createdb", *PG_OPTIONS, name], timeout=30)
    except BenchError as exc:
        raise BenchError(f"{exc}\nIs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth)?{hint}") from None
    try:
        yield Database(f"{PG_SERVER}/{name}", f"PostgreSQL, scratch database {name}", scratch=True)
    finally:
        django_disconnect()
        try:
            run(["dropdb", *PG_OPTIONS, "--force", "--if-exists", name], timeout=60)
        except BenchError as exc:
            print(f"warning: could not drop {name}: {exc}", file=sys.stderr)


# --- Django ----------------------------------------------------------------------------


def django_environment(database_url: str) -> dict:
    """The production profile for this process and for the app server, on plain http: no TLS
    redirect (DJANGO_SECURE=false), served on 127.0.0.1."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="zakops_hitl.settings",
        DJANGO_ENV="production",
        DATABASE_URL=database_url,
        DJANGO_DEBUG="false",
        DJANGO_SECURE="false",
        DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
    )
    env.setdefault("LOG_LEVEL", "WARNING")
    hosts = env.get("DJANGO_ALLOWED_HOSTS") or "localhost"
    if "127.0.0.1" not in [h.strip() for h in hosts.split(",")]:
        env["DJANGO_ALLOWED_HOSTS"] = f"{hosts},127.0.0.1"
    return env


def django_setup(env: dict) -> None:
    """Configure Django in this process on the bench database and migrate it. The project
    folder goes first on sys.path: the scripts' own folder, which Python put there first,
    would otherwise make `import risk` or `import checkpoints` find the script of that name
    instead of the app."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def django_start(db: Database, shared_by: str) -> dict:
    """Django set up and migrated on `db`, and a line on what the figures ran on; the
    environment, which the app server gets too."""
    env = django_environment(db.url)
    django_setup(env)
    import django

    print(
        f"database: {db.label} (migrated)\n"
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"{os.cpu_count()} CPUs ({platform.machine()}), shared by {shared_by}"
    )
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


def token_revoke() -> None:
    """On a database that is not ours, the bench tokens do not outlive the run."""
    from django.utils import timezone

    from accounts.models import ApiToken

    tokens = ApiToken.objects.filter(name="create_service_token bench", revoked_at__isnull=True)
    tokens.update(revoked_at=timezone.now())


# --- the app server and wrk ------------------------------------------------------------

# A wrk Lua script's last function: one line of figures for wrk_run() to read. No braces,
# so that it can end a template filled in with str.format.
WRK_DONE_LUA = """\
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH-RESULT %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""
WRK_FIELDS = (
    "requests", "duration_us", "connect", "read", "write", "non2xx", "timeout", "p50_us", "p95_us", "p99_us", "max_us"
)

# Straight to 127.0.0.1, whatever http_proxy says.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port left in TIME_WAIT by an earlier run counts as free
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


def server_wait(proc, base_url: str, log_path: Path, timeout: float = 60, *, name: str = "the server") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}:\n{log_tail(log_path)}")
        try:
            if http_call(f"{base_url}/healthz", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"{name} did not answer /healthz within {timeout:g} s:\n{log_tail(log_path)}")


def server_stop(proc) -> None:
    """TERM to the server's main process (graceful); KILL to its process group if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the master and its workers
            proc.wait(timeout=5)


def app_server_log(folder: Path, port: int) -> Path:
    """The file in `folder` that `app_server` on `port` writes the server's output to (its
    stdout and stderr: granian's lines and the app's logs)."""
    return folder / f"app-server-{port}.log"


@contextlib.contextmanager
def app_server(env: dict, port: int, workers: int, folder: Path, *, app: str = "zakops_hitl.wsgi:application"):
    """The app's production server command (`python -m zakops_hitl.serve`) on
    127.0.0.1:port with `workers` worker processes, until the block ends, however it ends;
    yields the base URL. `app` is the WSGI callable to serve, as `module:name`, importable
    from the project folder. Everything that depends on which server this is stays in
    here: the benchmarks find its processes by the port it listens on (`server_processes`)."""
    log_path = app_server_log(folder, port)
    env = {k: v for k, v in env.items() if not k.startswith(("HITL_BIND", "HITL_WORKERS", "PROMETHEUS_"))}
    env.update(HITL_BIND=f"127.0.0.1:{port}", HITL_WORKERS=str(workers))
    cmd = [PYTHON, "-m", "zakops_hitl.serve", app]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(c) for c in cmd], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            server_wait(proc, base_url, log_path, name="the app server")
            yield base_url
        finally:
            server_stop(proc)


# --- a server's processes and their memory, from /proc -----------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in children.read_text().split()]
    return found


def _descendants(pid: int) -> list[int]:
    found, todo = [], _children(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        todo += _children(child)
    return found


def _listening_inodes(port: int) -> set[str]:
    """The inodes of the TCP sockets listening on `port` (any address)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(fields[9])
    return inodes


def _holds(pid: int, inodes: set[str]) -> bool:
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return True
    return False


def server_processes(port: int) -> tuple[int, list[int]]:
    """(master pid, worker pids) of the server this process started that listens on
    `port`: the master is the process started here (a child of this one) that a process
    holding the listening socket is, or descends from; it need not hold the socket itself
    (granian's main process does not). Its workers are its children that hold the socket
    (all its children if none does, itself if it has none: a server that runs in one
    process)."""
    inodes = _listening_inodes(port)
    holders = [pid for pid in _descendants(os.getpid()) if _holds(pid, inodes)] if inodes else []
    if not holders:
        raise BenchError(f"no process of this run listens on 127.0.0.1:{port}")
    master = holders[0]
    while (parent := _parent(master)) not in (os.getpid(), 0):
        master = parent
    children = _children(master)
    workers = [pid for pid in children if pid in holders] or children or [master]
    return master, sorted(workers)


def _parent(pid: int) -> int:
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    return 0


def process_memory(pid: int) -> dict:
    """Rss and Pss of a process in MiB, from /proc/<pid>/smaps_rollup."""
    figures = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            figures[name.lower()] = int(rest.split()[0]) / 1024
    return figures


def wrk_run(args, url: str, script: Path, seconds: float) -> tuple[dict, str]:
    """wrk's figures (WRK_FIELDS, then rps and socket errors) and the rest of what it printed."""
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
    figures["errors"] = figures["connect"] + figures["read"] + figures["write"] + figures["timeout"]
    return figures, "\n".join(line for line in lines if line is not result)


def wrk_print(output: str) -> None:
    print("\n".join(f"  | {line}" for line in output.splitlines()))


# --- summary and main ------------------------------------------------------------------


def summary_print(args, results: dict, *, in_process_rows, http_rows, http_name: str) -> None:
    """A table of (name, value, note) rows under a "Summary" heading, from what `results`
    holds so far: the in-process figures, then the HTTP ones or why that part was skipped."""
    rows = in_process_rows(args, results)
    if "http" in results:
        rows += http_rows(args, results["http"])
    elif "http_skipped" in results:
        rows.append((http_name, "skipped", results["http_skipped"]))
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    heading("Summary")
    for name, value, note in rows:
        print(f"{name:<{widths[0]}}  {value:>{widths[1]}}  {note}".rstrip())


def add_shared_arguments(
    parser, *, database_help: str, port: int, seconds_help: str, warmup_help: str, database_group=None
) -> None:
    """The options both benchmarks have, in the order --help lists them; --database-url goes
    into `database_group` when the script has other choices of database."""
    (database_group or parser).add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL") or None, help=database_help
    )
    parser.add_argument("--seconds", type=float, default=10, help=seconds_help)
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the app server (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--port", type=int, default=port, help=f"preferred port on 127.0.0.1 (default {port})")
    parser.add_argument("--http-warmup", type=float, default=2, help=warmup_help)


def add_final_arguments(parser) -> None:
    parser.add_argument("--skip-http", action="store_true", help="only the in-process part")
    parser.add_argument(
        "--timeout", type=int, default=600,
        help="stop everything after this many seconds, plus the wrk runs (default 600)",
    )


def bench_main(args, *, wrk_seconds: float, measure, in_process_rows, http_rows, http_name: str) -> int:
    """Run `measure(args, results)` within --timeout plus `wrk_seconds`, and print the
    summary even when a step fails, so that what was measured is not lost. Cleanup is left
    to `measure`'s context managers, which an error, the alarm or ^C unwinds. A benchmark
    with no HTTP part passes `http_name=None`."""
    summary = {"in_process_rows": in_process_rows, "http_rows": http_rows, "http_name": http_name}
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.timeout + int(wrk_seconds))
    results = {}
    if http_name is None:
        pass
    elif args.skip_http:
        results["http_skipped"] = "--skip-http"
    elif shutil.which("wrk") is None:
        results["http_skipped"] = "wrk not installed: apt-get install wrk"
        print("wrk is not installed, so the HTTP part is skipped: install it with `sudo apt-get install wrk`.")
    try:
        measure(args, results)
    except (BenchError, TimeoutError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        summary_print(args, results, **summary)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
    summary_print(args, results, **summary)
    return 0


# --- the shape of the queue data both approvals.py and pages.py bulk-insert -------------

# The settled actions' statuses, the pending ones' risk levels, and a score per level.
DONE_STATUSES = (("COMPLETED", 0.80), ("QUEUED", 0.03), ("REJECTED", 0.08), ("CANCELLED", 0.05), ("FAILED", 0.04))
PENDING_LEVELS = (("critical", 0.05), ("high", 0.20), ("medium", 0.45), ("low", 0.30))
SCORES = {"critical": 0.95, "high": 0.75, "medium": 0.5, "low": 0.2}


def weighted(rng, choices) -> str:
    """One of `choices`, (value, weight) pairs, drawn with `rng`."""
    values, weights = zip(*choices)
    return rng.choices(values, weights)[0]


def verdict(met: bool) -> str:
    """For a measured figure against a target stated beside it."""
    return "met" if met else "NOT met"


def approval_requests_delete(action_like: str) -> None:
    """Delete the approval requests of the actions whose id is LIKE `action_like`, and
    the rows that hang off them (notifications, votes, claims), in that order."""
    from django.db import connection

    requests = "SELECT id FROM approvals_approvalrequest WHERE action_id LIKE %s"
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM notifications_notification WHERE event_id IN "
            f"(SELECT id FROM notifications_notificationevent WHERE request_id IN ({requests}))",
            [action_like],
        )
        for table in ("notifications_notificationevent", "approvals_approvalvote", "approvals_claim"):
            cursor.execute(f"DELETE FROM {table} WHERE request_id IN ({requests})", [action_like])
        cursor.execute("DELETE FROM approvals_approvalrequest WHERE action_id LIKE %s", [action_like])
