"""Reading settings from the environment (and `.env`): each reader names the variable in
its error, so a bad value stops start-up with one line saying which and why."""

from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # real environment variables win over .env

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def read_bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="")
    if raw == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def read_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.str(name, default="")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {value}")
    return value


def read_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.str(name, default="")
    if raw == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def database(url: str | None, name: str = "DATABASE_URL") -> dict:
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
        }
    scheme = urlsplit(url).scheme
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(
            f"{name} must start with postgres:// or sqlite:///, got scheme {scheme or 'none'!r}"
        )
    try:
        config = environ.Env.db_url_config(url)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from None
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} names no database")
    return config


def base_url(name: str, default: str) -> str:
    raw = env.str(name, default="").strip() or default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ImproperlyConfigured(f"{name} must be an http:// or https:// address such as https://hitl.example.com, got {raw!r}")
    return raw.rstrip("/")


def email(name: str, default: str) -> dict:
    """Django's e-mail settings from one URL (django-environ's email_url). The error never
    repeats the URL: it may hold the SMTP password."""
    try:
        config = env.email_url(name, default=default)
    except (ImproperlyConfigured, ValueError):
        scheme = urlsplit(env.str(name, default="")).scheme or "none"
        raise ImproperlyConfigured(
            f"{name} must be smtp://, smtp+tls://, smtp+ssl://, consolemail://, filemail:// or dummymail:// "
            f"with a valid host and port, got scheme {scheme!r}"
        ) from None
    config.pop("OPTIONS", None)
    return config


