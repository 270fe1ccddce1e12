"""The workflow's metrics: transitions counted after commit in each process, and the
requests waiting or expired, read from the database at each scrape (so the same from
every app server: aggregate those with max())."""

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from approvals.selectors import request_counts

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
REQUESTS_OPENED = Counter("hitl_approval_requests_opened", "Approval requests opened, by risk level.", ["risk_level"])


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
    """Figures read from the database at each scrape (common.metrics.scrape)."""

    def collect(self):
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
