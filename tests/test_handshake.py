"""Who may open a socket, and which client id it gets."""

import asyncio

import pytest

from realtime.models import ClientIdentity
from tests.fixtures.waiting import aeventually
from tests.fixtures.ws import login_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def test_anonymous_handshake_is_refused(ws_connect):
    _, connected = await ws_connect(cookie=None)
    assert connected is False


async def test_non_staff_user_is_refused(ws_connect, non_staff_user):
    _, connected = await ws_connect(cookie=await login_cookie(non_staff_user))
    assert connected is False


async def test_inactive_staff_user_is_refused(ws_connect, staff_user):
    cookie = await login_cookie(staff_user)
    staff_user.is_active = False
    await staff_user.asave()
    _, connected = await ws_connect(cookie=cookie)
    assert connected is False


@pytest.mark.parametrize("origin", [None, b"null", b"http://evil.example", b"http://localhost.evil.example"])
async def test_handshake_from_missing_null_or_foreign_origin_is_refused(ws_connect, staff_user, origin):
    _, connected = await ws_connect(cookie=await login_cookie(staff_user), origin=origin)
    assert connected is False


async def test_staff_user_gets_welcome_with_every_envelope_key(ws_connect, staff_user):
    client, connected = await ws_connect(cookie=await login_cookie(staff_user), expect_welcome=False)
    assert connected
    welcome = await client.receive()
    assert set(welcome) == {"type", "event", "data", "timestamp", "correlation_id", "source_service", "target_client"}
    assert (welcome["type"], welcome["event"]) == ("system", "connection.established")
    client_id = welcome["data"]["client_id"]
    assert set(welcome["data"]) == {"client_id", "server_time"}
    assert welcome["target_client"] == client_id
    assert welcome["timestamp"].endswith("Z") and welcome["data"]["server_time"].endswith("Z")
    assert await ClientIdentity.objects.filter(client_id=client_id, user=staff_user).aexists()


async def test_reconnect_with_own_client_id_keeps_it(ws_connect, staff_user):
    cookie = await login_cookie(staff_user)
    first, _ = await ws_connect(cookie=cookie)
    client_id = first.received[0]["data"]["client_id"]
    await first.close()

    second, connected = await ws_connect(cookie=cookie, path=f"/ws/{client_id}", expect_welcome=False)
    assert connected
    welcome = await second.receive()
    assert welcome["data"]["client_id"] == client_id


async def test_new_well_formed_client_id_is_bound_to_the_user(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user), path="/ws/desk-42_A", expect_welcome=False)
    welcome = await client.receive()
    assert welcome["data"]["client_id"] == "desk-42_A"
    identity = await ClientIdentity.objects.aget(client_id="desk-42_A")
    assert identity.user_id == staff_user.pk


async def test_client_id_of_another_user_is_replaced_with_a_fresh_one(ws_connect, staff_user, other_staff_user):
    owner, _ = await ws_connect(cookie=await login_cookie(staff_user), path="/ws/annas-id", expect_welcome=False)
    assert (await owner.receive())["data"]["client_id"] == "annas-id"

    intruder, connected = await ws_connect(
        cookie=await login_cookie(other_staff_user), path="/ws/annas-id", expect_welcome=False
    )
    assert connected
    given = (await intruder.receive())["data"]["client_id"]
    assert given != "annas-id"
    assert (await ClientIdentity.objects.aget(client_id="annas-id")).user_id == staff_user.pk


@pytest.mark.parametrize("bad_id", ["x" * 65, "semi;colon", "%20space"])
async def test_malformed_client_id_is_replaced(ws_connect, staff_user, bad_id):
    client, connected = await ws_connect(
        cookie=await login_cookie(staff_user), path=f"/ws/{bad_id}", expect_welcome=False
    )
    assert connected
    given = (await client.receive())["data"]["client_id"]
    assert given != bad_id and len(given) <= 64


async def test_connection_cancelled_without_a_disconnect_leaves_the_connection_table(ws_connect, staff_user):
    from realtime.runtime.connections import connections

    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    assert any(c.client_id == client.received[0]["data"]["client_id"] for c in connections)
    client.communicator.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await client.communicator.future
    assert not any(c.client_id == client.received[0]["data"]["client_id"] for c in connections)


