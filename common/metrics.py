"""Prometheus metrics: the HTTP ones every request counts, and what a scrape of /metrics
answers. The apps define their own counters (approvals.metrics, checkpoints.metrics) and add
collectors read at scrape time (`scrape_collector_add`).

Counters and histograms are kept per process. Under the app server (zakops_hitl/serve.py
sets PROMETHEUS_MULTIPROC_DIR before the workers start) each worker writes its figures to a
file in that folder and a scrape sums the files of every worker, live or dead, so the
figures are the server's whatever worker answers. Figures a collector reads from the
database at scrape time are the same from every app server, so aggregate those with
max(), not sum().
"""

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUEST_SECONDS = Histogram(
    "hitl_http_request_duration_seconds",
    "Time to answer an HTTP request, by route name (the URL pattern, not the path), method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
FAST_PATH_FAILURES = Counter(
    "hitl_fast_path_failures",
    "Calls whose engine path (zakops_hitl.engine) raised instead of answering or declining, by route name; "
    "the full path answered them (503 when the database was unavailable).",
    ["route"],
)


# Every label comes from a closed set, whatever a request says: each new value is a new
# series in every worker's file and in every scrape, so a caller inventing methods would
# otherwise grow /metrics without end. Routes are URL pattern names (or `unmatched`),
# statuses the integers the app answers with.
HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


_request_series: dict = {}  # (route, method, status) -> its histogram; bounded as the labels are


def request_observe(*, route: str, method: str, status: int, seconds: float) -> None:
    series = _request_series.get((route, method, status))
    if series is None:
        label = method if method in HTTP_METHODS else "other"
        series = REQUEST_SECONDS.labels(route=route, method=label, status=str(int(status)))
        if method in HTTP_METHODS:  # a method outside the set is not a key: callers choose it
            _request_series[(route, method, status)] = series
    series.observe(seconds)


def fast_path_failed(*, route: str) -> None:
    FAST_PATH_FAILURES.labels(route=route).inc()


# Collectors read at each scrape, added by the apps that own the figures (AppConfig.ready).
_scrape_collectors: list = []


def scrape_collector_add(collector) -> None:
    """Read `collector` (an object with collect(), as prometheus_client wants) at each scrape."""
    _scrape_collectors.append(collector)


class _ThisProcess:
    """The default registry (this process's metrics), when not under the app server."""

    def collect(self):
        yield from REGISTRY.collect()


def scrape() -> bytes:
    """The text exposition format of every metric, summed over the server's workers."""
    registry = CollectorRegistry()
    if MULTIPROCESS:
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    for collector in _scrape_collectors:
        registry.register(collector)
    return generate_latest(registry)
