import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from rest_framework.test import APIClient

from accounts.services import api_token_create, operator_upsert, service_account_ensure
from common.changes import feed

ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
# Request threads of the live server (and test threads) end; persistent connections
# would outlive them and keep the test database from being dropped.
connections.settings["default"]["CONN_MAX_AGE"] = 0


CHROMIUM = Path("/usr/bin/chromium")


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(
        reason="needs PostgreSQL (schema zakops, LISTEN/NOTIFY): set DATABASE_URL=postgres://..."
    )
    skip_browser = pytest.mark.skip(reason="needs Chromium at /usr/bin/chromium (scripts/test installs it as root)")
    for item in items:
        if "postgresql" in item.keywords and not ON_POSTGRESQL:
            item.add_marker(skip_pg)
        if "browser" in item.keywords and not CHROMIUM.exists():
            item.add_marker(skip_browser)


@pytest.fixture(autouse=True)
def _test_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Production serves collected, hashed files; tests read static/ directly.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(scope="session", autouse=True)
def _stop_change_listener(django_db_setup):
    yield
    feed.stop()  # the change listener's connection would keep the test database from being dropped


@pytest.fixture(autouse=True)
def _fresh_caches():
    # A test's writes are rolled back with its transaction; the process-wide caches
    # (rules, tokens) must not carry them into the next test.
    feed.mark_all()
    yield
    feed.mark_all()


@pytest.fixture(autouse=True)
def _clean_shared_tables_after_transactional_tests(request, django_db_blocker):
    """Django's flush after a transactional test skips unmanaged tables: empty them."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if not (marker and marker.kwargs.get("transaction")):
        return
    with django_db_blocker.unblock(), connections["default"].cursor() as cursor:
        for table in ("execution_checkpoints", "outbox", "deal_events", "actions", "deals", "operators"):
            cursor.execute(f"DELETE FROM {table}")


def run_at_once(count: int, work):
    """Run work(i) in `count` threads released together, each on its own database
    connection; returns the results in order (an exception counts as a result)."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def runner(i):
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # the caller asserts on it
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_reviewer(db):
    """make_reviewer("operator") -> a signed-up person with that role and a password."""
    counter = iter(range(1, 10_000))

    def make(role: str, email: str | None = None):
        email = email or f"{role}{next(counter)}@example.com"
        return operator_upsert(email=email, role=role, password=PASSWORD, name=f"{role.title()} Person")

    return make


@pytest.fixture
def service_token(db) -> str:
    user = service_account_ensure(name="action-engine")
    return api_token_create(user=user, name="tests")[1]


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def engine_api(service_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {service_token}")
    return client
