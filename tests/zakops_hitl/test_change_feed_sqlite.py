"""The change feed on SQLite: a write to rules, settings, tokens or requests reaches every
process, whoever made it (the services, admin, `manage.py shell`, the sqlite3 shell),
through triggers that count it in hitl_change_version; a process reads those rows only
when `PRAGMA data_version` says something was committed."""

import sqlite3
import subprocess

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import ApiToken
from common.changes import VERSION_TABLE, feed, sqlite_version_triggers
from risk.models import RiskRule
from risk.rulebook import CHANNEL as RULES
from risk.services import risk_assess
from tests.servers import PYTHON, ROOT, served_database_url

pytestmark = [
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's triggers and data_version; PostgreSQL NOTIFYs"),
]


def another_process(code: str) -> None:
    """Run `code` in `manage.py shell`: another process writing with the ORM, as an admin
    at a shell would, without the services' announcements."""
    env = {"DATABASE_URL": served_database_url(), "DJANGO_ENV": "test", "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60
    )


def migrations_module(app: str, name: str):
    import importlib

    return importlib.import_module(f"{app}.migrations.{name}")


@pytest.mark.django_db
def test_every_trigger_is_there_after_all_migrations():
    """A later migration that rebuilds one of these tables on SQLite would drop its
    triggers, and that process's caches would go stale: this fails first."""
    expected = set()
    for app, name in [
        ("risk", "0009_sqlite_change_version"),
        ("accounts", "0005_sqlite_change_version"),
        ("approvals", "0006_sqlite_change_version"),
    ]:
        module = migrations_module(app, name)
        expected |= {trigger for trigger, _, _ in sqlite_version_triggers(channel=module.CHANNEL, tables=module.TABLES)}
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        present = {name for (name,) in cursor.fetchall()}
        cursor.execute(f"SELECT channel FROM {VERSION_TABLE}")
        channels = {channel for (channel,) in cursor.fetchall()}
    assert expected <= present, expected - present
    assert channels == {"hitl_risk_rules", "hitl_api_tokens", "hitl_approvals"}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_rule_saved_from_a_shell_in_another_process_is_used_at_once():
    RiskRule.objects.update_or_create(
        name="details", defaults={"risk_level": "low", "requires_approval": False, "action_types": ["DEAL.GET_DETAILS"]}
    )
    assert risk_assess(action_type="DEAL.GET_DETAILS").level == "low"  # the rule book is loaded
    assert risk_assess(action_type="DEAL.GET_DETAILS").level == "low"  # and cached

    another_process("from risk.models import RiskRule; RiskRule.objects.filter(name='details').update(risk_level='high')")

    result = risk_assess(action_type="DEAL.GET_DETAILS")
    assert (result.level, result.requires_approval) == ("high", True)

    another_process(
        "from risk.models import RiskSettings; RiskSettings.objects.update_or_create(pk=1, defaults={'base_high': 0.95})"
    )
    assert risk_assess(action_type="DEAL.GET_DETAILS").score == 0.95


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_token_revoked_with_plain_sql_in_another_process_stops_working(service_token):
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {service_token}")
    assert api.get("/api/hitl/risk-rules").status_code == 200  # the token is cached

    outside = sqlite3.connect(connection.settings_dict["NAME"])
    with outside:
        outside.execute("UPDATE accounts_apitoken SET revoked_at = CURRENT_TIMESTAMP")
    outside.close()

    assert ApiToken.objects.filter(revoked_at__isnull=False).exists()
    assert api.get("/api/hitl/risk-rules").status_code == 401


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_version_rows_are_read_only_after_a_commit():
    RiskRule.objects.update_or_create(name="watched", defaults={"risk_level": "high"})
    rules = feed.subscribe(RULES)
    assert rules.changed()  # a new subscriber loads once
    assert not rules.changed()
    reads = []
    feed._sqlite.set_trace_callback(lambda sql: reads.append(sql) if VERSION_TABLE in sql else None)
    try:
        for _ in range(200):
            assert not rules.changed()
        assert reads == []

        outside = sqlite3.connect(connection.settings_dict["NAME"])
        with outside:
            outside.execute("UPDATE risk_riskrule SET description = 'edited' WHERE name = 'watched'")
        outside.close()
        assert rules.changed()
        assert len(reads) == 1
        assert not rules.changed()
        assert len(reads) == 1
    finally:
        feed._sqlite.set_trace_callback(None)
