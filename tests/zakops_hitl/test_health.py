"""/healthz says the process answers (no database); /readyz says it can serve: database
reachable, migrations applied, change listener connected. Both open, both JSON."""

import pytest
from django.db import OperationalError, connections

from common.changes import ChangeFeed
from zakops_hitl import views

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_down(monkeypatch):
    def connect():
        raise OperationalError("connection refused")

    monkeypatch.setattr(connections["default"], "ensure_connection", connect)


@pytest.fixture(autouse=True)
def _schema_not_yet_checked(monkeypatch):
    monkeypatch.setattr(views, "_schema_ready", False)


def test_healthz_is_open_and_asks_nothing_of_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_healthz_stays_200_while_the_database_is_down(client, database_down):
    assert client.get("/healthz").status_code == 200


def test_readyz_is_open_and_checks_database_migrations_and_change_feed(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == "ok"
    expected_feed = "listening" if connections["default"].vendor == "postgresql" else "file"
    assert body["checks"]["change_feed"] == expected_feed


def test_readyz_is_cheap_once_the_migrations_were_seen_applied(client, django_assert_num_queries):
    assert client.get("/readyz").status_code == 200
    with django_assert_num_queries(1):  # SELECT 1
        assert client.get("/readyz").status_code == 200


def test_readyz_is_503_while_the_database_is_down(client, database_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["database"] == "unreachable"


def test_readyz_is_503_while_a_migration_is_not_applied(client, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    real_plan = MigrationExecutor.migration_plan

    def one_left(self, targets, clean_start=False):
        plan = real_plan(self, targets, clean_start)
        return plan or [(self.loader.get_migration("risk", "0007_change_version"), False)]

    monkeypatch.setattr(MigrationExecutor, "migration_plan", one_left)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "1 migration(s) not applied: run manage.py migrate"
    monkeypatch.setattr(MigrationExecutor, "migration_plan", real_plan)
    assert client.get("/readyz").status_code == 200


@pytest.mark.postgresql
def test_readyz_is_503_while_the_change_listener_can_not_connect(client, monkeypatch, settings):
    """A process that would not hear of rule edits or revoked tokens is not ready."""
    unreachable = ChangeFeed()
    settings.HITL_LISTEN_DATABASE = {"NAME": "hitl", "HOST": "127.0.0.1", "PORT": "1", "USER": "postgres", "PASSWORD": ""}
    unreachable.subscribe("hitl_risk_rules")
    monkeypatch.setattr(views, "feed", unreachable)
    monkeypatch.setattr(views, "LISTENER_WAIT_SECONDS", 0.3)
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["change_feed"] == "not connected"
    finally:
        unreachable.stop()


def test_behind_tls_probes_and_scrapes_on_plain_http_are_not_redirected(settings, client):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/login/").status_code == 301
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 401  # answered, not sent to https
