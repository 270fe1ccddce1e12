"""Settings for ZakOps HITL, read from the environment (and `.env`, when present).

One variable, DJANGO_ENV, picks the profile:

- development (the default): the quick start. `runserver` serves static/ as it is, with
  no `collectstatic`; without DJANGO_SECRET_KEY a key is kept in var/secret_key.
- test: what pytest runs with (tests/profile.py sets it); like development, but no key file.
- production: secrets only from the environment (DJANGO_SECRET_KEY and
  DJANGO_ALLOWED_HOSTS are required), TLS assumed (DJANGO_SECURE defaults to true), hashed
  and compressed static files from `collectstatic`, JSON logs; `check --deploy` is clean.

Every variable is listed in `.env.example`. An invalid value stops start-up with a
message naming the variable; nothing falls back silently.
"""

import ipaddress
import re
import secrets
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from zakops_hitl.environment import BASE_DIR, base_url, database, email, env, read_bool, read_choice, read_int


def _secret_key() -> str:
    key = env.str("DJANGO_SECRET_KEY", default="")
    if key:
        return key
    if PROFILE == "production":
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set with DJANGO_ENV=production (the same key on every app server)"
        )
    if PROFILE == "test":
        return "test-only-" + "k" * 50  # never written anywhere, never used outside tests
    # Embedded use: keep a generated key beside the SQLite file so sessions survive
    # restarts. Production sets DJANGO_SECRET_KEY (several servers must share it).
    path = BASE_DIR / "var" / "secret_key"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


PROFILE = read_choice("DJANGO_ENV", "development", ("development", "test", "production"))
PRODUCTION = PROFILE == "production"

DEBUG = read_bool("DJANGO_DEBUG", False)
if DEBUG and PRODUCTION:
    raise ImproperlyConfigured("DJANGO_DEBUG=true is not allowed with DJANGO_ENV=production")
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set with DJANGO_ENV=production, e.g. hitl.example.com")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Behind TLS in production (set false only to try the production profile on plain http);
# off for the quick start.
SECURE = read_bool("DJANGO_SECURE", PRODUCTION)
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = SECURE
# Probes and Prometheus reach an app server directly, on plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = 31536000 if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE else None
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "common",
    "zakops",
    "accounts",
    "risk",
    "approvals",
    "checkpoints",
    "notifications",
    "operations",
]

MIDDLEWARE = [
    "zakops_hitl.middleware.RequestLogMiddleware",  # first: it times and logs everything below
    "zakops_hitl.middleware.ServerTimingMiddleware",  # database and total time, for the browser's tools
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "zakops_hitl.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Every script and style comes from static/: no inline script, no inline style, no CDN.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    },
}

ROOT_URLCONF = "zakops_hitl.urls"
WSGI_APPLICATION = "zakops_hitl.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database(env.str("DATABASE_URL", default=""))}
_db = DATABASES["default"]
# DATABASE_URL goes through a pooler in transaction mode (PgBouncer pool_mode=transaction):
# a server connection is someone else's after each transaction, so nothing may live on
# it between transactions: no prepared statements, no server-side cursors, no LISTEN, and
# no search_path sent at connect time (PgBouncer refuses the `options` parameter). The
# search_path is then set on the role or database (README, PgBouncer).
DATABASE_TRANSACTION_POOLING = read_bool("DATABASE_TRANSACTION_POOLING", False)
# A direct connection (not through the pooler) for the change feed's LISTEN; without one
# behind a transaction pooler, the feed reads a version row at most once a second.
_listen_url = env.str("DATABASE_LISTEN_URL", default="")
HITL_LISTEN_DATABASE = database(_listen_url, "DATABASE_LISTEN_URL") if _listen_url else None
if HITL_LISTEN_DATABASE and HITL_LISTEN_DATABASE["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_LISTEN_URL must be a postgres:// URL")
if _db["ENGINE"] == "django.db.backends.postgresql":
    _options = _db.setdefault("OPTIONS", {})
    if DATABASE_TRANSACTION_POOLING:
        _options["prepare_threshold"] = None
        _db["DISABLE_SERVER_SIDE_CURSORS"] = True
    else:
        # Django's own tables go to the first schema (public); the ZakOps tables are
        # found in schema zakops. See zakops/ddl.py for why this is safe.
        _options["options"] = "-c search_path=public,zakops"
    _db["CONN_MAX_AGE"] = read_int("DATABASE_CONN_MAX_AGE", 60)
    # A health check is a round trip before the first query of every request, a large
    # share of the poll's time (docs/performance.md). Without it, the first call on a connection the
    # database dropped answers 503 and the connection is replaced for the next one.
    _db["CONN_HEALTH_CHECKS"] = read_bool("DATABASE_HEALTH_CHECKS", False)
