"""Servers on 127.0.0.1 for the benchmarks: the app under its production server command,
any other server command, their processes, memory and CPU read from /proc, plain HTTP
calls, and wrk with the Lua scripts that drive it. Imported as `serving`, like `harness`.
"""

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from harness import PYTHON, ROOT, BenchError, run


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect (to the login page) is an answer to see, not to follow


# Straight to 127.0.0.1, whatever http_proxy says.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def http_call(url: str, *, body: dict | None = None, token: str | None = None, headers: dict | None = None,
              timeout: float = 5) -> tuple[int, bytes]:
    """(status, body) of a GET, or of a JSON POST when `body` is given; redirects not followed."""
    sent = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {}),
            **(headers or {})}
    data = json.dumps(body).encode() if body is not None else None
    try:
        with HTTP.open(urllib.request.Request(url, data=data, headers=sent), timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_expect(url: str, status: int, what: str, **call) -> bytes:
    """The body of one request that must answer `status` before a server is loaded."""
    got, body = http_call(url, **call)
    if got != status:
        raise BenchError(f"{what} answered {got}, not {status}; not loading it: {body[:300].decode(errors='replace')}")
    return body


# --- servers -------------------------------------------------------------------------------


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


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def served(cmd: list, env: dict, port: int, log_path: Path, name: str, timeout: float = 60):
    """A server command that listens on 127.0.0.1:port, in a session of its own with its
    output in `log_path`, until the block ends, however it ends; yields its base URL once it
    answers /healthz. Stopped with TERM to its main process (graceful), then KILL to its
    process group if it lingers."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise BenchError(f"{name} exited with {proc.returncode}:\n{log_tail(log_path)}")
                with contextlib.suppress(OSError):
                    if http_call(f"{base_url}/healthz", timeout=1)[0] == 200:
                        break
                if time.monotonic() > deadline:
                    raise BenchError(f"{name} did not answer /healthz within {timeout:g} s:\n{log_tail(log_path)}")
                time.sleep(0.2)
            yield base_url
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the master and its workers
                    proc.wait(timeout=5)


def app_server_log(folder: Path, port: int) -> Path:
    """Where `app_server` on `port` writes granian's lines and the app's logs."""
    return folder / f"app-server-{port}.log"


def app_server(env: dict, port: int, workers: int, folder: Path, *, app: str = "zakops_hitl.wsgi:application"):
    """The app's production server command (`python -m zakops_hitl.serve`) serving `app`
    (module:name, importable from the project folder) with `workers` worker processes on
    127.0.0.1, on `port` or the next free one, until the block ends; yields the base URL.
    Everything that depends on which server this is stays here: the benchmarks find its
    processes by the port it listens on (`server_processes`)."""
    port = free_port(port)
    env = {k: v for k, v in env.items() if not k.startswith(("HITL_BIND", "HITL_WORKERS", "PROMETHEUS_"))}
    env.update(HITL_BIND=f"127.0.0.1:{port}", HITL_WORKERS=str(workers))
    return served([PYTHON, "-m", "zakops_hitl.serve", app], env, port, app_server_log(folder, port), "the app server")


# --- a server's processes, their memory and CPU, from /proc --------------------------------


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


def _parent(pid: int) -> int:
    with contextlib.suppress(OSError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return 0


def server_processes(base_url: str) -> tuple[int, list[int]]:
    """(master pid, worker pids) of the server this process started that listens on the
    URL's port: the master is the process started here (a child of this one) that a
    process holding the listening socket is, or descends from; it need not hold the socket
    itself (granian's main process does not). Its workers are its children that hold the
    socket (all its children if none does, itself if it has none: a server that runs in
    one process)."""
    port = port_of(base_url)
    inodes = _listening_inodes(port)
    holders = [pid for pid in _descendants(os.getpid()) if _holds(pid, inodes)] if inodes else []
    if not holders:
        raise BenchError(f"no process of this run listens on 127.0.0.1:{port}")
    master = holders[0]
    while (parent := _parent(master)) not in (os.getpid(), 0):
        master = parent
    children = _children(master)
    return master, sorted([pid for pid in children if pid in holders] or children or [master])


def server_memory(base_url: str) -> dict:
    """The server's workers, and their mean and total RSS and PSS in MiB, from
    /proc/<pid>/smaps_rollup."""
    _master, workers = server_processes(base_url)
    figures = []
    for pid in workers:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        figures.append({name.lower(): int(rest.split()[0]) / 1024
                        for name, _, rest in (line.partition(":") for line in lines) if name in ("Rss", "Pss")})
    memory = {"pids": workers}
    for kind in ("rss", "pss"):
        memory[kind] = statistics.fmean(f[kind] for f in figures)
        memory[f"{kind}_total"] = sum(f[kind] for f in figures)
    return memory


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_of(pids: list[int]) -> dict[int, float]:
    """User plus system CPU seconds of each process still visible in /proc."""
    seconds = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return seconds


def machine_busy() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


# --- wrk -----------------------------------------------------------------------------------

# A wrk script's last function: one line of figures for wrk_run() to read, and with a
# response() that counts `unexpected` answers, their sum over the threads.
_DONE_LUA = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH-RESULT %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
  if counted then
    local n = 0
    for _, thread in ipairs(threads) do n = n + thread:get("unexpected") end
    io.write(string.format("BENCH-UNEXPECTED %d\\n", n))
  end
end
"""
_FIELDS = (
    "requests", "duration_us", "connect", "read", "write", "non2xx", "timeout", "p50_us", "p95_us", "p99_us", "max_us"
)


def lua_string(text: str) -> str:
    """A Lua string literal of `text`: its UTF-8 bytes, any but printable ASCII escaped."""
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03d}" for b in text.encode()) + '"'


def wrk_script(folder: Path, name: str, *, method: str = "GET", headers: dict | None = None, body: str | None = None,
               paths: list[str] | None = None, expect: int | None = None, lua: str = "") -> Path:
    """A wrk script in `folder`: requests with `method`, `headers` and `body`, to the URL's
    path, or with `paths` each to one of them at random (each thread its own sequence,
    the requests made once in init()); with `expect`, the answers with another status are
    counted. `lua`, if given, is the script's own setup, init and request instead."""
    lines = [f"wrk.method = {lua_string(method)}"]
    lines += [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in (headers or {}).items()]
    lines += [f"wrk.body = {lua_string(body)}"] if body is not None else []
    lines.append("threads = {}")
    if paths:
        lines += [
            "local paths = {" + ", ".join(map(lua_string, paths)) + "}",
            "local requests = {}",
            'function setup(thread) table.insert(threads, thread); thread:set("seed", #threads) end',
            "function init(args)",
            "  math.randomseed(seed)",
            "  for i, path in ipairs(paths) do requests[i] = wrk.format(nil, path) end",
            "end",
            "function request() return requests[math.random(#requests)] end",
        ]
    elif expect is not None:
        lines.append("function setup(thread) table.insert(threads, thread) end")
    if expect is not None:
        lines += [
            "counted = true",
            "unexpected = 0",
            f"function response(status, headers, body) if status ~= {expect} then unexpected = unexpected + 1 end end",
        ]
    script = folder / f"{name}.lua"
    script.write_text("\n".join(lines) + "\n" + lua + _DONE_LUA)
    return script


def wrk_command(args, connections: int | None = None) -> str:
    """How wrk loads for the measured runs: --threads (no more than the connections),
    --connections unless given, --seconds."""
    connections = connections or args.connections
    return f"wrk -t{min(args.threads, connections)} -c{connections} -d{args.seconds:g}s"


def wrk_run(args, url: str, script: Path, seconds: float, *, connections: int | None = None,
            show: bool = False) -> dict:
    """wrk's figures (requests, duration_us, its socket errors, non2xx, p50/p95/p99/max
    in µs, then rps, errors: the socket errors added up, and unexpected: the answers the
    script counted); with `show`, what else it printed, indented."""
    connections = connections or args.connections
    cmd = ["wrk", f"-t{min(args.threads, connections)}", f"-c{connections}", f"-d{seconds:g}s",
           "--timeout", "5s", "--latency", "-s", script, url]
    output = run(cmd, timeout=seconds + 30)
    figures, rest = {}, []
    for line in output.splitlines():
        if line.startswith("BENCH-RESULT "):
            figures.update(zip(_FIELDS, (float(v) for v in line.split()[1:])))
        elif line.startswith("BENCH-UNEXPECTED "):
            figures["unexpected"] = int(line.split()[1])
        else:
            rest.append(line)
    if "requests" not in figures:
        raise BenchError(f"wrk printed no result:\n{output}")
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    figures["errors"] = figures["connect"] + figures["read"] + figures["write"] + figures["timeout"]
    if show:
        print("\n".join(f"  | {line}" for line in rest))
    return figures


def wrk_figures(figures: dict, unit: str = "req", percentiles=(50, 95, 99)) -> str:
    """'1,234 req/s, p50 1.00 ms, p95 …': a run's throughput and latency."""
    return ", ".join([f"{figures['rps']:,.0f} {unit}/s"]
                     + [f"p{p} {figures[f'p{p}_us'] / 1000:.2f} ms" for p in percentiles])


def wrk_errors(figures: dict) -> str:
    return f"non-2xx/3xx {figures['non2xx']:.0f}, socket errors {figures['errors']:.0f}"


def wrk_rows(label: str, figures: dict, note: str, *, unit: str = "req/s", percentiles=(50, 99),
             latency_note: str = "") -> list:
    """Summary rows of a wrk run: throughput, latency, answers that were not 2xx/3xx."""
    names = " / ".join(f"p{p}" for p in percentiles)
    values = " / ".join(f"{figures[f'p{p}_us'] / 1000:.2f}" for p in percentiles)
    return [
        (label, f"{figures['rps']:,.0f} {unit}", note),
        (f"  {names} latency", f"{values} ms", latency_note),
        ("  non-2xx/3xx / socket errors", f"{figures['non2xx']:.0f} / {figures['errors']:.0f}",
         f"of {figures['requests']:,.0f} requests"),
    ]
