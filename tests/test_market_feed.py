"""The price feed: ticks are stored, move the instrument, and reach subscribed clients."""

from __future__ import annotations

import asyncio
import math
import uuid
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from django.core.management import call_command

from core.exceptions import ValidationFailed
from market.alerts import alert_rule_create
from market.demo import price_history_seed
from market.background import background_stop
from market.feed import PriceFeed, running_feed
from market.models import AlertRule, PriceTick
from market.providers import SimulatedMarket
from market.ticks import price_history_prune, price_tick_record
from portfolio.models import Instrument
from realtime.wire.events import get_schema
from realtime.wire.protocol import decode
from tests.fixtures.bus import gateway_layer, shared_redis_url
from tests.fixtures.market import ScriptedMarket, make_instrument
from tests.fixtures.servers import BASE_DIR
from tests.fixtures.ws import login_cookie, send_marker

pytestmark = pytest.mark.django_db(transaction=True)


def ticks_of(symbol: str) -> list[PriceTick]:
    return list(PriceTick.objects.filter(instrument__symbol=symbol).order_by("at", "id"))


# Storage


async def test_feed_round_stores_tick_and_moves_the_last_price(sap_at_100):
    # given SAP at 100.00 and a market that quotes 101.25
    feed = PriceFeed(provider=ScriptedMarket({"SAP": ["101.25"]}, {"SAP": [4200]}), interval=1)
    # when one round runs
    recorded = await feed.run_round()
    # then one tick is stored with its previous price, and SAP's last price moved
    assert recorded == 1
    [tick] = await sync_to_async(ticks_of)("SAP")
    assert (tick.price, tick.previous_price, tick.volume, tick.source) == (
        Decimal("101.25"),
        Decimal("100.00"),
        4200,
        "scripted",
    )
    instrument = await Instrument.objects.aget(symbol="SAP")
    assert instrument.last_price == Decimal("101.25")
    assert instrument.last_price_at == tick.at


async def test_instrument_without_price_is_not_moved(db):
    # given an instrument that has never had a price
    await sync_to_async(make_instrument)(symbol="NEW", isin="DE000NEW0001", price=None)
    feed = PriceFeed(provider=ScriptedMarket({"NEW": ["10.00"]}), interval=1)
    # when a round runs, then nothing is recorded for it
    assert await feed.run_round() == 0
    assert await PriceTick.objects.acount() == 0


def test_history_is_pruned_to_the_configured_window(sap_at_100, settings):
    # given a window of 3 ticks
    settings.MARKET = {**settings.MARKET, "HISTORY_LIMIT": 3}
    feed = PriceFeed(provider=ScriptedMarket({"SAP": ["101", "102", "103", "104", "105"]}), interval=1)
    # when five rounds run
    for _ in range(5):
        asyncio.run(feed.run_round())
    # then only the newest three remain
    assert [t.price for t in ticks_of("SAP")] == [Decimal("103"), Decimal("104"), Decimal("105")]


def test_prune_keeps_everything_within_the_window(sap_at_100):
    price_tick_record(instrument=sap_at_100, price=Decimal("101"), volume=1, at=sap_at_100.last_price_at, source="t")
    assert price_history_prune(instrument=sap_at_100, keep=5) == 0
    assert len(ticks_of("SAP")) == 1


@pytest.mark.parametrize(
    "price, volume", [(Decimal("-1"), 10), (Decimal("0"), 10), (Decimal("NaN"), 10), (101.5, 10), (Decimal("1"), -3)]
)
def test_bad_tick_is_refused_and_changes_nothing(sap_at_100, price, volume):
    with pytest.raises(ValidationFailed):
        price_tick_record(instrument=sap_at_100, price=price, volume=volume, at=sap_at_100.last_price_at, source="t")
    assert PriceTick.objects.count() == 0
    sap_at_100.refresh_from_db()
    assert sap_at_100.last_price == Decimal("100.00")


# The simulated market


