"""Real app servers for the tests that need other processes: the production command
(`python -m zakops_hitl.serve`) and profile, on a free port of 127.0.0.1, against the
test database (its data must be committed: `django_db(transaction=True)`), and a small
HTTP client that keeps cookies, as a browser would."""

import contextlib
import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from django.db import connection
from django.utils.datastructures import CaseInsensitiveMapping

ROOT = Path(__file__).resolve().parents[1]
PYTHON = Path(sys.executable)
SECRET_KEY = secrets.token_urlsafe(50)  # one per test run, shared by its servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def served_database_url(**parts) -> str:
    """The URL of the database this test runs on (pytest-django's test database), with
    `parts` (host, port) replaced, e.g. to go through a pooler."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    user = urllib.parse.quote(s["USER"] or "postgres")
    password = f":{urllib.parse.quote(s['PASSWORD'])}" if s["PASSWORD"] else ""
    host = parts.get("host", s["HOST"] or "127.0.0.1")
    port = parts.get("port", s["PORT"] or 5432)
    return f"postgres://{user}{password}@{host}:{port}/{s['NAME']}"


def production_env(static_root: Path, **overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HITL_BIND", "HITL_WORKERS", "PROMETHEUS_"))}
    env.update(
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE="false",  # plain http on loopback
        DATABASE_URL=served_database_url(),
        DJANGO_STATIC_ROOT=str(static_root),
        LOG_LEVEL="INFO",
    )
    env.pop("DJANGO_DEBUG", None)
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def collect_static(static_root: Path) -> None:
    subprocess.run(
        [PYTHON, "manage.py", "collectstatic", "--no-input", "-v0"], cwd=ROOT,
        env=production_env(static_root), check=True, capture_output=True, timeout=120,
    )


@dataclass
class Server:
    base_url: str
    log_path: Path
    process: subprocess.Popen

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _http_status(url: str, timeout: float = 1.0) -> int | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@contextlib.contextmanager
def app_server(env: dict, log_path: Path, *, workers: int = 1):
    """The production command (`python -m zakops_hitl.serve`), until the block ends; ready
    once /healthz answers."""
    port = free_port()
    env = {**env, "HITL_BIND": f"127.0.0.1:{port}", "HITL_WORKERS": str(workers)}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(PYTHON), "-m", "zakops_hitl.serve"], cwd=ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", log_path, process)
    try:
        deadline = time.monotonic() + 60
        while _http_status(f"{server.base_url}/healthz") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app server did not start:\n{server.log()[-3000:]}")
            time.sleep(0.1)
        yield server
    finally:
        _stop(process)


def _headers(message) -> CaseInsensitiveMapping:
    """Response headers by name in any case (HTTP/1.1 names are; granian sends them lower-case)."""
    return CaseInsensitiveMapping(dict(message))


@dataclass
class Response:
    status: int
    headers: CaseInsensitiveMapping
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class Client:
    """HTTP to one server, with cookies (a session) and Django's CSRF token when it has one."""

    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url
        self.token = token
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect()
        )

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    def request(self, method: str, path: str, *, json_body=None, form=None, headers=None) -> Response:
        headers = dict(headers or {})
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if method == "POST" and self.cookie("csrftoken"):
            headers.setdefault("X-CSRFToken", self.cookie("csrftoken"))
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=30) as response:
                return Response(response.status, _headers(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, _headers(exc.headers), exc.read())

    def get(self, path: str, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> Response:
        return self.request("POST", path, **kwargs)

    def sign_in(self, email: str, password: str) -> Response:
        """The login form, as a person fills it in."""
        self.get("/login/")
        return self.post("/login/", form={
            "username": email, "password": password, "csrfmiddlewaretoken": self.cookie("csrftoken") or "",
        })

    def admin_action(self, changelist: str, action: str, pks: list) -> Response:
        """Run an admin list action (e.g. revoke) on the rows `pks` of /admin/<changelist>/."""
        self.get(f"/admin/{changelist}/")
        return self.post(f"/admin/{changelist}/", form={
            "action": action, "_selected_action": [str(pk) for pk in pks], "index": "0",
            "csrfmiddlewaretoken": self.cookie("csrftoken") or "",
        })


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a 302 is an answer to assert on, not followed


def eventually(check, *, within: float) -> float:
    """Seconds until check() is true; fails after `within` seconds. A change made in one
    process reaches another through its listener thread, a few milliseconds later."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < within, f"not seen within {within} s"
        time.sleep(0.01)
    return time.monotonic() - start


def data_version(page: str) -> str:
    """The queue version a queue page shows (what its htmx refresh sends back as `v`)."""
    return re.search(r'data-version="([^"]+)"', page).group(1)
