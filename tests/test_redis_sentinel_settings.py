"""REDIS_SENTINELS and REDIS_SENTINEL_MASTER: read strictly, and every Redis use follows them."""

from __future__ import annotations

import json
import subprocess

import pytest
import redis.asyncio as aioredis
from django.core.exceptions import ImproperlyConfigured

from aktienanalyse import redis as redis_locations
from aktienanalyse.redis import SentinelLocation, SentinelRedis, parse_location, sentinel_location
from tests.fixtures.settings_process import load_settings


def test_a_sentinel_list_with_a_master_name_and_db_reads_into_a_location_and_back():
    location = sentinel_location(" 10.0.0.5:26379, sentinel-b:26380 ,[::1]:26381", "trading-redis", "2")

    assert location == SentinelLocation(
        (("10.0.0.5", 26379), ("sentinel-b", 26380), ("::1", 26381)), "trading-redis", 2
    )
    assert location.url == "redis+sentinel://10.0.0.5:26379,sentinel-b:26380,[::1]:26381/trading-redis/2"
    assert parse_location(location.url) == location


def test_the_master_name_defaults_to_mymaster_and_the_db_to_0():
    assert sentinel_location("s1:26379") == SentinelLocation((("s1", 26379),), "mymaster", 0)


def test_a_redis_url_is_no_sentinel_location_and_a_url_list_gives_its_first_host():
    assert parse_location("redis://127.0.0.1:6379/0") is None
    assert redis_locations.first_location(" redis://a:6379/1, redis://b:6379/1") == "redis://a:6379/1"
    sentinel = "redis+sentinel://s1:26379,s2:26379/mymaster/0"
    assert redis_locations.first_location(sentinel) == sentinel  # its commas separate sentinels, not shards


@pytest.mark.parametrize(
    ("sentinels", "message"),
    [
        (" , ", "lists no sentinel"),
        ("s1:26379,,s2:26379", "has an empty entry"),
        ("s1", "'s1' is not host:port"),
        ("s1:0", "'s1:0' is not host:port with a port from 1 to 65535"),
        ("s1:65536", "'s1:65536' is not host:port"),
        ("s1:port", "'s1:port' is not host:port"),
        (":26379", "':26379' is not host:port"),
        ("redis://s1:26379", "'redis://s1:26379' is not host:port"),
    ],
)
def test_a_bad_sentinel_list_is_refused_naming_the_entry(sentinels, message):
    with pytest.raises(ImproperlyConfigured, match="REDIS_SENTINELS") as refused:
        sentinel_location(sentinels, "mymaster")
    assert message in str(refused.value)


def test_a_bad_master_name_or_db_is_refused():
    with pytest.raises(ImproperlyConfigured, match="REDIS_SENTINEL_MASTER 'my master' is not a master name"):
        sentinel_location("s1:26379", "my master")
    with pytest.raises(ImproperlyConfigured, match="REDIS_SENTINEL_DB must be a database number"):
        sentinel_location("s1:26379", "mymaster", "one")


async def test_a_client_of_a_url_is_the_plain_client_and_of_a_sentinel_location_asks_sentinel():
    plain = redis_locations.async_client("redis://127.0.0.1:6379/4", socket_timeout=2)
    watched = redis_locations.async_client("redis+sentinel://127.0.0.1:1,127.0.0.1:2/desk/3", socket_timeout=2)
    try:
        assert type(plain) is aioredis.Redis
        assert plain.connection_pool.connection_kwargs["db"] == 4
        assert isinstance(watched, SentinelRedis)
        assert watched.connection_pool.service_name == "desk"
        assert watched.connection_pool.connection_kwargs["db"] == 3
        assert [
            (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
            for s in watched.watcher.sentinels
        ] == [("127.0.0.1", 1), ("127.0.0.1", 2)]
    finally:
        await plain.aclose()
        await watched.aclose()


def load_redis_settings(**env: str) -> subprocess.CompletedProcess:
    """Load the settings in a fresh interpreter with these variables (and no REDIS_URL unless given)."""
    return load_settings(
        "json.dumps({'url': settings.REDIS_URL, 'hosts': settings.REDIS_HOSTS, "
        "'bus': settings.REALTIME_BUS['URL'], 'layer': settings.CHANNEL_LAYERS['default']})",
        drop=("REDIS_",),
        **env,
    )


@pytest.mark.parametrize("backend", ["core", "pubsub"])
def test_sentinels_route_the_channel_layer_bus_and_history_through_sentinel(backend):
    out = load_redis_settings(
        REDIS_SENTINELS="127.0.0.1:26379,127.0.0.1:26380",
        REDIS_SENTINEL_MASTER="desk",
        REDIS_SENTINEL_PASSWORD="s3cret",
        CHANNEL_LAYER_BACKEND=backend,
    )
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)

    location = "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/desk/0"
    assert loaded["url"] == loaded["bus"] == location and loaded["hosts"] == [location]
    assert loaded["layer"]["CONFIG"]["hosts"] == [
        {
            "sentinels": [["127.0.0.1", 26379], ["127.0.0.1", 26380]],
            "master_name": "desk",
            "db": 0,
            "sentinel_kwargs": {"socket_connect_timeout": 1, "socket_timeout": 1, "password": "s3cret"},
        }
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"REDIS_SENTINELS": "s1:26379", "REDIS_URL": "redis://127.0.0.1:6379/0"},
            "Set REDIS_URL or REDIS_SENTINELS, not both",
        ),
        ({"REDIS_SENTINELS": "s1"}, "REDIS_SENTINELS entry 's1' is not host:port"),
        ({"REDIS_SENTINELS": ","}, "REDIS_SENTINELS lists no sentinel"),
    ],
)
def test_the_gateway_refuses_to_start_on_bad_sentinel_settings(env, message):
    out = load_redis_settings(**env)
    assert out.returncode != 0 and "ImproperlyConfigured" in out.stderr and message in out.stderr
