"""The service library (`clients/python`): event classes, codec, dispatcher and command handler.

The library is imported from `clients/python/src` (pytest.ini `pythonpath`), as an installed
copy would be; it must not need Django, which a subprocess checks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import tomllib
import uuid
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

import aktienanalyse_events as library
from aktienanalyse_events import (
    BusError,
    CommandError,
    SyncWebSocketEventDispatcher,
    UserCommandHandler,
    WebSocketEventDispatcher,
    codec,
)
from realtime.bus.inbound import parse_bus_message
from realtime.wire.events import EVENT_SCHEMAS
from realtime.wire.schema import Field, Kind
from realtime.management.commands import generate_service_events
from realtime.wire.protocol import decode
from tests.fixtures import spec_events
from tests.fixtures.bus import shared_redis_url
from tests.fixtures.servers import BASE_DIR, free_port

LIBRARY = BASE_DIR / "clients" / "python"
SPEC_SCHEMAS = [schema for schema in EVENT_SCHEMAS.values() if schema.spec_class]


def library_twin(spec_event):
    """Return the library's event with the same attribute values as a spec dataclass instance."""
    return library.EVENT_CLASSES[spec_event.event_type](**dataclasses.asdict(spec_event))


# Generated from the one schema table


def test_generated_event_classes_are_those_the_schema_table_writes_now():
    assert generate_service_events.TARGET.read_text(encoding="utf-8") == generate_service_events.render(), (
        "clients/python/src/aktienanalyse_events/events.py is stale: run `python manage.py generate_service_events`"
    )


def test_a_change_to_the_schema_table_makes_the_generated_file_stale(monkeypatch):
    # given a schema table in which market.alert has one field more
    schema = EVENT_SCHEMAS["market.alert"]
    grown = dataclasses.replace(schema, fields=schema.fields + (Field("venue", Kind.STRING),))
    monkeypatch.setitem(EVENT_SCHEMAS, "market.alert", grown)

    # then the generator writes it, and the file in the repository no longer matches
    text = generate_service_events.render()
    assert '    venue: str = ""' in text and '"venue": self.venue,' in text
    assert text != generate_service_events.TARGET.read_text(encoding="utf-8")


@pytest.mark.parametrize("spec_class", spec_events.SPEC_EVENT_CLASSES, ids=lambda c: c.__name__)
def test_each_library_class_is_the_spec_dataclass_with_its_fields_order_and_defaults(spec_class):
    ours = getattr(library, spec_class.__name__)
    spec_fields = [(f.name, f.default) for f in dataclasses.fields(spec_class)]
    assert [(f.name, f.default) for f in dataclasses.fields(ours)] == spec_fields
    assert ours().to_websocket_data().keys() == spec_class().to_websocket_data().keys()


@pytest.mark.parametrize("spec_event", spec_events.every_field_set("lib"), ids=lambda e: e.event_type)
def test_library_event_sends_the_numbers_the_spec_event_sends_but_exact(spec_event):
    ours = library_twin(spec_event).to_websocket_data()
    assert decode(codec.encode(ours)) == decode(json.dumps(spec_event.to_websocket_data()))
    money = [f.name for f in EVENT_SCHEMAS[spec_event.event_type].fields if f.kind is Kind.DECIMAL]
    assert all(isinstance(ours[name], (Decimal, int, type(None))) for name in money)


def test_an_amount_a_float_would_round_arrives_with_every_digit():
    amount = Decimal("12345678901234567.89")
    ours = library.OrderFilledEvent(order_id="o-1", total_value=amount, fees=Decimal("0.1") + Decimal("0.2"))
    theirs = spec_events.OrderFilledEvent(order_id="o-1", total_value=amount, fees=Decimal("0.1") + Decimal("0.2"))

    text = codec.encode(ours.to_websocket_data())

    assert '"total_value":12345678901234567.89' in text and '"fees":0.3' in text
    assert decode(json.dumps(theirs.to_websocket_data()))["total_value"] != amount  # what float() does


@pytest.mark.parametrize(
    ("value", "sent"),
    [(Decimal("0"), None), (None, None), (Decimal("101.50"), Decimal("101.50")), (12, 12), (0.1, Decimal("0.1"))],
)
def test_optional_price_is_sent_as_the_spec_sends_it_and_exact(value, sent):
    assert library.OrderCreatedEvent(order_id="o", price=value).to_websocket_data()["price"] == sent


