"""The notification settings: a bad value stops start-up with one line naming it, and
the line never repeats an SMTP password."""

import os
import subprocess
import sys

import pytest

from tests.zakops_hitl.test_settings import ROOT, run_check


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EMAIL_URL", "mysql://mailer:Secr3tPw@smtp.example.com"),
        ("EMAIL_URL", "smtp://mailer:Secr3tPw@smtp.example.com:notaport"),
        ("HITL_BASE_URL", "hitl.example.com"),
        ("HITL_BASE_URL", "ftp://hitl.example.com"),
        ("HITL_NOTIFY_REMINDER_PERCENT", "100"),
        ("HITL_NOTIFY_REMINDER_PERCENT", "a quarter"),
        ("HITL_NOTIFY_MAX_ATTEMPTS", "0"),
        ("HITL_NOTIFY_TIMEOUT_SECONDS", "600"),
        ("HITL_WEBHOOK_ALLOWED_HOSTS", "hooks.internal,https://10.0.0.5/in"),
        ("HITL_WEBHOOK_ALLOWED_HOSTS", "hooks.internal:8080"),
    ],
)
def test_a_bad_notification_setting_stops_startup_naming_it(variable, value):
    result = run_check(**{variable: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], result.stderr
    assert "Secr3tPw" not in result.stderr


def test_email_url_and_base_url_configure_django():
    env = {
        **os.environ, "EMAIL_URL": "smtp+tls://mailer:Secr3tPw@smtp.example.com:587",
        "HITL_BASE_URL": "https://hitl.example.com/", "HITL_NOTIFY_TIMEOUT_SECONDS": "7",
    }
    code = (
        "from django.conf import settings as s; print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, "
        "s.EMAIL_HOST_USER, s.EMAIL_TIMEOUT, s.HITL_BASE_URL)"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.core.mail.backends.smtp.EmailBackend", "smtp.example.com", "587", "True", "mailer", "7",
        "https://hitl.example.com",
    ]


def test_without_email_url_e_mails_go_to_the_console():
    env = {key: value for key, value in os.environ.items() if key != "EMAIL_URL"}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", "from django.conf import settings; print(settings.EMAIL_BACKEND)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.stdout.strip() == "django.core.mail.backends.console.EmailBackend", result.stderr
