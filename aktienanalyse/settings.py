"""Settings of the Aktienanalyse gateway, read from the environment.

The defaults serve a laptop (`make run`): SQLite in the project, the in-memory channel layer,
debug on. Production sets `DJANGO_DEBUG=0`, `DJANGO_SECRET_KEY`, `DJANGO_ALLOWED_HOSTS`,
`DATABASE_URL` and `REDIS_URL`, and refuses to start when the first three are unsafe.

The database, Redis, the channel layer and the event bus are read in `stores.py`, the reading of
a variable in `env.py`; this module takes their names over, so Django finds them here.
"""

import math
from typing import Any
import os
import sys
from decimal import Decimal
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from aktienanalyse.env import env_bool, env_float, env_int, env_list
from aktienanalyse.stores import (  # noqa: F401  Django reads them as settings of this module
    CHANNEL_LAYER_BACKEND,
    CHANNEL_LAYER_PREFIX,
    CHANNEL_LAYERS,
    DATABASES,
    DEFAULT_SQLITE_PATH,
    REALTIME_BUS,
    REDIS_HOSTS,
    REDIS_SENTINEL,
    REDIS_URL,
    VAR_DIR,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])

if not DEBUG:
    if not SECRET_KEY:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. With DJANGO_DEBUG off the gateway needs a secret key of "
            "its own: set DJANGO_SECRET_KEY to a long random string."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "DJANGO_ALLOWED_HOSTS is empty. With DJANGO_DEBUG off, list the host names the gateway "
            "serves, comma-separated (they also decide which WebSocket origins are accepted)."
        )
    if "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "DJANGO_ALLOWED_HOSTS contains '*'. With DJANGO_DEBUG off every host must be named: a "
            "wildcard would accept WebSocket handshakes from any origin."
        )
elif not SECRET_KEY:
    # Development only: a fixed key, so sessions survive a restart of `make run`.
    SECRET_KEY = "dev-only-insecure-key-aktienanalyse-gateway"  # noqa: S105

CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "realtime",
    "portfolio",
    "trading",
    "market",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "aktienanalyse.security.ContentSecurityPolicyMiddleware",
    "aktienanalyse.rest.ApiErrorMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "aktienanalyse.urls"

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
            ]
        },
    }
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "aktienanalyse.asgi.application"

# DATABASES, REDIS_*, CHANNEL_LAYERS and REALTIME_BUS: stores.py.
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "desk"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "de"
LANGUAGES = [("de", "Deutsch"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Berlin"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "static_root"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a proxy that sets X-Forwarded-Proto and X-Forwarded-Host itself, overwriting what a
# client sent (deploy/nginx.conf.template): take the scheme and host from them, for HTTP requests
# (CSRF, redirects) and WebSocket handshakes (realtime/connection/gate.py) alike. Without such a proxy a
# client could claim any scheme and host with them, so they are ignored unless this is on.
BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
USE_X_FORWARDED_HOST = BEHIND_PROXY

# HTTPS only in production (docs/security.md): plain HTTP is redirected, except the probes a
# platform sends from inside; browsers are told to come back over HTTPS only for a year. HSTS
# covers subdomains only on request (DJANGO_HSTS_INCLUDE_SUBDOMAINS=1): the gateway may share its
# parent domain with services it cannot vouch for. SecurityMiddleware sends HSTS on HTTPS answers.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = False
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]  # justified in docs/security.md

# Content-Security-Policy of every response (aktienanalyse/security.py), in debug too, so the
# pages are developed and tested under it: scripts, styles and connections from this origin only
# (`'self'` covers the same host's ws:/wss:), no inline script or style, no plugins, no framing.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    # JSON only: an API error keeps its shape whatever the client accepts (no browsable HTML API).
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
    "EXCEPTION_HANDLER": "aktienanalyse.rest.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Aktienanalyse gateway API",
    "DESCRIPTION": "REST side of the Aktienanalyse real-time gateway.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema is for staff like the API it describes (docs/security.md).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
}

