"""Publishing events: validation, per-user audience, target clients, commit-time delivery."""

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from realtime.delivery.dispatch import asend_event, send_event_on_commit
from realtime.delivery.messages import build_event_message
from realtime.wire.events import EVENT_SCHEMAS
from realtime.wire.schema import EventValidationError, category_of
from realtime.delivery.history import get_history
from tests.fixtures.ws import login_cookie

pytestmark = pytest.mark.django_db(transaction=True)

ALERT = {
    "alert_type": "price_threshold",
    "symbol": "SAP",
    "message": "SAP über 190 €",
    "severity": "info",
    "trigger_value": Decimal("190"),
    "current_value": Decimal("190.05"),
    "threshold": Decimal("190"),
    "timestamp": "2026-11-23T10:00:00.000Z",
}


def test_every_spec_event_type_is_declared_with_its_category():
    assert set(EVENT_SCHEMAS) == {
        "portfolio.update",
        "portfolio.position_changed",
        "portfolio.value_changed",
        "trading.order_created",
        "trading.order_filled",
        "trading.order_cancelled",
        "trading.order_failed",
        "market.price_update",
        "market.alert",
        "analysis.complete",
        "system.service_status",
        "system.performance_alert",
        "system.error",
        # the gateway's own monitoring (not in the spec), realtime.monitor_gateway only
        "system.gateway_snapshot",
        "system.bus_message_dropped",
        "user.action",
        "user.command",
        "user.subscription",  # the spec names them; the gateway writes them
    }
    assert {
        name: category_of(name) for name in ("portfolio.update", "analysis.complete", "user.x", "user.command")
    } == {
        "portfolio.update": "portfolio",
        "analysis.complete": "analysis",
        "user.x": "unknown",
        "user.command": "unknown",
    }
    assert {EVENT_SCHEMAS[name].permission for name in EVENT_SCHEMAS if name.startswith("user.")} == {
        "realtime.view_user_activity"
    }
    assert {EVENT_SCHEMAS[name].permission for name in ("system.gateway_snapshot", "system.bus_message_dropped")} == {
        "realtime.monitor_gateway"
    }


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"severity": "apocalyptic"}, "severity"),
        ({"threshold": 190.0}, "threshold"),  # floats would lose money precision
        ({"threshold": Decimal("NaN")}, "threshold"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"extra": 1}, "unexpected extra"),
    ],
)
def test_event_not_matching_its_schema_is_refused(change, reason):
    with pytest.raises(EventValidationError, match=reason):
        build_event_message("market.alert", {**ALERT, **change})


def test_event_missing_a_field_is_refused():
    data = dict(ALERT)
    del data["symbol"]
    with pytest.raises(EventValidationError, match="missing symbol"):
        build_event_message("market.alert", data)


def test_unknown_event_type_is_refused():
    with pytest.raises(EventValidationError, match="unknown event type"):
        build_event_message("market.moon_landing", {})


async def test_audience_limits_an_event_to_its_users(ws_connect, staff_user, other_staff_user):
    anna, _ = await ws_connect(cookie=await login_cookie(staff_user))
    bernd, _ = await ws_connect(cookie=await login_cookie(other_staff_user))
    await anna.subscribe("market.alert")
    await bernd.subscribe("market.alert")

    await asend_event("market.alert", ALERT, audience=[staff_user.pk])

    await asend_event("market.alert", {**ALERT, "symbol": "MARK"}, audience=[other_staff_user.pk])

    assert (await anna.receive())["data"]["symbol"] == "SAP"
    await bernd.nothing_before({"event": "market.alert", "data": {"symbol": "MARK"}})


async def test_event_with_target_client_reaches_only_that_clients_connections(ws_connect, staff_user):
    cookie = await login_cookie(staff_user)
    first, _ = await ws_connect(cookie=cookie, path="/ws/tab-one")
    same_id, _ = await ws_connect(cookie=cookie, path="/ws/tab-one")
    other, _ = await ws_connect(cookie=cookie, path="/ws/tab-two")

    await asend_event("market.alert", ALERT, target_client="tab-one")
    await asend_event("market.alert", {**ALERT, "symbol": "MARK"}, target_client="tab-two")

    for client in (first, same_id):
        message = await client.receive()
        assert message["event"] == "market.alert" and message["target_client"] == "tab-one"
    await other.nothing_before({"event": "market.alert", "target_client": "tab-two", "data": {"symbol": "MARK"}})


async def test_targeted_event_still_needs_the_permission_of_its_type(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user), path="/ws/tab-x")
    await asend_event(
        "system.error",
        {
            "error_id": "e1",
            "service_name": "x",
            "error_type": "T",
            "error_message": "m",
            "severity": "error",
            "user_affected": False,
            "timestamp": "2026-11-23T10:00:00Z",
        },
        target_client="tab-x",
    )
    await asend_event("market.alert", {**ALERT, "symbol": "MARK"}, target_client="tab-x")
    await client.nothing_before({"event": "market.alert", "data": {"symbol": "MARK"}})


