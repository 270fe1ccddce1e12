"""`scripts/run` as a newcomer meets it: what it prints up to "Serving on", on a fresh
database, with HITL_DEMO=0, and on a database that holds real data. Each run is the real
script (migrate, seed, the notification worker, runserver) on a SQLite file of its own and
a free port of 127.0.0.1, stopped once it serves."""

import contextlib
import os
import queue
import re
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest

from tests.servers import PYTHON, ROOT, free_port

SCREEN = 40  # lines a terminal shows at once, about
_SECRET_KEY = secrets.token_urlsafe(50)  # the runs' own, so the demo passwords are those of these runs


@dataclass
class Run:
    lines: list[str]  # printed up to and with "Serving on"
    port: int


@contextlib.contextmanager
def serving(database, **env):
    """scripts/run until the block ends; the Run holds what it printed up to "Serving on"."""
    port = free_port()
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "HITL_", "DATABASE_"))}
    environ.update(
        DJANGO_ENV="development", DJANGO_SECRET_KEY=_SECRET_KEY, DATABASE_URL=f"sqlite:///{database}",
        HITL_ADDR=f"127.0.0.1:{port}", **env,
    )
    process = subprocess.Popen(
        ["bash", "scripts/run"], cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )
    printed: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [printed.put(line.rstrip("\n")) for line in process.stdout], daemon=True).start()
    lines: list[str] = []
    deadline = time.monotonic() + 180  # a fresh database's migrations on a busy two-core machine
    try:
        while not (lines and lines[-1].startswith("Serving on")):
            assert process.poll() is None or not printed.empty(), "scripts/run stopped:\n" + "\n".join(lines)
            assert time.monotonic() < deadline, "scripts/run did not serve in time:\n" + "\n".join(lines)
            try:
                lines.append(printed.get(timeout=1))
            except queue.Empty:
                continue
        time.sleep(0.5)  # whatever it would print next
        while not printed.empty():
            lines.append(printed.get())
        yield Run(lines, port)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """One SQLite file for the module's runs, in order: fresh, then HITL_DEMO=0, then real data."""
    return tmp_path_factory.mktemp("scripts-run") / "db.sqlite3"


def run_until_serving(database, **env) -> Run:
    with serving(database, **env) as run:
        return run


@pytest.fixture(scope="module")
def first_run(database):
    """The first run on a fresh database, serving until the module's tests end."""
    with serving(database) as run:
        yield run


def after_install(lines: list[str]) -> list[str]:
    return lines[next(i for i, line in enumerate(lines) if line.startswith("Database: ")):]


def test_a_fresh_run_fits_on_one_screen_with_the_accounts_the_token_and_the_address_last(first_run):
    shown = after_install(first_run.lines)
    assert len(shown) <= SCREEN, "\n".join(shown)
    assert shown[-1] == f"Serving on http://127.0.0.1:{first_run.port}/ (development server) — open it and sign in with one of the accounts above."
    text = "\n".join(shown)
    assert re.search(r"^Database: .*, [1-9][0-9]* migrations applied\.$", text, re.M)
    assert len(re.findall(r"^  admin +admin2?@operations\.demo +password demo-", text, re.M)) == 2
    assert "Traceback" not in text and "Subject:" not in text  # the worker's e-mails are in the log file
    assert "The notification worker's log and the e-mails it prints: var/demo-mail.log" in shown


def test_the_demo_e_mails_go_to_the_log_file_it_names(first_run):
    link = f"http://127.0.0.1:{first_run.port}/actions/ACT-DEMO-"  # this run's, whatever else the file holds
    log = ROOT / "var" / "demo-mail.log"
    deadline = time.monotonic() + 30
    while not (log.exists() and link in log.read_text(errors="replace")):
        assert time.monotonic() < deadline, "no demo e-mail of this run in var/demo-mail.log"
        time.sleep(0.5)
    assert not any(link in line for line in first_run.lines)


def test_the_printed_curl_opens_a_critical_request(first_run):
    line = next(line.strip() for line in first_run.lines if line.strip().startswith("TOKEN="))
    assert f"http://127.0.0.1:{first_run.port}/api/hitl/approval-requests" in line
    answer = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert '"risk_level":"critical"' in answer.stdout.replace(" ", ""), answer.stdout
    assert '"state":"pending"' in answer.stdout.replace(" ", "")


def test_hitl_demo_0_skips_the_demo_on_purpose(database, first_run):
    shown = after_install(run_until_serving(database, HITL_DEMO="0").lines)
    text = "\n".join(shown)
    assert "Demo: not seeded (HITL_DEMO=0)." in shown
    assert "Sign in with one of" not in text and "TOKEN=" not in text
    assert shown[-1].startswith("Serving on ") and shown[-1].endswith("— open it and sign in.")


def test_a_database_with_real_data_is_served_without_the_demo_and_one_line_says_why(database, first_run):
    subprocess.run(
        [str(PYTHON), "manage.py", "shell", "-c",
         "from zakops.models import Deal; Deal.objects.create(deal_id='DL-0001', canonical_name='Northwind Traders', display_name='Northwind', stage='loi')"],
        cwd=ROOT, check=True, capture_output=True, timeout=60,
        env={**os.environ, "DJANGO_ENV": "development", "DJANGO_SECRET_KEY": _SECRET_KEY, "DATABASE_URL": f"sqlite:///{database}"},
    )
    shown = after_install(run_until_serving(database).lines)
    text = "\n".join(shown)
    assert "Traceback" not in text and "Error" not in text, text
    refused = [line for line in shown if line.startswith("Demo: ")]
    assert refused == ["Demo: not seeded, this database holds rows that are not demo data: deals DL-0001 (seed_demo --force adds it anyway)."]
    assert shown[-1].startswith("Serving on ")
