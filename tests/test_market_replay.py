"""CSV replay as a price provider: playing a file at its speed, refusing a bad one, the market_feed command."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from market.feed import PriceFeed
from market.models import FeedState, PriceTick
from market.replay import ReplayFileError, ReplayMarket, replay_rows_read
from tests.fixtures.market import market_feed_status, run_round, stored

pytestmark = pytest.mark.django_db(transaction=True)

BASE_DIR = Path(__file__).resolve().parent.parent


def write_csv(tmp_path: Path, text: str, name: str = "quotes.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


QUOTES_CSV = """time,symbol,price,volume
2024-05-02T09:00:00Z,SAP,180.10,100
2024-05-02T09:00:00Z,SIE,175.00,50
2024-05-02T09:01:00Z,SAP,180.40,120
2024-05-02T09:02:00Z,SAP,180.25,90
"""


def test_replay_plays_the_file_in_order_at_its_speed(sap_and_siemens, tmp_path, clock, published):
    # given a minute between rows, played at 60 (a minute a second)
    rows = replay_rows_read(write_csv(tmp_path, QUOTES_CSV))
    feed = PriceFeed(provider=ReplayMarket(rows, speed=60, clock=clock), interval=1)
    # when rounds run half a second apart
    played = []
    for _ in range(5):
        played.append(run_round(feed))
        clock.advance(0.5)
    # then each row played when its time came, in file order, as replay ticks
    assert played == [2, 0, 1, 0, 1]
    assert [(e["symbol"], e["price"], e["volume"], e["source"]) for e in published.data("market.price_update")] == [
        ("SAP", Decimal("180.10"), 100, "replay"),
        ("SIE", Decimal("175.00"), 50, "replay"),
        ("SAP", Decimal("180.40"), 120, "replay"),
        ("SAP", Decimal("180.25"), 90, "replay"),
    ]
    assert feed.finished


def test_replay_loops_when_asked(sap_and_siemens, tmp_path, clock):
    rows = replay_rows_read(write_csv(tmp_path, QUOTES_CSV))
    market = ReplayMarket(rows, speed=1000, loop=True, clock=clock)
    feed = PriceFeed(provider=market, interval=1)
    assert run_round(feed) == 2
    clock.advance(1)
    assert run_round(feed) == 2  # the rest of the file
    assert run_round(feed) == 2  # the start again
    assert market.plays == 1 and not feed.finished


def test_replay_of_ohlc_bars_plays_their_close(sap_at_100, tmp_path, published):
    path = write_csv(tmp_path, "Time,Symbol,Open,High,Low,Close,Volume\n2024-05-02,SAP,100,110,95,108.5,5000\n")
    [row] = replay_rows_read(path)
    assert (row.symbol, row.price, row.volume, row.at.isoformat()) == (
        "SAP",
        Decimal("108.5"),
        5000,
        "2024-05-02T00:00:00+00:00",
    )


def test_replay_feed_from_settings_plays_to_the_end_and_stops(sap_and_siemens, tmp_path, settings):
    settings.MARKET = {
        **settings.MARKET,
        "PROVIDER": "replay",
        "REPLAY_FILE": str(write_csv(tmp_path, QUOTES_CSV)),
        "REPLAY_SPEED": 1e9,
    }
    feed = PriceFeed.from_settings(interval=0.01)
    asyncio.run(asyncio.wait_for(feed.run(), 30))
    assert feed.finished and feed.ticks == 4
    assert [p for p, _, _ in stored("SAP")] == [Decimal("180.10"), Decimal("180.40"), Decimal("180.25")]
    # a finished replay is reported as stopped
    assert FeedState.objects.get().running is False
    assert market_feed_status()["status"] == "offline"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "it is empty"),
        ("time,symbol\n", "line 1: the header lacks price (or open, high, low, close)"),
        ("time,symbol,price,close\n", "line 1: the header has both price and open/high/low/close"),
        ("time,symbol,open,close\n", "line 1: the header lacks high, low"),
        ("time,symbol,price\n", "it has a header but no rows"),
        (
            "time,symbol,price\n2024-05-02,SAP,1\n2024-05-02,SAP,abc\n",
            "line 3: price 'abc' is not a positive decimal number",
        ),
        ("time,symbol,price\n2024-05-02,SAP,-1\n", "line 2: price '-1' is not a positive decimal number"),
        ("time,symbol,price\nyesterday,SAP,1\n", "line 2: time 'yesterday' is not an ISO 8601"),
        ("time,symbol,price\n2024-05-03,SAP,1\n2024-05-02,SAP,1\n", "line 3: time 2024-05-02T00:00:00+00:00 is before"),
        ("time,symbol,price\n2024-05-02,SAP\n", "line 2: 2 columns, the header has 3"),
        ("time,symbol,price,volume\n2024-05-02,SAP,1,many\n", "line 2: volume 'many' is not a whole"),
        ("time,symbol,open,high,low,close\n2024-05-02,SAP,10,9,8,9\n", "line 2: the bar's low and high do not enclose"),
    ],
)
def test_a_bad_replay_file_is_refused_naming_the_line(tmp_path, text, message):
    path = write_csv(tmp_path, text)
    with pytest.raises(ReplayFileError) as refused:
        replay_rows_read(path)
    assert message in str(refused.value) and str(path) in str(refused.value)


def test_a_missing_or_binary_replay_file_is_refused(tmp_path):
    with pytest.raises(ReplayFileError, match="cannot be read"):
        replay_rows_read(tmp_path / "absent.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"time,symbol,price\n\xff\xfe\x00")
    with pytest.raises(ReplayFileError, match="not UTF-8"):
        replay_rows_read(binary)


def test_market_feed_command_refuses_a_bad_replay_file_with_exit_1_and_the_line(tmp_path):
    path = write_csv(tmp_path, "time,symbol,price\n2024-05-02,SAP,1\n2024-05-02,SAP,twelve\n")
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "market_feed",
            "--provider",
            "replay",
            "--replay-file",
            str(path),
            "--ticks",
            "1",
        ],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "line 3: price 'twelve' is not a positive decimal number" in result.stderr
    assert "Traceback" not in result.stderr


def test_market_feed_command_refuses_replay_symbols_without_an_instrument(sap_at_100, tmp_path):
    path = write_csv(tmp_path, QUOTES_CSV)
    with pytest.raises(CommandError, match="no instrument has: SIE"):
        call_command("market_feed", provider="replay", replay_file=str(path), ticks=1)
    assert PriceTick.objects.count() == 0


def test_market_feed_command_replays_a_file(sap_and_siemens, tmp_path, capsys):
    path = write_csv(tmp_path, QUOTES_CSV)
    call_command("market_feed", provider="replay", replay_file=str(path), speed=1e9, interval=0.01)
    assert [p for p, _, _ in stored("SAP")] == [Decimal("180.10"), Decimal("180.40"), Decimal("180.25")]
    assert "4 ticks" in capsys.readouterr().out
