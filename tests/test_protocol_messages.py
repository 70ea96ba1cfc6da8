"""Every path of the spec's client protocol: subscribe, unsubscribe, ping, commands, errors."""

from decimal import Decimal

import pytest

from realtime.connection.commands import registry
from realtime.delivery.dispatch import asend_event
from realtime.wire.protocol import decode
from tests.fixtures.ws import login_cookie, send_marker

pytestmark = pytest.mark.django_db(transaction=True)


def price_update(symbol="SAP", price="100.10"):
    return {
        "symbol": symbol,
        "isin": "DE0007164600",
        "price": Decimal(price),
        "previous_price": Decimal("100.00"),
        "change": Decimal(price) - Decimal("100.00"),
        "change_percent": Decimal("0.10"),
        "volume": 1200,
        "timestamp": "2026-11-23T10:00:00.000Z",
        "source": "test",
    }


@pytest.fixture
async def staff_ws(ws_connect, staff_user):
    client, connected = await ws_connect(cookie=await login_cookie(staff_user))
    assert connected
    return client


async def assert_still_open(client):
    await client.send({"type": "ping", "event": "heartbeat", "data": {}})
    assert (await client.receive_event("pong"))["type"] == "system"


# Subscriptions


async def test_subscribe_confirms_each_event_type(staff_ws):
    confirmations = await staff_ws.subscribe("market.price_update", "market.alert")
    assert [(m["type"], m["event"]) for m in confirmations] == [("system", "subscription.confirmed")] * 2
    assert [m["data"]["event_type"] for m in confirmations] == ["market.price_update", "market.alert"]
    client_id = confirmations[0]["target_client"]
    assert all(m["data"]["client_id"] == client_id for m in confirmations)


async def test_subscribed_client_receives_events_with_exact_decimals(staff_ws):
    await staff_ws.subscribe("market.price_update")
    await asend_event("market.price_update", price_update(price="100.10"))
    raw = await staff_ws.receive_raw()
    assert '"price":100.10' in raw
    assert '"previous_price":100.00' in raw
    message = decode(raw)
    assert (message["type"], message["event"]) == ("market", "market.price_update")
    assert message["data"]["price"] == Decimal("100.10")
    assert message["target_client"] is None


async def test_unsubscribed_client_receives_nothing(staff_ws):
    await asend_event("market.price_update", price_update())
    await staff_ws.nothing_before(await send_marker(staff_ws))


async def test_unsubscribe_confirms_removal_and_stops_events(staff_ws):
    await staff_ws.subscribe("market.price_update")
    await staff_ws.send(
        {"type": "subscription", "event": "unsubscribe", "data": {"event_types": ["market.price_update"]}}
    )
    removed = await staff_ws.receive()
    assert removed["event"] == "subscription.removed"
    assert removed["data"]["event_type"] == "market.price_update"
    await asend_event("market.price_update", price_update())
    await staff_ws.nothing_before(await send_marker(staff_ws))


async def test_unknown_event_type_is_refused_and_the_rest_confirmed(staff_ws):
    await staff_ws.send(
        {"type": "subscription", "event": "subscribe", "data": {"event_types": ["market.nonsense", "market.alert"]}}
    )
    error = await staff_ws.receive()
    assert (error["type"], error["event"]) == ("error", "unknown_event_type")
    assert error["data"]["code"] == "unknown_event_type" and error["data"]["event_type"] == "market.nonsense"
    assert error["data"]["error"]
    confirmed = await staff_ws.receive()
    assert confirmed["data"]["event_type"] == "market.alert"


@pytest.mark.parametrize("name", ["Market.Price", "market", "market..x", "a b.c", "../x.y"])
async def test_malformed_event_type_name_is_refused(staff_ws, name):
    await staff_ws.send({"type": "subscription", "event": "subscribe", "data": {"event_types": [name]}})
    error = await staff_ws.receive()
    assert error["event"] == "invalid_event_type"
    await assert_still_open(staff_ws)


