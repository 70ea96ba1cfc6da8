"""Who may open a socket, and which client id it gets."""

import pytest

from realtime.models import ClientIdentity
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
    client, connected = await ws_connect(cookie=await login_cookie(staff_user), path=f"/ws/{bad_id}", expect_welcome=False)
    assert connected
    given = (await client.receive())["data"]["client_id"]
    assert given != bad_id and len(given) <= 64


async def test_connection_cancelled_without_a_disconnect_leaves_the_connection_table(ws_connect, staff_user):
    from realtime.connections import connections

    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    assert any(c.client_id == client.received[0]["data"]["client_id"] for c in connections)
    client.communicator.future.cancel()
    with pytest.raises(BaseException):
        await client.communicator.future
    assert not any(c.client_id == client.received[0]["data"]["client_id"] for c in connections)