def test_stack_trace_is_kept_on_the_event_but_not_sent():
    event = library.ErrorOccurredEvent(error_id="e-1", stack_trace="Traceback (most recent call last): ...")
    assert event.stack_trace.startswith("Traceback") and "stack_trace" not in event.to_websocket_data()


@pytest.mark.parametrize(
    "event",
    [library_twin(e) for e in spec_events.every_field_set("ok") + spec_events.few_fields_set("few")],
    ids=lambda e: e.event_type,
)
def test_library_message_is_accepted_by_the_gateways_bus_bridge_with_exact_numbers(event):
    # given the message the dispatcher publishes for an event, few or all fields set
    message = library.bus.event_message(event, service_name="news-service", correlation_id="c-1")

    # when the gateway's bridge reads it
    frame = decode(parse_bus_message(codec.encode(message))["text"])

    # then it is delivered under the library's ids, with exactly the data the library sent
    assert (frame["type"], frame["event"], frame["source_service"], frame["correlation_id"]) == (
        EVENT_SCHEMAS[event.event_type].category, event.event_type, "news-service", "c-1",
    )
    expected = decode(codec.encode(event.to_websocket_data()))
    for name in (f.name for f in EVENT_SCHEMAS[event.event_type].fields if f.kind is Kind.TIMESTAMP):
        if expected[name] == "":  # filled in by the gateway
            assert frame["data"][name].endswith("Z")
            expected[name] = frame["data"][name]
    assert frame["data"] == expected


# Codec


def test_codec_writes_decimals_exactly_and_reads_fractions_as_decimals():
    text = codec.encode({"a": Decimal("0.10"), "b": [Decimal("-1E+3"), 2, 2.5, None, True, "ü"], 3: "x"})
    assert text == '{"a":0.10,"b":[-1E+3,2,2.5,null,true,"ü"],"3":"x"}'
    assert decode(text) == codec.decode(text) == {"a": Decimal("0.10"), "b": [Decimal("-1E+3"), 2, Decimal("2.5"), None, True, "ü"], "3": "x"}


@pytest.mark.parametrize(
    ("value", "error"),
    [(Decimal("NaN"), ValueError), (float("inf"), ValueError), (object(), TypeError), ({(1, 2): 1}, TypeError)],
)
def test_codec_refuses_what_json_cannot_carry(value, error):
    with pytest.raises(error):
        codec.encode({"x": value})


@pytest.mark.parametrize(("value", "error"), [("abc", ValueError), (True, TypeError), (Decimal("Infinity"), ValueError), ([], TypeError)])
def test_amount_that_is_no_number_is_refused_when_the_event_is_built(value, error):
    with pytest.raises(error):
        library.PriceUpdateEvent(symbol="SAP", price=value).to_websocket_data()


def test_library_imports_without_django_and_depends_on_redis_only():
    check = "import sys, aktienanalyse_events; sys.exit(any(m.split('.')[0] == 'django' for m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=LIBRARY, env={"PYTHONPATH": str(LIBRARY / "src")}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    project = tomllib.loads((LIBRARY / "pyproject.toml").read_text())["project"]
    assert (project["name"], project["version"], project["dependencies"]) == ("aktienanalyse-events", "0.1.0", ["redis>=5.0.1"])


# Dispatcher, over real Redis


def channels() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:10]
    return f"lib-{tag}:events:websocket", f"lib-{tag}:events:user_commands"


class Listener:
    """A subscriber of one bus channel, as a gateway is."""

    def __init__(self, channel: str):
        self.channel = channel
        self.redis = aioredis.Redis.from_url(shared_redis_url())
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)

    async def __aenter__(self) -> Listener:
        await self.pubsub.subscribe(self.channel)
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.pubsub.aclose()
        await self.redis.aclose()

    async def next(self, timeout: float = 5) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                item = await self.pubsub.get_message(timeout=timeout)
                if item is not None:
                    return decode(item["data"])

    async def publish(self, channel: str, message) -> int:
        return await self.redis.publish(channel, message if isinstance(message, str) else codec.encode(message))


