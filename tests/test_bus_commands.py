"""User commands no handler claims go to external services on the bus, and their answers come back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fixtures.bus import new_bus, shared_redis_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Commands no app of this project will ever claim, so these tests hold whatever apps register.
FORWARDED = "run_backtest,rebalance_suggestions"


async def test_forwarded_command_is_answered_by_an_external_service_through_the_bus(
    gateways, live_clients, stand_in_service, staff_user
):
    # given two gateway processes, a client on the second, and a service written from the spec
    bus = new_bus(shared_redis_url())
    _, process_b = gateways(bus, BUS_FORWARDED_COMMANDS=FORWARDED)
    service = await stand_in_service(bus)
    client = await live_clients(process_b, staff_user)

    # when the client sends a command no handler in the project claims
    response = await client.command(
        "run_backtest", {"symbol": "SAP", "threshold": Decimal("0.75")}, correlation_id="k3j4-analysis"
    )

    # then the service got the spec's backend_event with the client's own ids, and its answer
    # reached the client
    assert len(service.commands) == 1
    backend_event = service.commands[0]
    assert set(backend_event) == {"type", "event", "data", "client_id", "timestamp", "correlation_id"}
    assert (backend_event["type"], backend_event["event"]) == ("user_command", "run_backtest")
    assert backend_event["client_id"] == client.client_id
    assert backend_event["correlation_id"] == "k3j4-analysis"
    assert backend_event["data"] == {"symbol": "SAP", "threshold": 0.75}
    assert (response["type"], response["correlation_id"], response["target_client"]) == (
        "command_response",
        "k3j4-analysis",
        client.client_id,
    )
    assert response["data"]["status"] == "success"
    assert response["data"]["result"] == {
        "echo": {"symbol": "SAP", "threshold": Decimal("0.75")},
        "handled_by": "stand-in",
    }


async def test_forwarded_command_answer_reaches_the_sender_not_another_client_on_another_process(
    gateways, live_clients, stand_in_service, staff_user
):
    # given the same user connected on both processes
    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus, BUS_FORWARDED_COMMANDS=FORWARDED)
    await stand_in_service(bus)
    on_a = await live_clients(process_a, staff_user)
    on_b = await live_clients(process_b, staff_user)

    # when each sends a forwarded command
    got_a = await on_a.command("rebalance_suggestions", {"n": 1}, correlation_id="from-a")
    got_b = await on_b.command("rebalance_suggestions", {"n": 2}, correlation_id="from-b")

    # then each got only its own answer
    assert got_a["data"]["result"]["echo"] == {"n": 1}
    assert got_b["data"]["result"]["echo"] == {"n": 2}
    assert [f["correlation_id"] for f in on_a.received if f["type"] == "command_response"] == ["from-a"]
    assert [f["correlation_id"] for f in on_b.received if f["type"] == "command_response"] == ["from-b"]


async def test_same_command_is_never_forwarded_twice(gateways, live_clients, stand_in_service, staff_user):
    # given a client whose command was forwarded and answered
    bus = new_bus(shared_redis_url())
    (process,) = gateways(bus, count=1, BUS_FORWARDED_COMMANDS=FORWARDED)
    service = await stand_in_service(bus)
    client = await live_clients(process, staff_user)
    first = await client.command("run_backtest", correlation_id="once")
    assert first["data"]["status"] == "success"

    # when it sends the same command with the same correlation id again, then a new one
    again = await client.command("run_backtest", correlation_id="once")
    fresh = await client.command("run_backtest", correlation_id="twice")

    # then the repeat is refused and the service saw each correlation id once
    assert again["data"]["status"] == "error"
    assert again["data"]["result"]["code"] == "invalid_command"
    assert fresh["data"]["status"] == "success"
    assert [c["correlation_id"] for c in service.commands] == ["once", "twice"]


async def test_forwarded_command_without_a_listening_service_gets_service_unavailable(
    gateways, live_clients, staff_user
):
    # given a gateway on a bus where no external service listens
    bus = new_bus(shared_redis_url())
    (process,) = gateways(bus, count=1, BUS_FORWARDED_COMMANDS=FORWARDED)
    client = await live_clients(process, staff_user)

    # when a client sends a forwarded command
    response = await client.command("rebalance_suggestions", {"symbol": "SAP"}, correlation_id="nobody")

    # then it gets a clear error at once
    assert response["data"]["status"] == "error"
    assert response["data"]["result"]["code"] == "service_unavailable"
    assert "rebalance_suggestions" in response["data"]["result"]["error"]
    assert response["correlation_id"] == "nobody"


async def test_command_not_in_the_forwarded_list_stays_unknown(gateways, live_clients, stand_in_service, staff_user):
    # given a gateway that forwards only run_backtest
    bus = new_bus(shared_redis_url())
    (process,) = gateways(bus, count=1, BUS_FORWARDED_COMMANDS="run_backtest")
    service = await stand_in_service(bus)
    client = await live_clients(process, staff_user)

    # when a client sends another unclaimed command, then a forwarded one
    unknown = await client.command("rebalance_suggestions", correlation_id="no")
    forwarded = await client.command("run_backtest", correlation_id="yes")

    # then the first is unknown and never left the gateway
    assert unknown["data"]["result"]["code"] == "unknown_command"
    assert forwarded["data"]["status"] == "success"
    assert [c["event"] for c in service.commands] == ["run_backtest"]


async def test_command_a_handler_claims_is_not_forwarded(gateways, live_clients, stand_in_service, staff_user):
    # given a gateway forwarding every unclaimed command
    bus = new_bus(shared_redis_url())
    (process,) = gateways(bus, count=1, BUS_FORWARDED_COMMANDS="*")
    service = await stand_in_service(bus)
    client = await live_clients(process, staff_user)

    # when a client sends a command the gateway answers itself, then an unclaimed one
    own = await client.command("get_connection_info", correlation_id="own")
    other = await client.command("launch_rockets", correlation_id="other")

    # then only the unclaimed one went out
    assert own["data"]["result"]["client_id"] == client.client_id
    assert other["data"]["result"]["handled_by"] == "stand-in"
    assert [c["event"] for c in service.commands] == ["launch_rockets"]
