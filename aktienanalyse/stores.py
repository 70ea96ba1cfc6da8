"""Where the gateway keeps and moves its data: the database, Redis (directly or through Sentinel),
the channel layer and the spec's Redis event bus, read from the environment.

`settings.py` takes these names over as they are; they are here because they hang together (the
channel layer and the bus both follow REDIS_URL or REDIS_SENTINELS, and the connection pool
depends on the database engine) and make a third of the settings.
"""

import os
from collections.abc import Sequence
from typing import Any
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from aktienanalyse import redis as redis_locations
from aktienanalyse.env import env_bool, env_float, env_int, env_list

VAR_DIR = Path(__file__).resolve().parent.parent / "var"

# Database: DATABASE_URL, or a SQLite file in the project.
DEFAULT_SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_int("DATABASE_POOL_MAX", 16) > 0:
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
        "max_size": env_int("DATABASE_POOL_MAX", 16),
        "timeout": env_float("DATABASE_POOL_TIMEOUT", 3.0),
    }
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        # Server-side binding, so that psycopg prepares what a pooled connection runs again and
        # again: from its 6th run a statement is parsed and planned once per connection (at most
        # 100 kept, the least recently used dropped), which saves PostgreSQL's parsing and planning
        # of each placed order's statements (docs/benchmarks.md). Prepared statements belong to
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
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"aktienanalyse-test-{os.getpid()}.sqlite3")
    }
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Take the write lock when a transaction starts, so concurrent read-then-write services
    # (order fills) queue up instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"

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
            "CONFIG": {"hosts": _LAYER_HOSTS, "prefix": CHANNEL_LAYER_PREFIX},
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
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 5000, "expiry": 60}}
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