def test_simulated_market_moves_on_the_tick_grid_with_its_configured_volatility():
    # given a seeded market: 1 s rounds at scale 60 and 30 % annual volatility
    market = SimulatedMarket(interval=1, volatility=0.30, time_scale=60, seed=7)
    expected_sigma = 0.30 * math.sqrt(60 / (252 * 8.5 * 3600))
    price = Decimal("200.00")
    log_returns, volumes = [], []
    # when it walks 4000 steps
    for _ in range(4000):
        following = market.next_price(price)
        volumes.append(market.next_volume(price, following))
        assert following == following.quantize(Decimal("0.01")) and following > 0
        log_returns.append(math.log(following / price))
        price = following
    # then the measured volatility of its returns matches the configured one (rounding adds a little)
    mean = sum(log_returns) / len(log_returns)
    measured = math.sqrt(sum((r - mean) ** 2 for r in log_returns) / (len(log_returns) - 1))
    assert expected_sigma * 0.85 < measured < expected_sigma * 1.25
    # and volumes are positive integers with occasional spikes well above the median
    assert all(isinstance(v, int) and v > 0 for v in volumes)
    median = sorted(volumes)[len(volumes) // 2]
    assert 10 < sum(1 for v in volumes if v > 4 * median) < 400


def test_simulated_market_quotes_every_symbol_it_is_asked_about():
    market = SimulatedMarket(interval=1, seed=1)
    ticks = list(market.ticks({"SAP": Decimal("100.00"), "SIE": Decimal("50.00")}))
    assert [t.symbol for t in ticks] == ["SAP", "SIE"]
    assert all(abs(t.price / q - 1) < Decimal("0.02") for t, q in zip(ticks, [Decimal(100), Decimal(50)]))


# Events


async def test_tick_reaches_a_subscribed_client_as_price_update_with_every_field(ws_connect, staff_user, sap_at_100):
    # given a staff client subscribed to price updates
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await client.subscribe("market.price_update")
    feed = PriceFeed(provider=ScriptedMarket({"SAP": ["101.25"]}, {"SAP": [4200]}), interval=1)
    # when a tick is recorded
    await feed.run_round()
    # then the client receives it with every field of the spec, exact, prices on the cent grid
    raw = await client.receive_raw()
    assert '"price":101.25,"previous_price":100.00,"change":1.25,"change_percent":1.2500' in raw
    message = decode(raw)
    assert message["type"] == "market"
    data = get_schema("market.price_update").validate(message["data"])
    tick = (await sync_to_async(ticks_of)("SAP"))[0]
    assert data == {
        "symbol": "SAP",
        "isin": "DE0007164600",
        "price": Decimal("101.25"),
        "previous_price": Decimal("100.00"),
        "change": Decimal("1.25"),
        "change_percent": Decimal("1.2500"),
        "volume": 4200,
        "timestamp": tick.at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": "scripted",
    }


async def test_client_not_subscribed_receives_no_ticks(ws_connect, staff_user, sap_at_100):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await PriceFeed(provider=ScriptedMarket({"SAP": ["101.25"]}), interval=1).run_round()
    await client.nothing_before(await send_marker(client, committed=True))


async def test_in_process_feed_starts_at_the_first_connection_and_a_subscriber_receives_ticks(
    ws_connect, staff_user, sap_at_100, settings
):
    # given the in-process feed switched on, fast, with the in-memory layer
    settings.MARKET = {**settings.MARKET, "FEED_IN_PROCESS": True, "FEED_INTERVAL": 0.05}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    try:
        # when a client connects and only subscribes
        client, _ = await ws_connect(cookie=await login_cookie(staff_user))
        assert running_feed() is not None and running_feed().running
        await client.subscribe("market.price_update")
        # then simulated ticks of SAP keep arriving, each following the previous one
        first = await client.receive_event("market.price_update")
        second = await client.receive_event("market.price_update")
        assert (first["data"]["symbol"], first["data"]["source"]) == ("SAP", "simulated")
        assert second["data"]["previous_price"] == first["data"]["price"]
    finally:
        await background_stop()
    assert running_feed() is None


async def test_feed_does_not_start_in_process_when_switched_off(ws_connect, staff_user, sap_at_100):
    await ws_connect(cookie=await login_cookie(staff_user))
    assert running_feed() is None


def test_feed_never_runs_inside_a_gateway_process_with_redis(settings):
    from market.feed import feed_in_process_enabled

    settings.MARKET = {**settings.MARKET, "FEED_IN_PROCESS": True}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert feed_in_process_enabled()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {}}}
    assert not feed_in_process_enabled()


# The management command and the demo history


def test_market_feed_command_runs_the_given_number_of_rounds(sap_at_100, capsys):
    make_instrument(symbol="SIE", isin="DE0007236101", price="50.00")
    call_command("market_feed", ticks=3, interval=0.01, symbols="sap", seed=3)
    assert len(ticks_of("SAP")) == 3
    assert ticks_of("SIE") == []
    assert "3 rounds, 3 ticks" in capsys.readouterr().out


