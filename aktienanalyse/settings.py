"""Settings of the Aktienanalyse gateway, read from the environment.

The defaults serve a laptop (`make run`): SQLite in the project, the in-memory channel layer,
debug on. Production sets `DJANGO_DEBUG=0`, `DJANGO_SECRET_KEY`, `DJANGO_ALLOWED_HOSTS`,
`DATABASE_URL` and `REDIS_URL`, and refuses to start when the first three are unsafe.
"""

import math
import os
import sys
import tempfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from aktienanalyse import redis as redis_locations

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}.")


def _env_number(name: str, default, kind, label: str):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {label}; got {raw!r}.") from None


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "an integer")


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


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
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "aktienanalyse.asgi.application"

# Database: DATABASE_URL, or a SQLite file in the project.
DEFAULT_SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_int("DATABASE_POOL_MAX", 8) > 0:
    # A pool instead of a connection per use: Channels closes the connection after every
    # database_sync_to_async call (handshakes, commands), and Django's persistent connections
    # leak under ASGI, where each HTTP request runs in a thread of its own. A pooled connection is
    # checked before it is handed out, and a caller waits at most DATABASE_POOL_TIMEOUT seconds
    # for one, so a database outage is answered with an error instead of a hang.
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured("DATABASE_CONN_MAX_AGE must be 0 with the connection pool (DATABASE_POOL_MAX > 0).")
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("DATABASE_POOL_MAX", 8),
        "timeout": env_float("DATABASE_POOL_TIMEOUT", 3.0),
    }
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        # Server-side binding, so that psycopg prepares what a pooled connection runs again and
        # again: from its 6th run a statement is parsed and planned once per connection (at most
        # 100 kept, the least recently used dropped), which saves PostgreSQL ~0.5 ms of CPU and
        # the database thread ~0.6 ms of waiting per placed order. Prepared statements belong to
        # the server session, which here is the pooled connection's own (without the pool a
        # connection serves one call, and server-side binding alone costs more than it saves).
        # Set this to 0 behind a pooler that shares sessions (PgBouncer in transaction mode
        # before 1.22). Queries that GROUP BY an expression with parameters fail with server-side
        # binding (Django ticket #34255); none here does, and the whole suite runs with it.
        DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The end-to-end tests start daphne as a separate process, which must see the test database:
    # keep it in a file of its own per test run instead of in memory.
    # It lives in the temporary directory: the suite leaves the developer's var/ alone.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"aktienanalyse-test-{os.getpid()}.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Take the write lock when a transaction starts, so concurrent read-then-write services
    # (order fills) queue up instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Channel layer: REDIS_URL selects channels-redis; unset means the in-memory layer (one process).
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
REDIS_HOSTS = [url.strip() for url in REDIS_URL.split(",") if url.strip()]
# Or REDIS_SENTINELS (host:port,...) and REDIS_SENTINEL_MASTER: every Redis use (channel layer, bus,
# history, presence, admission, leases) asks Sentinel for the primary and follows a failover
# (aktienanalyse/redis.py, docs/scale-out.md). REDIS_URL then holds the Sentinel location, so the
# code that asks "is Redis configured" and passes a location on needs no second branch.
REDIS_SENTINEL: dict[str, Any] | None = None
_sentinels = os.environ.get("REDIS_SENTINELS", "").strip()
if _sentinels:
    if REDIS_URL:
        raise ImproperlyConfigured("Set REDIS_URL or REDIS_SENTINELS, not both: they name two ways to the same Redis.")
    _location = redis_locations.sentinel_location(
        _sentinels, os.environ.get("REDIS_SENTINEL_MASTER", ""), os.environ.get("REDIS_SENTINEL_DB", "")
    )
    REDIS_SENTINEL = {
        "LOCATION": _location,
        "MASTER_PASSWORD": os.environ.get("REDIS_SENTINEL_MASTER_PASSWORD", ""),
        "SENTINEL_PASSWORD": os.environ.get("REDIS_SENTINEL_PASSWORD", ""),
    }
    REDIS_URL = _location.url
    REDIS_HOSTS = [REDIS_URL]
CHANNEL_LAYER_PREFIX = os.environ.get("CHANNEL_LAYER_PREFIX", "asgi")
# CHANNEL_LAYER_BACKEND picks channels-redis "core" (default) or "pubsub"; docs/scale-out.md gives the
# measurements (bench/channel_layers.py) behind the default.
CHANNEL_LAYER_BACKEND = os.environ.get("CHANNEL_LAYER_BACKEND", "core").strip()
if CHANNEL_LAYER_BACKEND not in {"core", "pubsub"}:
    raise ImproperlyConfigured(f"CHANNEL_LAYER_BACKEND must be core or pubsub; got {CHANNEL_LAYER_BACKEND!r}.")
# channels-redis takes a Sentinel as a host dict (channels_redis.utils.create_pool), both layers alike.
_LAYER_HOSTS: Sequence[str | dict[str, Any]] = REDIS_HOSTS
if REDIS_SENTINEL:
    _LAYER_HOSTS = [
        redis_locations.channel_layer_host(
            REDIS_SENTINEL["LOCATION"],
            password=REDIS_SENTINEL["MASTER_PASSWORD"],
            sentinel_password=REDIS_SENTINEL["SENTINEL_PASSWORD"],
        )
    ]
