"""gunicorn settings for production: `gunicorn zakops_hitl.wsgi` reads this file;
environment variables override the defaults.

One sync worker per core measured best on a 2-core machine with PostgreSQL local
(bench/): the work is CPU-bound there. With the database on another host, requests wait
longer on it, and GUNICORN_THREADS=2..4 lets another request use the CPU meanwhile.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS", 1))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
accesslog = os.environ.get("GUNICORN_ACCESSLOG")  # e.g. "-" for stdout