# Origin rules (realtime/connection/gate.py, docs/security.md): the origin the client addressed, or a trusted one.


def handshake_scope(origin: str | None, host: str | None, scheme: str = "ws", **headers: str) -> dict:
    pairs = [(b"origin", origin), (b"host", host)] + [
        (name.replace("_", "-").encode(), value) for name, value in headers.items()
    ]
    return {
        "type": "websocket",
        "scheme": scheme,
        "headers": [(name, value.encode()) for name, value in pairs if value is not None],
    }


@pytest.fixture
def hosts(settings):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "desk.example.com", "gateway.internal"]
    settings.CSRF_TRUSTED_ORIGINS = []
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.USE_X_FORWARDED_HOST = False
    return settings


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "allowed"),
    [
        pytest.param("http://127.0.0.1:8000", "127.0.0.1:8000", "ws", True, id="same-origin"),
        pytest.param("http://127.0.0.1:1", "127.0.0.1:8000", "ws", False, id="wrong-port"),
        pytest.param("http://127.0.0.1", "127.0.0.1:8000", "ws", False, id="default-port-is-not-8000"),
        pytest.param("https://127.0.0.1:8000", "127.0.0.1:8000", "ws", False, id="https-page-plain-socket"),
        pytest.param("http://127.0.0.1:8000", "127.0.0.1:8000", "wss", False, id="http-page-tls-socket"),
        pytest.param("http://desk.example.com", "desk.example.com:80", "ws", True, id="port-80-implied"),
        pytest.param("http://desk.example.com:80", "desk.example.com", "ws", True, id="port-80-spelled"),
        pytest.param("https://desk.example.com", "desk.example.com", "wss", True, id="port-443-implied"),
        pytest.param("https://desk.example.com:443", "desk.example.com:443", "wss", True, id="port-443-spelled"),
        pytest.param("https://desk.example.com:80", "desk.example.com", "wss", False, id="https-on-port-80"),
        pytest.param("http://DESK.example.com", "desk.EXAMPLE.com", "ws", True, id="host-case"),
        pytest.param("http://[::1]:8000", "[::1]:8000", "ws", True, id="ipv6"),
        pytest.param("http://[::1]:8001", "[::1]:8000", "ws", False, id="ipv6-wrong-port"),
        pytest.param("http://[::2]:8000", "[::1]:8000", "ws", False, id="ipv6-other-host"),
        pytest.param("http://[::1:8000", "[::1]:8000", "ws", False, id="ipv6-malformed"),
        pytest.param(None, "127.0.0.1:8000", "ws", False, id="missing-origin"),
        pytest.param("null", "127.0.0.1:8000", "ws", False, id="null-origin"),
        pytest.param("", "127.0.0.1:8000", "ws", False, id="empty-origin"),
        pytest.param("http://127.0.0.1:8000/desk", "127.0.0.1:8000", "ws", False, id="origin-with-path"),
        pytest.param("ftp://127.0.0.1:8000", "127.0.0.1:8000", "ws", False, id="other-scheme"),
        pytest.param("http://x@127.0.0.1:8000", "127.0.0.1:8000", "ws", False, id="userinfo"),
        pytest.param("http://127.0.0.1:8000", None, "ws", False, id="missing-host"),
        pytest.param("http://evil.example", "evil.example", "ws", False, id="host-not-allowed"),
        pytest.param("http://localhost.evil.example", "localhost", "ws", False, id="foreign-origin"),
    ],
)
def test_origin_must_be_the_scheme_host_and_port_the_client_addressed(hosts, origin, host, scheme, allowed):
    from realtime.connection.gate import origin_allowed

    assert origin_allowed(handshake_scope(origin, host, scheme)) is allowed


def test_forwarded_scheme_and_host_are_ignored_unless_the_proxy_is_trusted(hosts):
    from realtime.connection.gate import origin_allowed

    forwarded = {"x_forwarded_proto": "https", "x_forwarded_host": "desk.example.com"}
    # a client straight at the gateway cannot claim the public origin with the proxy's headers
    assert not origin_allowed(handshake_scope("https://desk.example.com", "gateway.internal:8101", **forwarded))
    assert origin_allowed(handshake_scope("http://gateway.internal:8101", "gateway.internal:8101", **forwarded))


