"""The production server: `python -m zakops_hitl.serve` serves `zakops_hitl.wsgi` with
granian (a WSGI server written in Rust), configured from the environment (an argument,
`module:callable`, serves another WSGI app the same way; the benchmarks' floor does):

- HITL_BIND: address and port (default 0.0.0.0:8000);
- HITL_WORKERS: processes (default one per core);
- HITL_THREADS: threads per process running the app (default 1: one database
  connection per process; 2..4 when the database is on another host and requests
  wait on it);
- HITL_ACCESS_LOG: also log each request in granian's access format (default false;
  the app logs every request anyway, as JSON).

Why granian: on the engine's hot path the server alone cost as much as the app, and
gunicorn's sync worker closes the connection after each response (the figures that
decided it are in docs/performance.md).

Metrics: every worker writes its counters to files in PROMETHEUS_MULTIPROC_DIR, which
/metrics sums over the workers. Without that variable a private folder is made for this
server and removed when it stops; a folder given is emptied when the server starts
(figures of an earlier run would otherwise be added in), so give each server on a host
its own.
"""

import glob
import multiprocessing
import os
import shutil
import sys
import tempfile


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        value = int(raw) if raw.strip() else default
    except ValueError:
        sys.exit(f"zakops-hitl: {name} must be a whole number, not {raw!r}")
    if value < 1:
        sys.exit(f"zakops-hitl: {name} must be at least 1, not {value}")
    return value


def _bind() -> tuple[str, int]:
    raw = os.environ.get("HITL_BIND", "0.0.0.0:8000")
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit():
        sys.exit(f"zakops-hitl: HITL_BIND must be host:port, not {raw!r}")
    return host.strip("[]"), int(port)


def _log_config() -> dict | None:
    """granian's own lines (start, workers) in the app's JSON format, in production."""
    if os.environ.get("DJANGO_ENV") != "production" or os.environ.get("LOG_FORMAT", "json") != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "common.logs.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }


def _metrics_folder() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR, set here before any worker starts (they inherit it) and
    emptied; the folder made here when none was given, so that it can be removed."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        for path in glob.glob(os.path.join(given, "*.db")):
            os.remove(path)
        return None
    made = tempfile.mkdtemp(prefix="zakops-hitl-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made


def _metric_writes() -> None:
    """Each write of a metric to its worker's file first asks for the process id (a forked
    worker must write a file of its own), and os.getpid() is a system call: two a request.
    The id is kept here instead, renewed in every forked child, which is when it changes.
    Set before anything creates a metric (a class chosen later would open the same files a
    second time); the workers forked from this process inherit it."""
    from prometheus_client import values

    pid = [os.getpid()]
    os.register_at_fork(after_in_child=lambda: pid.__setitem__(0, os.getpid()))
    values.ValueClass = values.MultiProcessValue(lambda: pid[0])


def _preload() -> None:
    """Import Django, the apps and the URLconf (every view, serializer and the admin) here,
    in the server's main process, before it forks the workers: they share those pages
    instead of each importing its own copy. Importing opens no database connection and
    starts no thread; each worker still builds its own handlers (zakops_hitl.wsgi)."""
    import django

    django.setup(set_prefix=False)
    import zakops_hitl.urls  # noqa: F401


def main() -> None:
    from granian.constants import Interfaces
    from granian.server import Server

    host, port = _bind()
    workers = _int("HITL_WORKERS", multiprocessing.cpu_count())
    threads = _int("HITL_THREADS", 1)
    access_log = os.environ.get("HITL_ACCESS_LOG", "false").strip().lower() in ("1", "true", "yes", "on")
    made = _metrics_folder()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zakops_hitl.settings")
    target = sys.argv[1] if len(sys.argv) > 1 else "zakops_hitl.wsgi:application"
    if target == "zakops_hitl.wsgi:application":
        from django.core.exceptions import ImproperlyConfigured

        _metric_writes()
        try:
            _preload()
        except ImproperlyConfigured as exc:
            sys.exit(f"zakops-hitl: configuration error: {exc}")
    try:
        Server(
            target,
            address=host,
            port=port,
            interface=Interfaces.WSGI,
            workers=workers,
            blocking_threads=threads,
            websockets=False,
            log_dictconfig=_log_config(),
            log_access=access_log,
            respawn_failed_workers=True,
            workers_kill_timeout=30,
        ).serve()
    finally:
        if made:
            shutil.rmtree(made, ignore_errors=True)


if __name__ == "__main__":
    main()