# Real-time gateway. Every limit here is enforced in realtime/ and answered with its own code.
REALTIME: dict[str, Any] = {
    # Name put in `source_service` of the messages this gateway writes itself.
    "SERVICE_NAME": os.environ.get("SERVICE_NAME", "aktienanalyse-gateway"),
    # Largest client message in bytes; daphne enforces it too (see the run targets).
    "MAX_MESSAGE_BYTES": env_int("REALTIME_MAX_MESSAGE_BYTES", 64 * 1024),
    # Most event types in one subscribe/unsubscribe message.
    "MAX_EVENT_TYPES_PER_MESSAGE": env_int("REALTIME_MAX_EVENT_TYPES_PER_MESSAGE", 32),
    # Commands of one connection being handled at the same time.
    "MAX_COMMANDS_IN_FLIGHT": env_int("REALTIME_MAX_COMMANDS_IN_FLIGHT", 8),
    # Messages waiting for one slow socket before it is closed (price ticks are conflated first).
    "SEND_QUEUE_LIMIT": env_int("REALTIME_SEND_QUEUE_LIMIT", 1000),
    # Recovery: broadcast events kept per event type for replay after a reconnect.
    "HISTORY_MAX_EVENTS": env_int("REALTIME_HISTORY_MAX_EVENTS", 1000),
    "HISTORY_MAX_AGE_SECONDS": env_int("REALTIME_HISTORY_MAX_AGE_SECONDS", 900),
    # Replayed frames a connection, and all connections of a user on one process, may be sent
    # per minute (bursts of as many); a replay beyond it is answered `recovered: false`.
    "REPLAY_BUDGET": env_int("REALTIME_REPLAY_BUDGET", 5000),
    "REPLAY_BUDGET_PER_USER": env_int("REALTIME_REPLAY_BUDGET_PER_USER", 20000),
    # Token bucket per connection: sustained messages per second and burst; a connection that
    # keeps sending past the limit for this many messages is closed.
    "RATE_LIMIT_PER_SECOND": env_int("REALTIME_RATE_LIMIT_PER_SECOND", 20),
    "RATE_LIMIT_BURST": env_int("REALTIME_RATE_LIMIT_BURST", 60),
    "RATE_LIMIT_CLOSE_AFTER": env_int("REALTIME_RATE_LIMIT_CLOSE_AFTER", 200),
    # Open sockets per user; with Redis configured across all gateway processes (realtime/bus/admission.py).
    "MAX_CONNECTIONS_PER_USER": env_int("REALTIME_MAX_CONNECTIONS_PER_USER", 20),
    # With Redis: seconds a socket's place under that cap outlives its process's last renewal
    # (renewed every third of it), so the places of a killed process come free after this long.
    "CONNECTION_LEASE_SECONDS": env_int("REALTIME_CONNECTION_LEASE_SECONDS", 30),
    "MAX_SUBSCRIPTIONS_PER_CONNECTION": env_int("REALTIME_MAX_SUBSCRIPTIONS_PER_CONNECTION", 64),
    # Most instrument symbols one subscription may be narrowed to (`data.symbols`).
    "MAX_SYMBOLS_PER_SUBSCRIPTION": env_int("REALTIME_MAX_SYMBOLS_PER_SUBSCRIPTION", 100),
    # A connection that sends nothing (not even a ping) this long is closed.
    "IDLE_TIMEOUT_SECONDS": env_int("REALTIME_IDLE_TIMEOUT_SECONDS", 120),
    # How often open connections are checked against their session, account and permissions.
    "REVALIDATE_SECONDS": env_int("REALTIME_REVALIDATE_SECONDS", 2),
    # Seconds from accepting a connection to the end of its HTTP request headers (the WebSocket
    # handshake's request included) before daphne closes it (realtime/server/daphne.py).
    "HANDSHAKE_TIMEOUT_SECONDS": env_int("REALTIME_HANDSHAKE_TIMEOUT_SECONDS", 10),
    # Threads that read handshakes' credentials and claim their client ids (realtime/connection/gate.py), so a
    # reconnect storm waits on PostgreSQL several handshakes at a time instead of one after the
    # other on the database thread commands use. SQLite takes one writer at a time: one thread.
    "HANDSHAKE_THREADS": env_int(
        "REALTIME_HANDSHAKE_THREADS", 1 if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else 4
    ),
    # Threads that run the commands' database work (place, cancel and modify orders, analyses,
    # alerts; realtime/runtime/threads.py). Several, so that orders wait on PostgreSQL side by
    # side: one thread spends most of an order waiting for its round trips. The orders of one
    # portfolio still go one after the other, on its row lock. SQLite: one thread.
    "COMMAND_THREADS": env_int(
        "REALTIME_COMMAND_THREADS", 1 if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else 4
    ),
    # Graceful drain on SIGTERM (realtime/connection/drain.py): seconds /readyz answers 503 before the sockets
    # are closed with 1012, the seconds their closes are spread over (at most half of the drain's
    # time after the notice), and the most the whole drain may take before the process exits.
    "DRAIN_NOTICE_SECONDS": env_float("REALTIME_DRAIN_NOTICE_SECONDS", 2.0),
    "DRAIN_SPREAD_SECONDS": env_float("REALTIME_DRAIN_SPREAD_SECONDS", 3.0),
    "DRAIN_TIMEOUT_SECONDS": env_float("REALTIME_DRAIN_TIMEOUT_SECONDS", 20.0),
    # Announcements to every connection (realtime/announcements.py) one operator may send per minute.
    "ANNOUNCEMENTS_PER_MINUTE": env_int("REALTIME_ANNOUNCEMENTS_PER_MINUTE", 3),
    # Client ids not used for a connection for this many days are forgotten by
    # `manage.py purge_client_identities` (deploy/systemd runs it daily): one row per connection
    # that came without an id would otherwise pile up for good.
    "CLIENT_ID_RETENTION_DAYS": env_int("REALTIME_CLIENT_ID_RETENTION_DAYS", 30),
}
for _name in (
    "CONNECTION_LEASE_SECONDS",
    "HANDSHAKE_TIMEOUT_SECONDS",
    "HANDSHAKE_THREADS",
    "COMMAND_THREADS",
    "CLIENT_ID_RETENTION_DAYS",
):
    if REALTIME[_name] < 1:
        raise ImproperlyConfigured(f"REALTIME_{_name} must be at least 1.")
