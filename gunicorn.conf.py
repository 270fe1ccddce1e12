"""gunicorn settings for production: `gunicorn zakops_hitl.wsgi` reads this file (from the
folder it is started in, or with `-c gunicorn.conf.py`); environment variables override
the defaults.

One sync worker per core measured best on a 2-core machine with PostgreSQL local
(bench/): the work is CPU-bound there. With the database on another host, requests wait
longer on it, and GUNICORN_THREADS=2..4 lets another request use the CPU meanwhile.

Metrics: every worker writes its counters to files in PROMETHEUS_MULTIPROC_DIR, which
/metrics sums over the workers. Without that variable a private folder is made for this
server; a folder given is emptied when the server starts (figures of an earlier run would
otherwise be added in), so give each server on a host its own.
"""

import glob
import multiprocessing
import os
import shutil
import tempfile

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS", 1))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
accesslog = os.environ.get("GUNICORN_ACCESSLOG")  # e.g. "-" for stdout; the app logs each request anyway

# Set here, in the master, before any worker imports prometheus_client: the workers inherit it.
_metrics_dir_made_here = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _metrics_dir_made_here:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="zakops-hitl-metrics-")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# gunicorn's own lines (start, worker boot and exit) in the app's JSON format, in production.
if os.environ.get("DJANGO_ENV") == "production" and os.environ.get("LOG_FORMAT", "json") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "zakops_hitl.logs.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["console"] if accesslog else [], "level": "INFO", "propagate": False},
        },
    }


def on_starting(server):
    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(path)


def on_exit(server):
    if _metrics_dir_made_here:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def child_exit(server, worker):
    """A worker that exited keeps its counters in the sum; its live gauges go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