async def test_trading_events_need_the_trading_permission(staff_ws):
    await staff_ws.send(
        {"type": "subscription", "event": "subscribe", "data": {"event_types": ["trading.order_filled"]}}
    )
    error = await staff_ws.receive()
    assert (error["type"], error["event"]) == ("error", "permission_denied")
    assert error["data"]["event_type"] == "trading.order_filled"


async def test_system_events_need_their_permission_and_operators_have_it(ws_connect, staff_ws, operator_user):
    await staff_ws.send({"type": "subscription", "event": "subscribe", "data": {"event_types": ["system.error"]}})
    assert (await staff_ws.receive())["event"] == "permission_denied"

    operator, _ = await ws_connect(cookie=await login_cookie(operator_user))
    (confirmed,) = await operator.subscribe("system.error")
    assert confirmed["event"] == "subscription.confirmed"


async def test_superuser_may_subscribe_to_everything(ws_connect, superuser):
    client, _ = await ws_connect(cookie=await login_cookie(superuser))
    confirmations = await client.subscribe("trading.order_filled", "portfolio.update", "system.service_status")
    assert {m["event"] for m in confirmations} == {"subscription.confirmed"}


async def test_too_many_event_types_in_one_message_is_refused(staff_ws, settings):
    limit = settings.REALTIME["MAX_EVENT_TYPES_PER_MESSAGE"]
    await staff_ws.send(
        {"type": "subscription", "event": "subscribe", "data": {"event_types": ["market.alert"] * (limit + 1)}}
    )
    error = await staff_ws.receive()
    assert error["event"] == "too_many_event_types" and error["data"]["limit"] == limit
    await staff_ws.send({"type": "ping", "event": "heartbeat", "data": {}})  # answered in the order of the messages
    await staff_ws.nothing_before({"event": "pong"})


@pytest.mark.parametrize("data", [{}, {"event_types": "market.alert"}, {"event_types": []}, {"event_types": [1, 2]}])
async def test_subscription_without_a_list_of_names_is_refused(staff_ws, data):
    await staff_ws.send({"type": "subscription", "event": "subscribe", "data": data})
    error = await staff_ws.receive()
    assert error["event"] == "invalid_message"
    await assert_still_open(staff_ws)


async def test_subscription_with_unknown_action_is_refused(staff_ws):
    await staff_ws.send({"type": "subscription", "event": "resubscribe", "data": {"event_types": ["market.alert"]}})
    assert (await staff_ws.receive())["event"] == "invalid_message"


# Ping


async def test_ping_is_answered_with_pong(staff_ws):
    await staff_ws.send({"type": "ping", "event": "heartbeat", "data": {}, "timestamp": "2026-11-23T10:00:00Z"})
    pong = await staff_ws.receive()
    assert (pong["type"], pong["event"]) == ("system", "pong")
    assert set(pong["data"]) == {"timestamp"}


# Commands


async def test_command_response_echoes_correlation_id_and_targets_the_client(staff_ws):
    response = await staff_ws.command("get_connection_info", correlation_id="k3j4h5g6")
    assert (response["type"], response["event"]) == ("command_response", "get_connection_info.response")
    assert response["correlation_id"] == "k3j4h5g6"
    assert response["data"]["status"] == "success"
    assert response["data"]["command"] == "get_connection_info"
    assert response["target_client"] == response["data"]["result"]["client_id"]
    assert response["data"]["result"]["user"] == "anna"


async def test_unknown_command_is_an_error_response(staff_ws):
    response = await staff_ws.command("launch_rockets", correlation_id="abc")
    assert response["type"] == "command_response"
    assert response["correlation_id"] == "abc"
    assert response["data"]["status"] == "error"
    assert response["data"]["result"]["code"] == "unknown_command"
    assert "launch_rockets" in response["data"]["result"]["error"]


async def test_command_with_malformed_name_is_an_error(staff_ws):
    await staff_ws.send({"type": "user", "event": "Drop Table", "data": {}, "correlation_id": "x1"})
    error = await staff_ws.receive()
    assert (error["type"], error["event"], error["correlation_id"]) == ("error", "unknown_command", "x1")


