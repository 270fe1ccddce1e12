"""DJANGO_ENV picks the settings profile: development works from a fresh clone, production
takes its secrets from the environment only and passes `check --deploy`."""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from django.conf import settings

from tests.servers import ROOT, free_port

PYTHON = sys.executable
STRONG_KEY = "k3Y-" + "x7Qp9Lm2Zr5Tb8Wc" * 4


def run_manage(*args, env, timeout=120):
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def clean_env(**overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "WHITENOISE_"))}
    env.update(overrides)
    return env


def test_the_tests_run_with_the_test_profile():
    assert settings.PROFILE == "test"
    assert settings.STORAGES["staticfiles"]["BACKEND"] == "django.contrib.staticfiles.storage.StaticFilesStorage"


def test_production_takes_the_secret_key_from_the_environment_only():
    # Even where var/secret_key exists (development made it), production does not read it.
    result = run_manage("check", env=clean_env(DJANGO_ENV="production", DJANGO_ALLOWED_HOSTS="hitl.example.com"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "zakops-hitl: configuration error: DJANGO_SECRET_KEY must be set with DJANGO_ENV=production "
        "(the same key on every app server)"
    ]


def test_production_needs_its_host_names_and_refuses_debug():
    result = run_manage("check", env=clean_env(DJANGO_ENV="production", DJANGO_SECRET_KEY=STRONG_KEY))
    assert result.returncode != 0 and "DJANGO_ALLOWED_HOSTS must be set" in result.stderr
    result = run_manage("check", env=clean_env(
        DJANGO_ENV="production", DJANGO_SECRET_KEY=STRONG_KEY, DJANGO_ALLOWED_HOSTS="h.example.com", DJANGO_DEBUG="true",
    ))
    assert result.returncode != 0 and "DJANGO_DEBUG=true is not allowed" in result.stderr


def test_check_deploy_is_clean_with_the_production_profile_and_its_defaults():
    # No DJANGO_SECURE: production assumes TLS (secure cookies, HSTS, redirect to https).
    env = clean_env(DJANGO_ENV="production", DJANGO_SECRET_KEY=STRONG_KEY, DJANGO_ALLOWED_HOSTS="hitl.example.com")
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_fresh_clone_serves_its_login_page_with_runserver_right_after_migrate(tmp_path):
    """No DJANGO_DEBUG, no collectstatic, no DJANGO_ENV: the development profile serves
    static/ as it is. (Before profiles, production's hashed-name storage was used whenever
    DEBUG was off, and the first {% static %} failed: a 500.)"""
    env = clean_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.sqlite3'}", DJANGO_STATIC_ROOT=str(tmp_path / "never-collected")
    )
    assert run_manage("migrate", "--no-input", "-v0", env=env).returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with opener.open(f"http://127.0.0.1:{port}/login/", timeout=2) as response:
                    status, page = response.status, response.read().decode()
                break
            except urllib.error.HTTPError as exc:
                status, page = exc.code, exc.read().decode(errors="replace")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "runserver did not start"
                time.sleep(0.2)
        assert status == 200, page[:2000]
        assert 'href="/static/css/app.css"' in page
        with opener.open(f"http://127.0.0.1:{port}/static/css/app.css", timeout=5) as response:
            assert response.status == 200
            assert b".error" in response.read()
    finally:
        server.terminate()
        server.wait(timeout=10)