async def test_async_dispatcher_publishes_the_spec_message_on_its_channel():
    events_channel, _ = channels()
    async with Listener(events_channel) as gateway:
        async with WebSocketEventDispatcher(shared_redis_url(), events_channel, "risk-service") as dispatcher:
            alert = library.MarketAlertEvent(symbol="SAP", message="VaR breached", severity="critical", threshold=Decimal("1.05"))
            assert await dispatcher.emit_market_alert(alert) == 1
            await dispatcher.emit(alert, target_client="desk-7", correlation_id="c-9")
        broadcast, targeted = await gateway.next(), await gateway.next()

    assert (broadcast["type"], broadcast["event"], broadcast["source_service"]) == ("market", "market.alert", "risk-service")
    assert broadcast["data"] == decode(codec.encode(alert.to_websocket_data())) and broadcast["data"]["threshold"] == Decimal("1.05")
    assert "target_client" not in broadcast and broadcast["correlation_id"]
    assert (targeted["target_client"], targeted["correlation_id"]) == ("desk-7", "c-9")
    parse_bus_message(codec.encode(broadcast))  # the gateway takes both
    parse_bus_message(codec.encode(targeted))


async def test_sync_dispatcher_publishes_the_same_message():
    events_channel, _ = channels()
    async with Listener(events_channel) as gateway:
        with SyncWebSocketEventDispatcher(shared_redis_url(), events_channel, "batch-job") as dispatcher:
            receivers = await asyncio.to_thread(dispatcher.emit_price_update, library.PriceUpdateEvent(symbol="SAP", price=Decimal("142.37")))
        message = await gateway.next()

    assert receivers == 1
    assert (message["event"], message["data"]["price"], message["source_service"]) == ("market.price_update", Decimal("142.37"), "batch-job")


async def test_dispatcher_says_once_that_no_gateway_listens_and_once_that_one_does_again(caplog):
    events_channel, _ = channels()
    caplog.set_level("INFO", logger="aktienanalyse_events.dispatcher")
    async with WebSocketEventDispatcher(shared_redis_url(), events_channel) as dispatcher:
        unheard = [await dispatcher.emit(library.MarketAlertEvent(symbol="SAP")) for _ in range(3)]
        async with Listener(events_channel):
            heard = await dispatcher.emit(library.MarketAlertEvent(symbol="SAP"))

    assert (unheard, heard) == ([0, 0, 0], 1)
    assert [r.getMessage() for r in caplog.records] == [
        f"market.alert published on {events_channel}, but no gateway listens there",
        f"a gateway listens on {events_channel} again",
    ]


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_dispatcher_raises_bus_error_when_redis_cannot_be_reached(kind):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    event = library.MarketAlertEvent(symbol="SAP")
    with pytest.raises(BusError, match="market.alert not published"):
        if kind == "async":
            await WebSocketEventDispatcher(url).emit(event)
        else:
            await asyncio.to_thread(SyncWebSocketEventDispatcher(url).emit, event)


@pytest.mark.parametrize(
    ("options", "error"),
    [({"target_client": "no spaces"}, "not a client id"), ({"correlation_id": "x" * 129}, "correlation_id"), ({"correlation_id": ""}, "correlation_id")],
)
async def test_dispatcher_refuses_ids_the_gateway_would_drop_before_publishing(options, error):
    with pytest.raises(BusError, match=error):
        await WebSocketEventDispatcher(f"redis://127.0.0.1:{free_port()}/0").emit(library.MarketAlertEvent(), **options)