def test_market_feed_command_delivers_the_events_it_commits_before_it_exits(sap_at_100, staff_user, settings):
    # given a Redis channel layer of this test's own, a listener channel in the groups of price
    # updates and of the user (a plain channel name, so any layer instance may receive it), and
    # an alert rule of the user that any price fires
    url, tag = shared_redis_url(), uuid.uuid4().hex[:10]
    prefix, channel = f"feed-{tag}", f"listener-{tag}"
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "realtime.server.layers.RedisChannelLayer", "CONFIG": {"hosts": [url], "prefix": prefix}}
    }
    channel_layers.backends.clear()

    async def listen() -> None:
        listener = gateway_layer([url], prefix)
        await listener.group_add("ev.market.price_update", channel)
        await listener.group_add(f"user.{staff_user.pk}", channel)

    async def take(count: int) -> list[dict]:
        listener = gateway_layer([url], prefix)
        try:
            return [decode((await asyncio.wait_for(listener.receive(channel), 10))["text"]) for _ in range(count)]
        finally:
            await listener.flush()

    asyncio.run(listen())
    alert_rule_create(user=staff_user, symbol="SAP", condition="above", threshold="0.0001")
    try:
        # when the command records a single round and exits
        call_command("market_feed", ticks=1, interval=0.01, symbols="sap", seed=3)
        # then the tick's price update and the alert it fired were delivered
        received = asyncio.run(take(2))
    finally:
        channel_layers.backends.clear()
    assert sorted(frame["event"] for frame in received) == ["market.alert", "market.price_update"]
    assert not AlertRule.objects.filter(armed=True).exists()


def test_every_management_command_that_runs_an_event_loop_publishes_before_it_ends():
    # A command whose database work commits events on its loop must run that loop through
    # run_and_publish; these only talk to servers and Redis and write no rows.
    writes_nothing = {"event_bridge.py", "gateway_clients.py", "tail_events.py", "ws_client.py"}
    commands = [path for path in BASE_DIR.glob("*/management/commands/*.py") if path.name != "__init__.py"]
    assert commands
    direct = {path.name for path in commands if "asyncio.run(" in path.read_text()}
    assert direct == writes_nothing
    assert "run_and_publish(" in (BASE_DIR / "market/management/commands/market_feed.py").read_text()


@pytest.mark.parametrize("options", [{"ticks": 0}, {"interval": -1}, {"rate": 0}, {"rate": 2, "interval": 1}])
def test_market_feed_command_refuses_bad_options(db, options):
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("market_feed", **options)


def test_price_history_seed_gives_sap_enough_history_once(db):
    added = price_history_seed(points=120, seed=5)
    sap = Instrument.objects.get(symbol="SAP")
    ticks = ticks_of("SAP")
    assert len(ticks) == 120 and added >= 120
    # the history is continuous and ends at SAP's current price
    assert all(later.previous_price == earlier.price for earlier, later in zip(ticks, ticks[1:]))
    assert ticks[-1].price == sap.last_price
    assert price_history_seed(points=120, seed=5) == 0


# Orders and portfolios follow the ticks (issue 3's contract)


def test_tick_fills_a_resting_limit_order_and_revalues_the_holding_portfolio(
    portfolio_with_position, sap, actor, published
):
    from trading.models import Order
    from trading.services import order_place

    # given a portfolio holding 10 SAP (last price 200) and a resting limit buy at 190
    order = order_place(
        portfolio_id=portfolio_with_position.pk,
        symbol="SAP",
        side="buy",
        order_type="limit",
        quantity=Decimal("2"),
        price=Decimal("190"),
        actor=actor,
    )
    assert order.status not in ("filled",)
    feed = PriceFeed(provider=ScriptedMarket({"SAP": ["195.00", "189.50"]}), interval=1)
    # when a tick above the limit arrives, the order rests and the portfolio is revalued
    asyncio.run(feed.run_round())
    order.refresh_from_db()
    assert order.status != "filled"
    assert [d["trigger_reason"] for d in published.data("portfolio.value_changed")] == ["price_update"]
    # when a tick crosses the limit
    asyncio.run(feed.run_round())
    # then the order is filled at that tick and the portfolio revalued again
    order = Order.objects.get(pk=order.pk)
    assert order.status == "filled"
    assert [d["fill_price"] for d in published.data("trading.order_filled")] == [Decimal("189.50")]
    assert len(published.data("portfolio.value_changed")) >= 2
    assert [d["price"] for d in published.data("market.price_update")] == [Decimal("195.00"), Decimal("189.50")]
