"""The production command refuses a bad setting with one line naming it, before serving."""

import subprocess

import pytest

from tests.servers import PYTHON, ROOT


def serve(**env):
    from tests.servers import production_env

    return subprocess.run(
        [str(PYTHON), "-m", "zakops_hitl.serve"], cwd=ROOT, env=production_env(ROOT / "staticfiles", **env),
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(("env", "message"), [
    ({"HITL_WORKERS": "two"}, "HITL_WORKERS must be a whole number, not 'two'"),
    ({"HITL_THREADS": "0"}, "HITL_THREADS must be at least 1, not 0"),
    ({"HITL_BIND": "8000"}, "HITL_BIND must be host:port, not '8000'"),
    ({"DJANGO_SECRET_KEY": ""}, "zakops-hitl: configuration error:"),
])
def test_a_bad_setting_stops_the_server_with_a_clear_line(env, message):
    done = serve(**env)
    assert done.returncode != 0
    assert message in done.stderr and "Traceback" not in done.stderr