def test_settings_come_from_arguments_then_the_gateways_environment_then_the_spec(monkeypatch):
    for name in ("REDIS_BUS_URL", "REDIS_URL", "BUS_EVENTS_CHANNEL", "BUS_COMMANDS_CHANNEL", "SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    spec = library.BusSettings.resolve()
    monkeypatch.setenv("REDIS_URL", "redis://a:6379/1, redis://b:6379/1")
    monkeypatch.setenv("SERVICE_NAME", "news")
    gateway = library.BusSettings.resolve()
    monkeypatch.setenv("REDIS_BUS_URL", "redis://bus:6379/2")
    given = library.BusSettings.resolve(redis_url="redis://mine/3", events_channel="ev")

    assert (spec.redis_url, spec.events_channel, spec.commands_channel) == (
        "redis://localhost:6379/0", "aktienanalyse:events:websocket", "aktienanalyse:events:user_commands",
    )
    assert (gateway.redis_url, gateway.service_name) == ("redis://a:6379/1", "news")
    assert (given.redis_url, given.events_channel, library.BusSettings.resolve().redis_url) == ("redis://mine/3", "ev", "redis://bus:6379/2")


# Command handler, over real Redis


def backend_event(command: str, data, *, client_id: str = "desk-7", correlation_id: str = "c-1") -> dict:
    """A forwarded command exactly as the gateway publishes it (`realtime.bus.forwarding.backend_event`)."""
    return {"type": "user_command", "event": command, "data": data, "client_id": client_id,
            "timestamp": "2026-11-23T10:00:00.000Z", "correlation_id": correlation_id}


@pytest.fixture
async def news_handler():
    events_channel, commands_channel = channels()
    handler = UserCommandHandler(shared_redis_url(), commands_channel, events_channel, "news-service")

    @handler.command("get_news")
    async def get_news(data, client_id):
        if data.get("symbol") not in ("SAP", "BAS"):
            raise CommandError(f"No news for {data.get('symbol')!r}.", code="not_found")
        return {"symbol": data["symbol"], "sentiment": data.get("weight", Decimal("0")) * 2, "for": client_id}

    @handler.command("count_words")
    def count_words(data, client_id):  # a plain function runs in a thread
        return len(data["text"].split())

    @handler.command("explode")
    async def explode(data, client_id):
        raise RuntimeError("the news archive is down")

    @handler.command("unsendable")
    async def unsendable(data, client_id):
        return {"score": Decimal("NaN")}

    async with Listener(events_channel) as gateway:
        await handler.start()
        try:
            yield handler, gateway
        finally:
            await handler.stop()


async def test_forwarded_command_is_answered_to_its_client_with_the_spec_command_response(news_handler):
    handler, gateway = news_handler
    assert await gateway.publish(handler.settings.commands_channel, backend_event("get_news", {"symbol": "SAP", "weight": Decimal("0.35")})) == 1

    response = await gateway.next()

    assert {k: response[k] for k in ("type", "event", "correlation_id", "target_client", "source_service")} == {
        "type": "command_response", "event": "get_news.response", "correlation_id": "c-1", "target_client": "desk-7",
        "source_service": "news-service",
    }
    assert response["data"] == {"status": "success", "command": "get_news", "result": {"symbol": "SAP", "sentiment": Decimal("0.70"), "for": "desk-7"}}
    assert decode(parse_bus_message(codec.encode(response))["text"])["data"] == response["data"]  # the gateway takes it


@pytest.mark.parametrize(
    ("command", "data", "result"),
    [
        ("get_news", {"symbol": "XYZ"}, {"error": "No news for 'XYZ'.", "code": "not_found"}),
        ("explode", {}, {"error": "the news archive is down", "code": "internal_error"}),
        ("get_weather", {}, {"error": "Unknown command: get_weather", "code": "unknown_command"}),
        ("count_words", {}, {"error": "'text'", "code": "internal_error"}),
        ("unsendable", {}, {"error": "unsendable gave an answer that cannot be sent", "code": "internal_error"}),
    ],
    ids=["refused", "failed", "unknown", "bad data", "answer no JSON"],
)
async def test_command_that_fails_is_answered_with_the_spec_error_and_a_code(news_handler, command, data, result):
    handler, gateway = news_handler
    await gateway.publish(handler.settings.commands_channel, backend_event(command, data, correlation_id="c-err"))

    response = await gateway.next()

    assert response["data"] == {"status": "error", "command": command, "result": result}
    assert (response["target_client"], response["correlation_id"]) == ("desk-7", "c-err")


async def test_plain_function_handler_is_answered(news_handler):
    handler, gateway = news_handler
    await gateway.publish(handler.settings.commands_channel, backend_event("count_words", {"text": "SAP raises guidance"}))
    assert (await gateway.next())["data"]["result"] == 3


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        json.dumps(["user_command"]),
        json.dumps({**backend_event("get_news", {}), "type": "user_action"}),
        json.dumps({**backend_event("get_news", {}), "client_id": None}),
        json.dumps({**backend_event("get_news", {}), "client_id": "two words"}),
        json.dumps({**backend_event("get_news", {}), "event": "Get News"}),
        json.dumps({**backend_event("get_news", {}), "correlation_id": 5}),
        json.dumps({**backend_event("get_news", {}), "data": [1]}),
    ],
    ids=["json", "array", "type", "no client", "bad client", "bad name", "bad correlation", "data list"],
)
async def test_message_that_is_no_answerable_command_is_dropped_and_the_next_is_answered(news_handler, bad):
    handler, gateway = news_handler
    await gateway.publish(handler.settings.commands_channel, bad)
    await gateway.publish(handler.settings.commands_channel, backend_event("get_news", {"symbol": "BAS"}, correlation_id="after"))

    response = await gateway.next()

    assert (response["correlation_id"], response["data"]["status"]) == ("after", "success")