else:
    _db.setdefault("OPTIONS", {}).update(
        {
            # IMMEDIATE: a writing transaction takes the write lock at BEGIN, so two
            # writers queue instead of failing with "database is locked" mid-way.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests use a file too, not Django's in-memory default: threads then get separate
    # connections with SQLite's real locking, so the concurrency tests mean something.
    (BASE_DIR / "var").mkdir(exist_ok=True)
    _db.setdefault("TEST", {})["NAME"] = str(BASE_DIR / "var" / "test-db.sqlite3")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out account or address
    "accounts.backends.EmailBackend",
]
SESSION_ENGINE = "zakops_hitl.sessions"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- sign-in throttling (django-axes) -------------------------------------------------
# Failed sign-ins are counted in the database (so every app server counts together), three
# ways, each with its own limit (accounts/throttling.py): one account from one client, one
# account from every client, one client for every account. Once one reaches its limit,
# sign-in is refused there for HITL_LOGIN_LOCKOUT_MINUTES, also with the right password,
# with a 429 and Retry-After; an admin can unlock sooner (admin, Axes, Access attempts:
# delete the rows). API tokens never pass through this.
AXES_FAILURE_LIMIT = read_int("HITL_LOGIN_FAILURE_LIMIT", 5, minimum=1)
HITL_LOGIN_LIMITS = [
    (["username", "ip_address"], AXES_FAILURE_LIMIT),
    ("username", read_int("HITL_LOGIN_ACCOUNT_FAILURE_LIMIT", 50, minimum=1)),
    ("ip_address", read_int("HITL_LOGIN_CLIENT_FAILURE_LIMIT", 30, minimum=1)),
]
AXES_LOCKOUT_PARAMETERS = [parameters for parameters, _ in HITL_LOGIN_LIMITS]
AXES_HANDLER = "accounts.throttling.SignInThrottle"
AXES_COOLOFF_TIME = timedelta(minutes=read_int("HITL_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_USERNAME_CALLABLE = "accounts.backends.sign_in_username"
AXES_CLIENT_IP_CALLABLE = "zakops_hitl.middleware.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.sign_in_refused"  # templates/registration/locked_out.html, 429
# How many reverse proxies in front of the app append to X-Forwarded-For; the client's
# address is the one the outermost of them saw. 0: the connection's own address.
HITL_PROXY_COUNT = read_int("HITL_PROXY_COUNT", 0)

# --- static files ---------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default="") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Production serves what `collectstatic` wrote: hashed names (cached for a year by
        # whitenoise) and gzip/brotli copies. Development and tests read static/ directly,
        # so a fresh clone needs no collectstatic, whatever DJANGO_DEBUG says.
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = read_bool("WHITENOISE_USE_FINDERS", not PRODUCTION)
WHITENOISE_AUTOREFRESH = not PRODUCTION
WHITENOISE_MANIFEST_STRICT = False

REST_FRAMEWORK = {
    # Bearer first: its `WWW-Authenticate` header makes anonymous calls a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["common.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "common.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ZakOps HITL API",
    "DESCRIPTION": (
        "Risk assessment, human approval and durable checkpoints for the ZakOps action "
        "engine. Authenticate with a session or `Authorization: Bearer <token>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": "/api/hitl",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "zakops_hitl.schema.error_responses"],
    "ENUM_NAME_OVERRIDES": {
        "RiskLevelEnum": "zakops.models.RiskLevel",
        "CheckpointStatusEnum": "zakops.models.CheckpointStatus",
        "CheckpointTypeEnum": "zakops.models.CheckpointType",
    },
}

# One line per request (zakops_hitl.middleware) and per decision (approvals.services),
# with the request id; JSON in production, text otherwise (LOG_FORMAT). No line holds a
# token, a password or a session id: requests are logged by route, never by header.
LOG_FORMAT = read_choice("LOG_FORMAT", "json" if PRODUCTION else "text", ("json", "text"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "common.logs.JsonFormatter"},
    },
    "filters": {"request": {"()": "common.logs.RequestIdFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request"]},
    },
    "root": {"handlers": ["console"], "level": read_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")).upper()},
    "loggers": {
        # runserver's own line per request repeats the request log's; keep its warnings.
        "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "axes.apps": {"level": "WARNING"},  # its start-up banner, on every manage.py command
    },
}

# --- ZakOps HITL behaviour (SPEC §1) -------------------------------------------------
RISK_LEVELS = ("low", "medium", "high", "critical")
ZAKOPS_HITL_DEFAULT_RISK_LEVEL = read_choice("ZAKOPS_HITL_DEFAULT_RISK_LEVEL", "medium", RISK_LEVELS)
ZAKOPS_HITL_DEFAULT_REQUIRES_APPROVAL = read_bool("ZAKOPS_HITL_DEFAULT_REQUIRES_APPROVAL", True)
ZAKOPS_HITL_AUTO_APPROVE_LOW_RISK = read_bool("ZAKOPS_HITL_AUTO_APPROVE_LOW_RISK", False)
HITL_CHECKPOINT_MAX_BYTES = read_int("HITL_CHECKPOINT_MAX_BYTES", 1024 * 1024, minimum=1)
HITL_CHECKPOINT_RETENTION_DAYS = read_int("HITL_CHECKPOINT_RETENTION_DAYS", 30, minimum=1)
# Request bodies nested deeper than this (arrays and objects, the body itself being 1) are
# a 400. Python's JSON parser gives up near a thousand levels, which is also a 400.
HITL_JSON_MAX_DEPTH = read_int("HITL_JSON_MAX_DEPTH", 64, minimum=1)

# --- Team review ------------------------------------------------------------------------
# How long opening a request claims it for the reviewer; the open page renews it.
HITL_CLAIM_MINUTES = read_int("HITL_CLAIM_MINUTES", 10, minimum=1, maximum=240)
# Approvals by different eligible people a request of each level needs before it completes.
HITL_APPROVALS_NEEDED = {
    level: read_int(f"HITL_APPROVALS_{level.upper()}", 2 if level == "critical" else 1, minimum=1, maximum=5)
    for level in RISK_LEVELS
}

# --- Notifications ----------------------------------------------------------------------
# Links in messages point at HITL_BASE_URL + /actions/<action_id>/.
HITL_BASE_URL = base_url("HITL_BASE_URL", "http://127.0.0.1:8000")
# A reminder is sent when this share (percent) of a request's time is left; 0 sends none.
HITL_NOTIFY_REMINDER_PERCENT = read_int("HITL_NOTIFY_REMINDER_PERCENT", 25, minimum=0, maximum=99)
HITL_NOTIFY_MAX_ATTEMPTS = read_int("HITL_NOTIFY_MAX_ATTEMPTS", 6, minimum=1)
# The first retry waits this long; each further one twice as long, at most an hour.
HITL_NOTIFY_RETRY_SECONDS = read_int("HITL_NOTIFY_RETRY_SECONDS", 30, minimum=0)
# For webhook calls and the SMTP connection: a dead receiver costs the worker this much.
HITL_NOTIFY_TIMEOUT_SECONDS = read_int("HITL_NOTIFY_TIMEOUT_SECONDS", 5, minimum=1, maximum=60)


def _hosts(name: str) -> list[str]:
    hosts = []
    for raw in env.list(name, default=[]):
        host = raw.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
        if not host:
            continue
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not re.fullmatch(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*", host):
                raise ImproperlyConfigured(f"{name} lists host names or IP addresses (no scheme, port or path), got {raw!r}") from None
        hosts.append(host)
    return hosts


# Webhooks go to public addresses only; these hosts inside the network (names or IP
# addresses, comma-separated) are allowed anyway, e.g. a receiver on the same network.
HITL_WEBHOOK_ALLOWED_HOSTS = _hosts("HITL_WEBHOOK_ALLOWED_HOSTS")

# E-mail: the console backend unless EMAIL_URL says otherwise (smtp+tls://user:password@host:587).
vars().update(email("EMAIL_URL", "consolemail://"))
EMAIL_TIMEOUT = HITL_NOTIFY_TIMEOUT_SECONDS
DEFAULT_FROM_EMAIL = env.str("HITL_EMAIL_FROM", default="ZakOps HITL <hitl@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
