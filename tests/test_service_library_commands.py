"""The service library's command handler over real Redis: answers in the spec's format, errors,
dropped messages, registration, the documented quick start, and carrying on after Redis restarts.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

import aktienanalyse_events as library
from aktienanalyse_events import CommandError, UserCommandHandler, codec
from realtime.bus.inbound import parse_bus_message
from realtime.wire.protocol import decode
from tests.fixtures.bus import shared_redis_url
from tests.fixtures.servers import BASE_DIR
from tests.fixtures.service_library import LIBRARY, Listener, channels


# Command handler, over real Redis


def backend_event(command: str, data, *, client_id: str = "desk-7", correlation_id: str = "c-1") -> dict:
    """A forwarded command exactly as the gateway publishes it (`realtime.bus.forwarding.backend_event`)."""
    return {
        "type": "user_command",
        "event": command,
        "data": data,
        "client_id": client_id,
        "timestamp": "2026-11-23T10:00:00.000Z",
        "correlation_id": correlation_id,
    }


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
    assert (
        await gateway.publish(
            handler.settings.commands_channel, backend_event("get_news", {"symbol": "SAP", "weight": Decimal("0.35")})
        )
        == 1
    )

    response = await gateway.next()

    assert {k: response[k] for k in ("type", "event", "correlation_id", "target_client", "source_service")} == {
        "type": "command_response",
        "event": "get_news.response",
        "correlation_id": "c-1",
        "target_client": "desk-7",
        "source_service": "news-service",
    }
    assert response["data"] == {
        "status": "success",
        "command": "get_news",
        "result": {"symbol": "SAP", "sentiment": Decimal("0.70"), "for": "desk-7"},
    }
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
    await gateway.publish(
        handler.settings.commands_channel, backend_event("count_words", {"text": "SAP raises guidance"})
    )
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
    await gateway.publish(
        handler.settings.commands_channel, backend_event("get_news", {"symbol": "BAS"}, correlation_id="after")
    )

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
    env = {
        "PYTHONPATH": str(LIBRARY / "src"),
        "REDIS_BUS_URL": shared_redis_url(),
        "BUS_EVENTS_CHANNEL": events_channel,
        "BUS_COMMANDS_CHANNEL": commands_channel,
    }
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
        assert (alert["event"], alert["data"]["threshold"], alert["source_service"]) == (
            "market.alert",
            Decimal("1.05"),
            "risk-service",
        )
        assert response["data"] == {
            "status": "success",
            "command": "get_risk",
            "result": {"symbol": "SAP", "value_at_risk": Decimal("0.98")},
        }
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
                ("market.alert", attempt),
                ("get_risk.response", attempt),
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