if REDIS_URL and CHANNEL_LAYER_BACKEND == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": _LAYER_HOSTS,
                "prefix": CHANNEL_LAYER_PREFIX,
            },
        }
    }
elif REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "realtime.server.layers.RedisChannelLayer",  # channels-redis core, groups sent in batches
            "CONFIG": {
                "hosts": _LAYER_HOSTS,
                "prefix": CHANNEL_LAYER_PREFIX,
                "capacity": 5000,
                "expiry": 60,
                "group_expiry": 86400,
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 5000, "expiry": 60},
        }
    }

# The spec's Redis event bus (sections 1.1, 3.1, 3.2), bridged by realtime/bus/bridge.py. The bus
# Redis is REDIS_BUS_URL, else the first REDIS_URL host; channel names default to the spec's.
REALTIME_BUS = {
    "URL": os.environ.get("REDIS_BUS_URL", "").strip() or (REDIS_HOSTS[0] if REDIS_HOSTS else ""),
    "EVENTS_CHANNEL": os.environ.get("BUS_EVENTS_CHANNEL", "aktienanalyse:events:websocket"),
    "COMMANDS_CHANNEL": os.environ.get("BUS_COMMANDS_CHANNEL", "aktienanalyse:events:user_commands"),
    # "local": every gateway process bridges for its own sockets; "external": only
    # `manage.py event_bridge` processes bridge, through the channel layer; "off": no bridge.
    "BRIDGE": os.environ.get("BUS_BRIDGE", "local"),
    # Commands no handler claims that are published for external services ("*": all of them).
    "FORWARDED_COMMANDS": env_list(
        "BUS_FORWARDED_COMMANDS",
        [
            "refresh_portfolio",
            "update_position",
            "place_order",
            "cancel_order",
            "modify_order",
            "start_analysis",
            "get_recommendations",
            "get_system_status",
            "subscribe_alerts",
        ],
    ),
    # Seconds a process's entry in the cross-process client registry lives without a heartbeat.
    "PRESENCE_TTL": env_int("BUS_PRESENCE_TTL", 30),
    # Prefix of the gateway's own keys on the bus Redis (presence, forwarded-command ids).
    "KEY_PREFIX": os.environ.get("BUS_KEY_PREFIX", CHANNEL_LAYER_PREFIX),
}
if REALTIME_BUS["BRIDGE"] not in {"local", "external", "off"}:
    raise ImproperlyConfigured(f"BUS_BRIDGE must be local, external or off; got {REALTIME_BUS['BRIDGE']!r}.")

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
    # Graceful drain on SIGTERM (realtime/connection/drain.py): seconds /readyz answers 503 before the sockets
    # are closed with 1012, and the most the whole drain may take before the process exits.
    "DRAIN_NOTICE_SECONDS": env_float("REALTIME_DRAIN_NOTICE_SECONDS", 2.0),
    "DRAIN_TIMEOUT_SECONDS": env_float("REALTIME_DRAIN_TIMEOUT_SECONDS", 20.0),
    # Announcements to every connection (realtime/announcements.py) one operator may send per minute.
    "ANNOUNCEMENTS_PER_MINUTE": env_int("REALTIME_ANNOUNCEMENTS_PER_MINUTE", 3),
}
for _name in ("CONNECTION_LEASE_SECONDS", "HANDSHAKE_TIMEOUT_SECONDS", "HANDSHAKE_THREADS"):
    if REALTIME[_name] < 1:
        raise ImproperlyConfigured(f"REALTIME_{_name} must be at least 1.")
if REALTIME["REPLAY_BUDGET"] < 0 or REALTIME["REPLAY_BUDGET_PER_USER"] < 0:
    raise ImproperlyConfigured("REALTIME_REPLAY_BUDGET and REALTIME_REPLAY_BUDGET_PER_USER must not be negative.")
if not (
    math.isfinite(REALTIME["DRAIN_TIMEOUT_SECONDS"])
    and 0 <= REALTIME["DRAIN_NOTICE_SECONDS"] < REALTIME["DRAIN_TIMEOUT_SECONDS"]
):
    raise ImproperlyConfigured(
        "REALTIME_DRAIN_NOTICE_SECONDS must be at least 0 and less than REALTIME_DRAIN_TIMEOUT_SECONDS (finite)."
    )

# Paper-trading broker (trading/execution.py).
TRADING = {
    # Fee of a fill: FEE_RATE of its value, at least MIN_FEE (EUR).
    "FEE_RATE": Decimal(os.environ.get("TRADING_FEE_RATE", "0.001")),
    "MIN_FEE": Decimal(os.environ.get("TRADING_MIN_FEE", "1.00")),
    # Largest quantity and price an order may carry; anything above is refused as absurd.
    "MAX_ORDER_QUANTITY": Decimal(os.environ.get("TRADING_MAX_ORDER_QUANTITY", "1000000")),
    "MAX_PRICE": Decimal(os.environ.get("TRADING_MAX_PRICE", "1000000")),
    # Most units a resting order fills per price tick (None: all); smaller values give partial fills.
    "MAX_FILL_PER_TICK": Decimal(os.environ["TRADING_MAX_FILL_PER_TICK"]) if os.environ.get("TRADING_MAX_FILL_PER_TICK") else None,
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
    "handlers": {
        "console": {"class": "logging.StreamHandler", "stream": sys.stderr, "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "realtime.flow": {"level": FLOW_LOG_LEVEL},
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
