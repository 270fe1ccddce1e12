"""A bad setting stops start-up with one line naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_check(**env_overrides):
    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/zakops"),
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:notaport/zakops"),
        ("ZAKOPS_HITL_DEFAULT_RISK_LEVEL", "extreme"),
        ("ZAKOPS_HITL_DEFAULT_REQUIRES_APPROVAL", "perhaps"),
        ("ZAKOPS_HITL_AUTO_APPROVE_LOW_RISK", "2"),
        ("HITL_CHECKPOINT_MAX_BYTES", "lots"),
        ("HITL_JSON_MAX_DEPTH", "0"),
        ("HITL_JSON_MAX_DEPTH", "deep"),
        ("DJANGO_ENV", "staging"),
        ("DATABASE_TRANSACTION_POOLING", "sometimes"),
        ("DATABASE_LISTEN_URL", "mysql://root@localhost/zakops"),
        ("HITL_LOGIN_FAILURE_LIMIT", "0"),
        ("HITL_PROXY_COUNT", "-1"),
        ("LOG_FORMAT", "xml"),
    ],
)
def test_invalid_setting_stops_startup_with_one_line_naming_it(variable, value):
    result = run_check(**{variable: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_valid_settings_start():
    result = run_check(ZAKOPS_HITL_DEFAULT_RISK_LEVEL="HIGH", ZAKOPS_HITL_AUTO_APPROVE_LOW_RISK="yes")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