@registry.register("test_needs_permission", permission="realtime.monitor_gateway")
async def _needs_permission(ctx, data):
    """Answer only users with the monitoring permission."""
    return {"ok": True}


@registry.register("test_refuses")
async def _refuses(ctx, data):
    """Refuse with a domain error."""
    from core.exceptions import ValidationFailed

    raise ValidationFailed(message="quantity must be positive", field="quantity")


@registry.register("test_breaks")
async def _breaks(ctx, data):
    """Fail unexpectedly."""
    raise RuntimeError("secret internal detail")


async def test_command_needing_a_permission_is_refused_without_it(staff_ws):
    response = await staff_ws.command("test_needs_permission")
    assert response["data"]["status"] == "error"
    assert response["data"]["result"]["code"] == "permission_denied"


async def test_domain_error_becomes_error_response_with_its_code(staff_ws):
    response = await staff_ws.command("test_refuses", correlation_id="r-1")
    assert response["correlation_id"] == "r-1"
    assert response["data"]["result"] == {
        "error": "quantity must be positive",
        "code": "validation_error",
        "field": "quantity",
    }


async def test_unexpected_handler_failure_reports_an_error_id_without_details(ws_connect, staff_ws, operator_user):
    operator, _ = await ws_connect(cookie=await login_cookie(operator_user))
    await operator.subscribe("system.error")

    response = await staff_ws.command("test_breaks")
    result = response["data"]["result"]
    assert response["data"]["status"] == "error" and result["code"] == "internal_error"
    assert result["error_id"] in result["error"]
    assert "secret internal detail" not in str(response) and "Traceback" not in str(response)

    event = await operator.receive_event("system.error")
    assert event["data"]["error_id"] == result["error_id"]
    assert "secret internal detail" not in str(event)
    await assert_still_open(staff_ws)


# Malformed input


async def test_invalid_json_gets_the_spec_error(staff_ws):
    await staff_ws.send("{not json")
    error = await staff_ws.receive()
    assert (error["type"], error["event"]) == ("error", "invalid_message_format")
    assert error["data"]["error"] == "Invalid JSON format"
    await assert_still_open(staff_ws)


@pytest.mark.parametrize(
    "text,code",
    [
        ("[1, 2]", "invalid_message"),
        ('"hello"', "invalid_message"),
        ('{"type": 5, "event": "x"}', "invalid_message"),
        ('{"type": "teleport", "event": "x"}', "unknown_message_type"),
        ('{"type": "user", "event": "x", "data": [1]}', "invalid_message"),
        ('{"type": "user"}', "invalid_message"),
        ('{"type": "user", "event": "get_connection_info", "correlation_id": 17}', "invalid_message"),
        ('{"type": "user", "event": "x", "data": {"q": NaN}}', "invalid_message_format"),
        ('{"type": "user", "event": "x", "data": {"q": Infinity}}', "invalid_message_format"),
    ],
)
async def test_malformed_message_gets_error_with_code_and_connection_stays(staff_ws, text, code):
    await staff_ws.send(text)
    error = await staff_ws.receive()
    assert error["type"] == "error"
    assert error["event"] == code and error["data"]["code"] == code
    assert error["data"]["error"]
    await assert_still_open(staff_ws)


async def test_binary_frame_is_refused(staff_ws):
    await staff_ws.send_bytes(b"\x00\x01")
    assert (await staff_ws.receive())["event"] == "binary_not_supported"
    await assert_still_open(staff_ws)


async def test_oversized_message_is_refused(staff_ws, settings):
    limit = settings.REALTIME["MAX_MESSAGE_BYTES"]
    await staff_ws.send({"type": "user", "event": "get_connection_info", "data": {"pad": "x" * limit}})
    error = await staff_ws.receive()
    assert error["event"] == "message_too_large" and error["data"]["limit"] == limit
    await assert_still_open(staff_ws)


def test_correlation_ids_the_server_makes_are_distinct_version_4_uuids():
    import uuid

    from realtime.wire.protocol import new_correlation_id

    ids = [new_correlation_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:1000]:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
