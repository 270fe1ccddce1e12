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


FORKED_WRITES = """
import os, sys
from zakops_hitl.serve import _metric_writes
_metric_writes()
from prometheus_client import Counter
counted = Counter("forked_writes", "A counter written before and after a fork.")
counted.inc()
child = os.fork()
if child == 0:
    counted.inc(2)
    os._exit(0)
os.waitpid(child, 0)
print(os.getpid(), child)
"""


def test_each_forked_worker_writes_its_own_metric_file(tmp_path):
    """The process id the metric writes keep (serve._metric_writes) is renewed at fork: the
    parent's counts and a forked worker's land in files of their own, as with getpid()."""
    from prometheus_client import CollectorRegistry, multiprocess

    done = subprocess.run([str(PYTHON), "-c", FORKED_WRITES], cwd=ROOT, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    parent, child = done.stdout.split()
    assert sorted(path.name for path in tmp_path.glob("*.db")) == sorted([f"counter_{parent}.db", f"counter_{child}.db"])
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(tmp_path))
    assert registry.get_sample_value("forked_writes_total") == 3