def test_trusted_proxy_gives_the_public_scheme_and_host(hosts):
    from realtime.connection.gate import origin_allowed

    hosts.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    hosts.USE_X_FORWARDED_HOST = True
    forwarded = {"x_forwarded_proto": "https", "x_forwarded_host": "desk.example.com"}

    assert origin_allowed(handshake_scope("https://desk.example.com", "gateway.internal:8101", **forwarded))
    assert not origin_allowed(handshake_scope("http://desk.example.com", "gateway.internal:8101", **forwarded))
    assert not origin_allowed(handshake_scope("http://gateway.internal:8101", "gateway.internal:8101", **forwarded))
    # the proxy says plain http: a TLS socket behind it does not make the origin https
    plain = {"x_forwarded_proto": "http", "x_forwarded_host": "desk.example.com:8080"}
    assert origin_allowed(handshake_scope("http://desk.example.com:8080", "gateway.internal", "wss", **plain))
    assert not origin_allowed(handshake_scope("https://desk.example.com:8080", "gateway.internal", "wss", **plain))
    # a forwarded host outside ALLOWED_HOSTS is refused like a Host header would be
    evil = {"x_forwarded_proto": "https", "x_forwarded_host": "evil.example"}
    assert not origin_allowed(handshake_scope("https://evil.example", "gateway.internal", **evil))


def test_csrf_trusted_origins_are_trusted_for_the_socket_too(hosts):
    from realtime.connection.gate import origin_allowed

    hosts.CSRF_TRUSTED_ORIGINS = ["https://desk.example.com", "https://*.example.org", "http://tools.example.net:8080"]
    scope = lambda origin: handshake_scope(origin, "gateway.internal:8101")  # noqa: E731

    assert origin_allowed(scope("https://desk.example.com"))
    assert origin_allowed(scope("https://desk.example.com:443"))
    assert not origin_allowed(scope("http://desk.example.com"))
    assert not origin_allowed(scope("https://desk.example.com:8443"))
    assert origin_allowed(scope("https://a.example.org")) and origin_allowed(scope("https://example.org"))
    assert not origin_allowed(scope("https://a.example.org:8443"))
    assert not origin_allowed(scope("https://example.org.evil.com"))
    assert not origin_allowed(scope("https://aexample.org"))
    assert origin_allowed(scope("http://tools.example.net:8080"))
    assert not origin_allowed(scope("http://tools.example.net"))


@pytest.mark.parametrize("origin", [b"http://localhost:1", b"https://localhost", b"http://localhost:80/"])
async def test_handshake_from_another_port_or_scheme_of_the_host_is_refused(ws_connect, staff_user, origin):
    _, connected = await ws_connect(cookie=await login_cookie(staff_user), origin=origin)
    assert connected is False


async def test_handshake_without_a_host_header_is_refused(ws_connect, staff_user):
    _, connected = await ws_connect(cookie=await login_cookie(staff_user), host=None)
    assert connected is False


async def test_handshake_forwarding_a_public_origin_through_an_untrusted_proxy_is_refused(
    ws_connect, staff_user, settings
):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "desk.example.com"]
    forwarded = ((b"x-forwarded-proto", b"https"), (b"x-forwarded-host", b"desk.example.com"))
    cookie = await login_cookie(staff_user)

    _, refused = await ws_connect(cookie=cookie, origin=b"https://desk.example.com", extra_headers=forwarded)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    _, admitted = await ws_connect(cookie=cookie, origin=b"https://desk.example.com", extra_headers=forwarded)

    assert (refused, admitted) == (False, True)


async def test_handshakes_give_their_database_connections_back_to_the_pool(ws_connect, staff_user):
    """Handshakes run on threads of their own (REALTIME_HANDSHAKE_THREADS); each returns its
    pooled connection when done, so none stays checked out by an idle handshake thread."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("the connection pool is PostgreSQL's: run the suite on PostgreSQL")
    cookie = await login_cookie(staff_user)
    clients = [(await ws_connect(cookie=cookie))[0] for _ in range(6)]
    for client in clients:
        await client.close()
    # The test's own connection (this thread) may be out; no handshake thread's once the
    # consumers' last bookkeeping after the close has finished.
    await aeventually(
        lambda: (stats := connection.pool.get_stats())["pool_size"] - stats["pool_available"] <= 1,
        message="a connection stays checked out of the pool",
    )
