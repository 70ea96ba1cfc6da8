"""The example news service, built on the service library, and desks on two gateway processes.

Real Redis, real daphne processes, the example started as its own process by its one command.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.fixtures.bus import Bus, new_bus, shared_redis_url
from tests.fixtures.servers import BASE_DIR

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EXAMPLE = BASE_DIR / "clients" / "python" / "examples" / "news_service.py"


@pytest.fixture
async def news_service(tmp_path) -> AsyncIterator:
    """Start the example news service on a bus; return once it listens for commands."""
    started: list[asyncio.subprocess.Process] = []

    async def start(bus: Bus) -> asyncio.subprocess.Process:
        env = {
            **os.environ,
            "PYTHONPATH": str(BASE_DIR / "clients" / "python" / "src"),
            "REDIS_BUS_URL": bus.redis_url,
            "BUS_EVENTS_CHANNEL": bus.events_channel,
            "BUS_COMMANDS_CHANNEL": bus.commands_channel,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            "--interval",
            "0",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=(tmp_path / "news_service.log").open("w"),
        )
        started.append(process)
        assert process.stdout is not None  # a pipe
        ready = await asyncio.wait_for(process.stdout.readline(), 20)
        assert ready.startswith(b"news-service ready"), (ready, (tmp_path / "news_service.log").read_text())
        return process

    yield start
    for process in started:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 10)


def is_analysis_of(symbol: str):
    return lambda frame: frame["event"] == "analysis.complete" and frame["data"]["symbol"] == symbol


async def test_example_service_answers_a_forwarded_command_and_its_events_reach_desks_on_both_processes_once(
    gateways, live_clients, news_service, staff_user, other_staff_user, tmp_path
):
    # given two gateway processes forwarding get_news, the example service, a desk on each process
    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus, BUS_FORWARDED_COMMANDS="get_news")
    service = await news_service(bus)
    watching = await live_clients(process_a, other_staff_user)
    asking = await live_clients(process_b, staff_user)
    for desk in (watching, asking):
        await desk.subscribe("analysis.complete", "market.alert")

    # when the desk on B asks for BASF's news, then for SAP's
    basf = await asking.command("get_news", {"symbol": "BAS"}, correlation_id="news-bas")
    sap = await asking.command("get_news", {"symbol": "SAP"}, correlation_id="news-sap")

    # then the service answered that desk, with exact numbers, under its correlation ids
    assert (basf["type"], basf["target_client"], basf["source_service"]) == (
        "command_response",
        asking.client_id,
        "news-service",
    )
    assert basf["data"]["status"] == "success"
    assert basf["data"]["result"]["sentiment"] == Decimal("-0.54")
    assert basf["data"]["result"]["headlines"][0] == {
        "title": "BASF cuts its full-year guidance",
        "sentiment": Decimal("-0.71"),
    }
    assert (sap["correlation_id"], sap["data"]["result"]["sentiment"]) == ("news-sap", Decimal("0.52"))

    # and each desk got BASF's analysis and bad-news alert once, before SAP's analysis, on either process
    for desk in (watching, asking):
        while not any(is_analysis_of("SAP")(f) for f in desk.received):  # `command` may have read it already
            await desk.receive()
        events = [
            (f["event"], f["data"]["symbol"])
            for f in desk.received
            if f["event"] in ("analysis.complete", "market.alert")
        ]
        assert events == [("analysis.complete", "BAS"), ("market.alert", "BAS"), ("analysis.complete", "SAP")]
        analysis = next(f for f in desk.received if is_analysis_of("BAS")(f))
        assert (analysis["source_service"], analysis["data"]["recommendation"]) == ("news-service", "sell")
        assert analysis["data"]["result"]["sentiment"] == Decimal("-0.54")
    # the answers went to the desk that asked only
    assert not [f for f in watching.received if f["type"] == "command_response"]
    assert service.returncode is None


async def test_example_service_refusal_reaches_the_desk_as_the_spec_error(
    gateways, live_clients, news_service, staff_user
):
    # given a gateway forwarding get_news and the example service
    bus = new_bus(shared_redis_url())
    (process,) = gateways(bus, count=1, BUS_FORWARDED_COMMANDS="get_news")
    await news_service(bus)
    desk = await live_clients(process, staff_user)

    # when a desk asks for a symbol the service has no news of
    response = await desk.command("get_news", {"symbol": "TSLA"}, correlation_id="news-x")

    # then it gets the service's error, as the spec's command_response shows errors
    assert response["data"]["status"] == "error"
    assert response["data"]["result"]["error"].startswith("No news for 'TSLA'")
    assert response["data"]["result"]["code"] == "not_found"
    assert response["correlation_id"] == "news-x"