async def test_handler_told_not_to_answer_unknown_commands_leaves_them_to_other_services():
    events_channel, commands_channel = channels()
    handler = UserCommandHandler(shared_redis_url(), commands_channel, events_channel, "risk", answer_unknown=False)
    handler.register("get_risk", lambda data, client_id: {"var": Decimal("1.5")})
    async with Listener(events_channel) as gateway:
        await handler.start()
        try:
            await gateway.publish(commands_channel, backend_event("get_news", {}, correlation_id="not-mine"))
            await gateway.publish(commands_channel, backend_event("get_risk", {}, correlation_id="mine"))
            response = await gateway.next()
        finally:
            await handler.stop()

    assert (response["correlation_id"], response["data"]["result"]) == ("mine", {"var": Decimal("1.5")})


async def test_spec_style_subclass_registers_its_handlers_in_register_command_handlers():
    events_channel, commands_channel = channels()

    class RiskHandler(UserCommandHandler):
        def register_command_handlers(self):
            self.command_handlers.update({"get_system_status": self.handle_get_system_status})

        async def handle_get_system_status(self, data, client_id):
            return {"overall_health": 95}

    handler = RiskHandler(shared_redis_url(), commands_channel, events_channel)
    async with Listener(events_channel) as gateway:
        await handler.initialize()
        try:
            await gateway.publish(commands_channel, backend_event("get_system_status", {}))
            response = await gateway.next()
        finally:
            await handler.stop()

    assert response["data"]["result"] == {"overall_health": 95}


def test_command_name_the_gateway_cannot_forward_is_refused_at_registration():
    with pytest.raises(ValueError, match="not a command name"):
        UserCommandHandler().register("Get-News", lambda data, client_id: None)


# The quick start of docs/service-library.md