_pool = DATABASES["default"].get("OPTIONS", {}).get("pool")
if _pool and _pool["max_size"] <= REALTIME["HANDSHAKE_THREADS"] + REALTIME["COMMAND_THREADS"]:
    # Each handshake and command thread holds a pooled connection while it works; the feed, the
    # monitor and the HTTP requests need at least one more.
    raise ImproperlyConfigured(
        f"DATABASE_POOL_MAX ({_pool['max_size']}) must exceed REALTIME_HANDSHAKE_THREADS"
        f" + REALTIME_COMMAND_THREADS ({REALTIME['HANDSHAKE_THREADS'] + REALTIME['COMMAND_THREADS']})."
    )
if REALTIME["REPLAY_BUDGET"] < 0 or REALTIME["REPLAY_BUDGET_PER_USER"] < 0:
    raise ImproperlyConfigured("REALTIME_REPLAY_BUDGET and REALTIME_REPLAY_BUDGET_PER_USER must not be negative.")
if not (
    math.isfinite(REALTIME["DRAIN_TIMEOUT_SECONDS"])
    and 0 <= REALTIME["DRAIN_NOTICE_SECONDS"] < REALTIME["DRAIN_TIMEOUT_SECONDS"]
):
    raise ImproperlyConfigured(
        "REALTIME_DRAIN_NOTICE_SECONDS must be at least 0 and less than REALTIME_DRAIN_TIMEOUT_SECONDS (finite)."
    )
if not (math.isfinite(REALTIME["DRAIN_SPREAD_SECONDS"]) and REALTIME["DRAIN_SPREAD_SECONDS"] >= 0):
    raise ImproperlyConfigured("REALTIME_DRAIN_SPREAD_SECONDS must be a finite number of seconds, at least 0.")

# Paper-trading broker (trading/execution.py).
TRADING = {
    # Fee of a fill: FEE_RATE of its value, at least MIN_FEE (EUR).
    "FEE_RATE": Decimal(os.environ.get("TRADING_FEE_RATE", "0.001")),
    "MIN_FEE": Decimal(os.environ.get("TRADING_MIN_FEE", "1.00")),
    # Largest quantity and price an order may carry; anything above is refused as absurd.
    "MAX_ORDER_QUANTITY": Decimal(os.environ.get("TRADING_MAX_ORDER_QUANTITY", "1000000")),
    "MAX_PRICE": Decimal(os.environ.get("TRADING_MAX_PRICE", "1000000")),
    # Most units a resting order fills per price tick (None: all); smaller values give partial fills.
    "MAX_FILL_PER_TICK": Decimal(os.environ["TRADING_MAX_FILL_PER_TICK"])
    if os.environ.get("TRADING_MAX_FILL_PER_TICK")
    else None,
}

# Where `manage.py demo_data` keeps the demo login's password, so `make run` prints the same one
# every time (the test suite points it elsewhere).
DEMO_LOGIN_FILE = Path(os.environ.get("DEMO_LOGIN_FILE", "").strip() or VAR_DIR / "demo-login.txt")

# Bearer token a Prometheus scraper sends to GET /metrics (staff sessions may read it too).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

LOG_LEVEL = os.environ.get("DJANGO_LOG_LEVEL", "INFO")
# `text` (readable, the default) or `json` (one object per line, for a log pipeline).
LOG_FORMAT = os.environ.get("DJANGO_LOG_FORMAT", "text").strip().lower() or "text"
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"DJANGO_LOG_FORMAT must be 'text' or 'json'; got {LOG_FORMAT!r}.")
# The event-flow log (realtime.flow): INFO writes a line per event emitted and per command,
# DEBUG adds one per delivery to each socket. In development (DEBUG on) it is quiet unless asked
# for, so `make run` shows the logins, the address and the warnings rather than a line per tick.
FLOW_LOG_LEVEL = os.environ.get("REALTIME_FLOW_LOG_LEVEL", "").strip().upper() or ("WARNING" if DEBUG else LOG_LEVEL)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "realtime.runtime.logs.TextFormatter"},
        "json": {"()": "realtime.runtime.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "stream": sys.stderr, "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "realtime.flow": {"level": FLOW_LOG_LEVEL},
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
