"""Prometheus metrics of the app, and what a scrape of /metrics answers.

Counters and histograms are kept per process. Under the app server (zakops_hitl/serve.py
sets PROMETHEUS_MULTIPROC_DIR before the workers start) each worker writes its figures to a
file in that folder and a scrape sums the files of every worker, live or dead, so the
figures are the server's whatever worker answers. The state of the work itself (requests
waiting by risk level, requests expired so far) is read from the database at scrape time:
every app server reports the same figures, so aggregate those with max(), not sum().
"""

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUEST_SECONDS = Histogram(
    "hitl_http_request_duration_seconds",
    "Time to answer an HTTP request, by route name (the URL pattern, not the path), method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DECISIONS = Counter(
    "hitl_decisions",
    "Approval requests decided, by outcome (approved, rejected, quarantined, cancelled) and by whom "
    "(user: a person; system: approved automatically; service: the engine cancelling).",
    ["outcome", "decider"],
)
DECISION_SECONDS = Histogram(
    "hitl_time_to_decision_seconds",
    "From a request being opened to a person's decision on it, by risk level.",
    ["risk_level"],
    buckets=(30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400),
)
FAST_PATH_FAILURES = Counter(
    "hitl_fast_path_failures",
    "Calls whose fast path (zakops_hitl.api) raised instead of answering or declining, by route name; "
    "the full path answered them (503 when the database was unavailable).",
    ["route"],
)
REQUESTS_OPENED = Counter("hitl_approval_requests_opened", "Approval requests opened, by risk level.", ["risk_level"])
CHECKPOINT_SAVES = Counter("hitl_checkpoint_saves", "Checkpoints saved.")
CHECKPOINT_RESUMES = Counter("hitl_checkpoint_resumes", "Checkpoints resumed.")


# Every label comes from a closed set, whatever a request says: each new value is a new
# series in every worker's file and in every scrape, so a caller inventing methods would
# otherwise grow /metrics without end. Routes are URL pattern names (or `unmatched`),
# statuses the integers the app answers with.
HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def request_observe(*, route: str, method: str, status: int, seconds: float) -> None:
    method = method if method in HTTP_METHODS else "other"
    REQUEST_SECONDS.labels(route=route, method=method, status=str(int(status))).observe(seconds)


def fast_path_failed(*, route: str) -> None:
    FAST_PATH_FAILURES.labels(route=route).inc()


def transition_count(*, state: str, decider: str, risk_level: str, opened_at, decided_at) -> None:
    """Count one committed transition of an approval request (approvals.services)."""
    if state == "pending":
        REQUESTS_OPENED.labels(risk_level=risk_level).inc()
        return
    if state == "expired":
        return  # read from the database at scrape time: the sweep is a short-lived process
    DECISIONS.labels(outcome=state, decider=decider).inc()
    if decider == "user" and opened_at is not None and decided_at is not None:
        DECISION_SECONDS.labels(risk_level=risk_level).observe(max(0.0, (decided_at - opened_at).total_seconds()))


class WorkInTheDatabase:
    """Figures read from the database at each scrape, the same from every app server."""

    def collect(self):
        from approvals.selectors import request_counts

        counts = request_counts()
        waiting = GaugeMetricFamily(
            "hitl_open_requests",
            "Approval requests waiting for a person (pending, or quarantined for an admin), not past their "
            "deadline, by risk level.",
            labels=["state", "risk_level"],
        )
        for (state, level), n in sorted(counts.open.items()):
            waiting.add_metric([state, level], n)
        yield waiting
        expired = CounterMetricFamily("hitl_expired_requests", "Approval requests expired without a decision.")
        expired.add_metric([], counts.expired)
        yield expired


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
    registry.register(WorkInTheDatabase())
    return generate_latest(registry)
