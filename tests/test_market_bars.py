"""Price bars: stored ticks aggregated in the database into OHLC bars with volume, over REST."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.utils import timezone

from core.exceptions import ValidationFailed
from market.models import PriceTick
from market.selectors import MAX_BARS, price_bars_list

pytestmark = pytest.mark.django_db

D = Decimal
# A bar boundary for every size up to a day: 2026-03-02 00:00:00 UTC.
MIDNIGHT = datetime(2026, 3, 2, tzinfo=dt_timezone.utc)


def tick(instrument, at: datetime, price: str, volume: int = 100) -> PriceTick:
    return PriceTick.objects.create(
        instrument=instrument, price=D(price), previous_price=D(price), volume=volume, source="test", at=at
    )


def at(seconds: float, base: datetime = MIDNIGHT) -> datetime:
    return base + timedelta(seconds=seconds)


def test_bars_hold_open_high_low_close_and_volume_of_their_ticks_in_time_order(sap):
    # given ticks in the first minute stored out of time order, and two at the same moment
    tick(sap, at(30), "101.50", 10)
    tick(sap, at(0), "100.00", 5)
    tick(sap, at(59.999), "99.25", 7)
    tick(sap, at(45), "103.75", 1)
    tick(sap, at(59.999), "100.10", 2)  # same moment, stored later: the close
    tick(sap, at(60), "104.00", 3)  # on the boundary: the next bar

    # when the bars of the quarter hour ending at 00:02 are asked for
    bars = price_bars_list(instrument=sap, period="15m", bar="1m", end=at(120))

    # then each minute is one bar with its own ticks
    assert [(b.start, b.open, b.high, b.low, b.close, b.volume, b.ticks) for b in bars.bars] == [
        (at(0), D("100.0000"), D("103.7500"), D("99.2500"), D("100.1000"), 25, 5),
        (at(60), D("104.0000"), D("104.0000"), D("104.0000"), D("104.0000"), 3, 1),
    ]
    assert (bars.bar_seconds, bars.truncated) == (60, False)


def test_a_minute_without_ticks_is_a_gap_not_a_bar(sap):
    tick(sap, at(10), "100.00")
    tick(sap, at(190), "101.00")  # nothing in the 2nd and 3rd minute

    bars = price_bars_list(instrument=sap, period="15m", bar="1m", end=at(200))

    assert [b.start for b in bars.bars] == [at(0), at(180)]


def test_bars_cover_only_the_range_and_only_their_instrument(sap, siemens):
    # given ticks around the hour of 60 one-minute bars that ends with the bar holding 00:00:30
    tick(sap, at(-3540 - 1), "90.00")  # in the 61st minute back
    tick(sap, at(-3540 + 1), "95.00")
    tick(siemens, at(-10), "180.00")
    tick(sap, at(31), "96.00")  # after `end`, in the same minute

    bars = price_bars_list(instrument=sap, period="1h", bar="1m", end=at(30))

    assert [(b.start, b.close) for b in bars.bars] == [(at(-3540), D("95.0000"))]
    assert bars.start == at(-3540)


def test_bar_size_is_chosen_to_fit_the_range_when_not_given(sap):
    tick(sap, at(-30), "100.00")

    assert price_bars_list(instrument=sap, period="15m", end=MIDNIGHT).bar == "5s"
    assert price_bars_list(instrument=sap, period="1d", end=MIDNIGHT).bar == "5m"
    assert price_bars_list(instrument=sap, period="1w", end=MIDNIGHT).bar == "15m"


def test_a_range_too_long_for_the_bar_size_is_refused(sap):
    with pytest.raises(ValidationFailed) as refused:
        price_bars_list(instrument=sap, period="1w", bar="5s", end=MIDNIGHT)

    assert refused.value.code == "too_many_bars" and refused.value.details["max_bars"] == MAX_BARS


def test_all_spans_the_stored_history_and_keeps_the_newest_bars_when_too_many(sap):
    tick(sap, at(-30 * 86400), "80.00")
    tick(sap, at(-60), "100.00")

    whole = price_bars_list(instrument=sap, period="all", end=MIDNIGHT)
    cut = price_bars_list(instrument=sap, period="all", bar="1m", end=MIDNIGHT)

    assert whole.bar == "1h" and [b.close for b in whole.bars] == [D("80.0000"), D("100.0000")]
    assert cut.truncated and [b.close for b in cut.bars] == [D("100.0000")]
    assert cut.start == at(-(MAX_BARS - 1) * 60)


def test_no_ticks_gives_no_bars(sap):
    bars = price_bars_list(instrument=sap, period="all", end=MIDNIGHT)

    assert bars.bars == []


# REST


@pytest.fixture
def api(client, staff_user):
    client.force_login(staff_user)
    return client


def minute_start(minutes_ago: int) -> datetime:
    now = timezone.now()
    return now.replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago)


def test_rest_bars_are_decimal_strings_with_epoch_times(api, sap):
    base = minute_start(3)
    tick(sap, base + timedelta(seconds=1), "200.10", 4)
    tick(sap, base + timedelta(seconds=50), "201.25", 6)

    response = api.get("/api/market/bars?symbol=sap&range=15m&bar=1m")

    assert response.status_code == 200
    body = response.json()
    assert (body["symbol"], body["range"], body["bar"], body["bar_seconds"], body["truncated"]) == (
        "SAP",
        "15m",
        "1m",
        60,
        False,
    )
    assert body["bars"] == [
        {
            "time": int(base.timestamp()),
            "start": body["bars"][0]["start"],
            "open": "200.1000",
            "high": "201.2500",
            "low": "200.1000",
            "close": "201.2500",
            "volume": 10,
            "ticks": 2,
        }
    ]
    assert datetime.fromisoformat(body["bars"][0]["start"]) == base


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("", 400, "missing_symbol"),
        ("symbol=SAP%3B", 400, "invalid_symbol"),
        ("symbol=NOPE", 404, "unknown_symbol"),
        ("symbol=SAP&range=2y", 400, "invalid_range"),
        ("symbol=SAP&bar=7s", 400, "invalid_bar"),
        ("symbol=SAP&range=1w&bar=5s", 400, "too_many_bars"),
    ],
)
def test_rest_bars_refuse_bad_input_in_the_error_shape(api, sap, query, status, code):
    response = api.get(f"/api/market/bars?{query}")

    assert response.status_code == status
    body = response.json()
    assert body["code"] == code and body["error"]


def test_rest_bars_are_for_staff_only(client, sap, non_staff_user):
    anonymous = client.get("/api/market/bars?symbol=SAP")
    client.force_login(non_staff_user)
    not_staff = client.get("/api/market/bars?symbol=SAP")

    assert anonymous.status_code in (401, 403) and anonymous.json()["code"]
    assert not_staff.status_code == 403 and not_staff.json()["code"]