def quick_start_code() -> str:
    text = (BASE_DIR / "docs" / "service-library.md").read_text(encoding="utf-8")
    block = text.split("<!-- quick-start:", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    return block


@pytest.mark.e2e  # runs the quick start as a service process of its own
async def test_the_documented_quick_start_answers_a_command_and_sends_its_event(tmp_path):
    # given the quick start's code, run as a service process on channels of this test's own
    events_channel, commands_channel = channels()
    code = quick_start_code()
    assert len(code.strip().splitlines()) <= 12
    script = tmp_path / "risk_service.py"
    script.write_text(code)
    env = {"PYTHONPATH": str(LIBRARY / "src"), "REDIS_BUS_URL": shared_redis_url(),
           "BUS_EVENTS_CHANNEL": events_channel, "BUS_COMMANDS_CHANNEL": commands_channel}
    service = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        async with Listener(events_channel) as gateway:
            async with asyncio.timeout(20):
                while (await gateway.redis.pubsub_numsub(commands_channel))[0][1] < 1:
                    assert service.poll() is None, service.stderr.read()
                    await asyncio.sleep(0.05)

            # when a desk's command is forwarded to it
            await gateway.publish(commands_channel, backend_event("get_risk", {"symbol": "SAP"}, correlation_id="q-1"))
            alert, response = await gateway.next(), await gateway.next()

        # then its event went to the subscribers and its answer to the desk, both as the gateway takes them
        assert (alert["event"], alert["data"]["threshold"], alert["source_service"]) == ("market.alert", Decimal("1.05"), "risk-service")
        assert response["data"] == {"status": "success", "command": "get_risk", "result": {"symbol": "SAP", "value_at_risk": Decimal("0.98")}}
        assert (response["target_client"], response["correlation_id"]) == ("desk-7", "q-1")
        for message in (alert, response):
            parse_bus_message(codec.encode(message))

        # and SIGTERM ends it cleanly
        service.terminate()
        assert service.wait(10) == 0
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()


async def test_handler_and_dispatcher_carry_on_after_redis_restarts(own_redis):
    # given a handler whose command sends an event, answering on a Redis of this test's own
    events_channel, commands_channel = channels()
    handler = UserCommandHandler(own_redis.url, commands_channel, events_channel, "risk")

    @handler.command("get_risk")
    async def get_risk(data, client_id):
        await handler.dispatcher.emit(library.MarketAlertEvent(symbol="SAP", message=data["n"]))
        return data["n"]

    await handler.start()
    gateway_redis = aioredis.Redis.from_url(own_redis.url)
    try:
        for attempt in ("before", "after"):
            pubsub = gateway_redis.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(events_channel)
            async with asyncio.timeout(20):
                while (await gateway_redis.pubsub_numsub(commands_channel))[0][1] < 1:  # the handler is (back) in
                    await asyncio.sleep(0.05)

            # when a command comes (before Redis is killed and restarted, and after)
            await gateway_redis.publish(commands_channel, codec.encode(backend_event("get_risk", {"n": attempt})))

            # then its event and its answer go out
            async with asyncio.timeout(10):
                got = []
                while len(got) < 2:
                    item = await pubsub.get_message(timeout=10)
                    if item is not None:
                        got.append(decode(item["data"]))
            assert [(m["event"], m["data"].get("message") or m["data"].get("result")) for m in got] == [
                ("market.alert", attempt), ("get_risk.response", attempt),
            ]
            await pubsub.aclose()
            if attempt == "before":
                own_redis.kill()
                own_redis.start()
                await gateway_redis.aclose()
                gateway_redis = aioredis.Redis.from_url(own_redis.url)
    finally:
        await gateway_redis.aclose()
        await handler.stop()


def test_settings_follow_the_gateways_sentinels_when_it_has_no_redis_url(monkeypatch):
    for name in ("REDIS_BUS_URL", "REDIS_URL", "REDIS_SENTINEL_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_SENTINELS", "10.0.0.5:26379, 10.0.0.6:26379")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "desk")

    settings = library.BusSettings.resolve()
    client = settings.sync_client()

    assert settings.redis_url == "redis+sentinel://10.0.0.5:26379,10.0.0.6:26379/desk/0"
    assert client.connection_pool.service_name == "desk"
    assert [s.connection_pool.connection_kwargs["host"] for s in client.connection_pool.sentinel_manager.sentinels] == [
        "10.0.0.5", "10.0.0.6",
    ]
    client.close()


async def test_dispatchers_publish_to_the_primary_the_sentinels_name(own_redis, tmp_path, monkeypatch):
    from tests.fixtures.servers import SentinelServer

    sentinel = SentinelServer(tmp_path, own_redis, master="bus-primary", quorum=1)
    sentinel.start()
    events_channel, _ = channels()
    listener = aioredis.Redis.from_url(own_redis.url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(events_channel)
    try:
        for name in ("REDIS_BUS_URL", "REDIS_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("REDIS_SENTINELS", f"127.0.0.1:{sentinel.port}")
        monkeypatch.setenv("REDIS_SENTINEL_MASTER", "bus-primary")
        async with WebSocketEventDispatcher(channel=events_channel, service_name="risk-service") as dispatcher:
            assert await dispatcher.emit(library.MarketAlertEvent(symbol="SAP")) == 1
        with SyncWebSocketEventDispatcher(channel=events_channel, service_name="batch-job") as sync_dispatcher:
            assert await asyncio.to_thread(sync_dispatcher.emit, library.MarketAlertEvent(symbol="SIE")) == 1
        heard = []
        async with asyncio.timeout(5):
            while len(heard) < 2:
                item = await pubsub.get_message(timeout=1)
                if item is not None:
                    heard.append(decode(item["data"]))
        assert [(m["source_service"], m["data"]["symbol"]) for m in heard] == [("risk-service", "SAP"), ("batch-job", "SIE")]
    finally:
        await pubsub.aclose()
        await listener.aclose()
        sentinel.kill()