async def test_event_sent_on_commit_arrives_after_commit_and_not_after_rollback(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await client.subscribe("market.alert")

    def rolled_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            send_event_on_commit("market.alert", {**ALERT, "symbol": "ROLLED"})
            raise RuntimeError("abort")

    def committed():
        with transaction.atomic():
            send_event_on_commit("market.alert", {**ALERT, "symbol": "COMMITTED"})

    def committed_marker():
        with transaction.atomic():
            send_event_on_commit("market.alert", {**ALERT, "symbol": "MARK"})

    await sync_to_async(rolled_back)()
    await sync_to_async(committed)()
    await sync_to_async(committed_marker)()
    assert (await client.receive())["data"]["symbol"] == "COMMITTED"
    await client.nothing_before({"event": "market.alert", "data": {"symbol": "MARK"}})


def test_send_event_on_commit_validates_inside_the_transaction():
    with pytest.raises(EventValidationError), transaction.atomic():
        send_event_on_commit("market.alert", {**ALERT, "severity": "loud"})


async def test_events_worker_threads_commit_go_out_once_each_in_commit_order(ws_connect, staff_user):
    """Committed events are handed to the loop's publisher, which sends them in commit order."""
    from realtime.delivery.dispatch import get_publisher

    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await client.subscribe("market.alert")

    def commit(batch: str):
        with transaction.atomic():
            for n in range(3):
                send_event_on_commit("market.alert", {**ALERT, "message": f"{batch}{n}"})

    for batch in ("A", "B", "C"):
        await sync_to_async(commit)(batch)
    await get_publisher().flush()
    received = [(await client.receive())["data"]["message"] for _ in range(9)]
    assert received == [f"{batch}{n}" for batch in "ABC" for n in range(3)]
    seqs = [
        entry.seq
        for entry in (
            await get_history().since("market.alert", 0, (await get_history().position("market.alert"))[1])
        ).entries
    ]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    await sync_to_async(commit)("marker")
    await client.nothing_before({"event": "market.alert", "data": {"message": "marker0"}})


async def test_events_committed_together_are_numbered_at_once_and_go_out_unnumbered_when_that_fails(
    ws_connect, staff_user, monkeypatch
):
    from realtime.delivery import dispatch, messages
    from realtime.runtime.connections import connections

    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    (client_id,) = {connection.client_id for connection in connections}
    (confirmed,) = await client.subscribe("market.alert")
    start, epoch = confirmed["data"]["seq"], confirmed["data"]["epoch"]
    alerts = [build_event_message("market.alert", {**ALERT, "message": f"alert {n}"}) for n in range(3)]

    await dispatch.asend_messages(alerts)
    events = [await client.receive() for _ in range(3)]
    assert [(e["data"]["message"], e["seq"]) for e in events] == [(f"alert {n}", start + 1 + n) for n in range(3)]

    # when the history fails while a batch is published
    async def unavailable(events):
        raise ConnectionError("history down")

    monkeypatch.setattr(get_history(), "append_many", unavailable)
    direct = {
        "type": messages.DIRECT,
        "group": messages.client_group(client_id),
        "text": '{"type":"system","event":"note","data":{}}',
    }
    await dispatch.asend_messages(
        [
            build_event_message("market.alert", {**ALERT, "message": "during 1"}),
            direct,
            build_event_message("market.alert", {**ALERT, "message": "during 2"}),
        ]
    )

    # then every message still goes out live, in order, the alerts without seq and epoch
    during = [await client.receive() for _ in range(3)]
    assert [frame["event"] for frame in during] == ["market.alert", "note", "market.alert"]
    assert [frame["data"]["message"] for frame in (during[0], during[2])] == ["during 1", "during 2"]
    assert not {"seq", "epoch"} & (during[0].keys() | during[2].keys())

    # and once numbering works again, the next alert starts a new epoch, so a client replaying
    # from before the failure is told to reload
    monkeypatch.undo()
    await dispatch.asend_messages([build_event_message("market.alert", {**ALERT, "message": "after"})])
    after = await client.receive()
    assert after["data"]["message"] == "after" and after["epoch"] != epoch and after["seq"] == 1
    replay = await get_history().since("market.alert", start + 3, epoch)
    assert not replay.recovered and replay.epoch == after["epoch"]


@pytest.mark.e2e
async def test_an_event_the_pubsub_layer_refuses_reaches_this_process_sockets_and_starts_a_new_epoch(
    settings, own_redis, ws_connect, staff_user
):
    import uuid

    from channels.layers import channel_layers

    from realtime.delivery.dispatch import asend_messages

    # given a process on the channels-redis pub/sub layer (it has no backlog) and a subscribed socket
    settings.REDIS_URL = own_redis.url
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [own_redis.url], "prefix": f"refused-{uuid.uuid4().hex[:8]}"},
        }
    }
    channel_layers.backends.clear()
    try:
        anna, _ = await ws_connect(cookie=await login_cookie(staff_user))
        await anna.subscribe("market.alert")

        # when Redis is gone and an event is published (as committed services' events are)
        own_redis.kill()
        await asend_messages([build_event_message("market.alert", ALERT)])

        # then the socket of this process gets it at once, unnumbered, and the type is marked so
        # that its next numbered event starts a new epoch (the other processes never got it)
        frame = await anna.receive()
        assert (frame["event"], frame["data"]["symbol"]) == ("market.alert", "SAP") and "seq" not in frame
        assert "market.alert" in get_history().unnumbered
    finally:
        channel_layers.backends.clear()
