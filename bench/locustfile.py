"""The users of the mixed load run (bench/mixed.py starts locust with this file).

- The engine (bearer token): opens approval requests (with an Idempotency-Key, as it
  would retry), polls its actions' decisions and saves checkpoints of their runs.
- Reviewers (a session, signed in with a password, as in the browser): load the queue
  page, refresh it as htmx does every few seconds (204 while unchanged) and decide rows
  (approve or reject, with a reason), as the row buttons post.

Settings come from the environment (BENCH_*), set by mixed.py. What the run did that the
database must show afterwards (requests opened, decisions won) is written to
BENCH_OUTCOMES when it stops.
"""

import itertools
import json
import os
import random
import re
import uuid

from locust import HttpUser, between, events, task

ENGINE_TOKEN = os.environ.get("BENCH_ENGINE_TOKEN", "")
REVIEWERS = [pair.split(":", 1) for pair in os.environ.get("BENCH_REVIEWERS", "").split(",") if pair]
ACTION_PREFIX = os.environ.get("BENCH_ACTION_PREFIX", "bench-mixed-")
OUTCOMES = os.environ.get("BENCH_OUTCOMES")

ROW = re.compile(r'data-action-id="([^"]+)"[^>]*\s+data-detail-url=[^>]*data-decide-url=')
VERSION = re.compile(r'data-version="([^"]+)"')
CHECKPOINT_DATA = {"step": "draft", "messages": [{"role": "tool", "content": "x" * 200} for _ in range(4)]}

run = uuid.uuid4().hex[:6]
numbers = itertools.count(1)
engine_actions: list[str] = []  # opened by the engine in this run: what it polls and checkpoints
reviewer_numbers = itertools.count(0)
counts = {"opened": 0, "decided": 0, "conflicts": 0, "checkpoints": 0}


class Engine(HttpUser):
    wait_time = between(0.02, 0.1)
    weight = 4

    def on_start(self):
        self.client.headers["Authorization"] = f"Bearer {ENGINE_TOKEN}"

    @task(2)
    def request_approval(self):
        action_id = f"{ACTION_PREFIX}{run}-{next(numbers):06d}"
        with self.client.post(
            "/api/hitl/approval-requests",
            json={"action_id": action_id, "action_type": "COMMUNICATION.DRAFT_EMAIL", "title": f"Draft {action_id}"},
            headers={"Idempotency-Key": action_id},
            name="POST approval-requests",
            catch_response=True,
        ) as response:
            if response.status_code == 201:
                engine_actions.append(action_id)
                counts["opened"] += 1
                response.success()
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(5)
    def poll(self):
        if not engine_actions:
            return
        action_id = random.choice(engine_actions[-500:])
        self.client.get(f"/api/hitl/actions/{action_id}/approval", name="GET actions/[id]/approval")

    @task(3)
    def save_checkpoint(self):
        if not engine_actions:
            return
        action_id = random.choice(engine_actions[-500:])
        with self.client.post(
            f"/api/hitl/actions/{action_id}/checkpoints",
            json={"checkpoint_name": "step", "checkpoint_data": CHECKPOINT_DATA},
            name="POST actions/[id]/checkpoints",
            catch_response=True,
        ) as response:
            if response.status_code == 201:
                counts["checkpoints"] += 1
                response.success()
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class Reviewer(HttpUser):
    wait_time = between(0.05, 0.2)
    fixed_count = len(REVIEWERS)

    def on_start(self):
        self.email, password = REVIEWERS[next(reviewer_numbers) % len(REVIEWERS)]
        self.rows, self.version = [], None
        self.client.get("/login/", name="GET login")
        response = self.client.post(
            "/login/",
            data={"username": self.email, "password": password, "csrfmiddlewaretoken": self.client.cookies.get("csrftoken")},
            name="POST login",
            allow_redirects=False,
        )
        if response.status_code != 302:
            raise RuntimeError(f"{self.email} could not sign in: {response.status_code}")

    @task(2)
    def load_queue(self):
        response = self.client.get("/", name="GET queue page")
        if response.status_code == 200:
            self.rows = ROW.findall(response.text)
            found = VERSION.search(response.text)
            self.version = found.group(1) if found else None

    @task(3)
    def refresh(self):
        if self.version is None:
            return
        with self.client.get(
            f"/?v={self.version}", headers={"HX-Request": "true"}, name="GET queue refresh (htmx)", catch_response=True
        ) as response:
            if response.status_code in (200, 204):
                response.success()
                if response.status_code == 200:
                    self.rows = ROW.findall(response.text) or self.rows
                    found = VERSION.search(response.text)
                    self.version = found.group(1) if found else self.version

    @task(4)
    def decide(self):
        if not self.rows:
            return
        action_id = self.rows.pop(random.randrange(len(self.rows)))
        decision = random.choice(["approve", "approve", "approve", "reject"])
        with self.client.post(
            f"/actions/{action_id}/decide",
            data={"decision": decision, "reason": "load run", "where": "row"},
            headers={"X-CSRFToken": self.client.cookies.get("csrftoken"), "HX-Request": "true"},
            name="POST actions/[id]/decide (page)",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
            elif 'class="ok"' in response.text:
                counts["decided"] += 1
                response.success()
            elif "Not decided" in response.text:
                counts["conflicts"] += 1  # another reviewer was first: the page says so
                response.success()
            else:
                response.failure(f"neither decided nor a conflict: {response.text[:300]}")


def _figures(entry) -> dict:
    return {
        "name": entry.name, "requests": entry.num_requests, "errors": entry.num_failures, "rps": entry.total_rps,
        **{f"p{int(q * 100)}": entry.get_response_time_percentile(q) for q in (0.5, 0.95, 0.99)},
    }


@events.test_stop.add_listener
def _write_outcomes(environment, **kwargs):
    """Once every user has finished its last task: the figures per endpoint and the counts,
    so that both cover the same requests."""
    if OUTCOMES:
        endpoints = [_figures(entry) for entry in sorted(environment.stats.entries.values(), key=lambda e: e.name)]
        with open(OUTCOMES, "w") as out:
            json.dump({**counts, "run": run, "endpoints": endpoints, "all": _figures(environment.stats.total)}, out)
