"""The demo market: instruments with a simulated price history, invented fundamentals and headlines.

So every analysis works after `make run`. Nothing here is a fact about the companies: every row
is stored with source "demo" (ticks "seed"), the desk marks results built on it, and the
figures and headlines are made up to show each verdict.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from portfolio.models import Instrument

from .conf import market_setting
from .models import Fundamentals, NewsItem, PriceTick
from .providers import SimulatedMarket
from .sentiment.news import news_fingerprint

DEMO_INSTRUMENTS = [
    ("SAP", "DE0007164600", "SAP SE", Decimal("215.40")),
    ("SIE", "DE0007236101", "Siemens AG", Decimal("178.90")),
    ("ALV", "DE0008404005", "Allianz SE", Decimal("287.60")),
    ("BAS", "DE000BASF111", "BASF SE", Decimal("46.35")),
    ("DTE", "DE0005557508", "Deutsche Telekom AG", Decimal("28.12")),
]


def price_history_seed(*, points: int = 240, seed: int | None = None) -> int:
    """Give every instrument at least `points` ticks of simulated history; return how many were added.

    The demo instruments are created if missing, so an analysis of SAP works right after
    `make run`. History is laid out backwards from now at the feed interval and ends at the
    instrument's current price; running it again adds nothing.
    """
    for symbol, isin, name, price in DEMO_INSTRUMENTS:
        if not Instrument.objects.filter(symbol=symbol).exists() and not Instrument.objects.filter(isin=isin).exists():
            Instrument.objects.create(
                symbol=symbol, isin=isin, name=name, last_price=price, last_price_at=timezone.now()
            )
    interval = market_setting("FEED_INTERVAL")
    market = SimulatedMarket(
        interval=interval,
        volatility=market_setting("SIMULATED_VOLATILITY"),
        time_scale=market_setting("SIMULATED_TIME_SCALE"),
        seed=seed,
    )
    added = 0
    now = timezone.now()
    for instrument in Instrument.objects.all():
        have = PriceTick.objects.filter(instrument=instrument).count()
        if have >= points:
            continue
        oldest = PriceTick.objects.filter(instrument=instrument).order_by("at", "id").first()
        end_price = oldest.previous_price if oldest else (instrument.last_price or Decimal("100.00"))
        end_at = oldest.at - timedelta(seconds=interval) if oldest else now
        # Walk backwards from the known price, then store the path oldest first.
        path = [end_price]
        for _ in range(points - have):
            path.append(market.next_price(path[-1]))
        path.reverse()
        ticks = [
            PriceTick(
                instrument=instrument,
                price=price,
                previous_price=before,
                volume=market.next_volume(before, price),
                source="seed",
                at=end_at - timedelta(seconds=interval * (len(path) - 1 - index)),
            )
            for index, (before, price) in enumerate(zip(path, path[1:]), start=1)
        ]
        PriceTick.objects.bulk_create(ticks)
        if instrument.last_price is None:
            instrument.last_price, instrument.last_price_at = path[-1], end_at
            instrument.save(update_fields=["last_price", "last_price_at"])
        added += len(ticks)
    return added


DEMO_SOURCE = "demo"
# The demo figures are dated this many days back: fresh enough for full confidence.
DEMO_FIGURES_AGE_DAYS = 45

# symbol: pe_ratio, pb_ratio, dividend_yield %, roe %, debt_to_equity, eps, eps_growth %, revenue_growth %, market_cap
DEMO_FUNDAMENTALS = {
    "SAP": ("38.5", "6.2", "1.0", "16.5", "0.35", "5.60", "18.0", "9.5", "265000000000"),
    "SIE": ("17.8", "2.6", "2.8", "15.2", "1.10", "10.05", "6.0", "4.0", "143000000000"),
    "ALV": ("12.4", "1.9", "5.2", "16.8", "0.45", "23.20", "11.0", "6.5", "113000000000"),
    "BAS": ("28.0", "1.2", "7.4", "3.1", "0.80", "1.65", "-35.0", "-9.5", "41000000000"),
    "BMW": ("6.1", "0.6", "6.8", "9.5", "1.90", "13.90", "-25.0", "-7.0", "54000000000"),
    "DTE": ("14.2", "1.8", "2.9", "12.0", "2.60", "2.10", "8.0", "3.5", "148000000000"),
    "MBG": ("5.8", "0.7", "8.9", "10.5", "1.40", "9.70", "-30.0", "-4.5", "60000000000"),
    "IFX": ("24.5", "2.7", "0.9", "11.0", "0.30", "1.45", "-20.0", "-8.0", "46000000000"),
}
DEMO_CURRENCY = "EUR"

# symbol: (hours ago, language, headline)
DEMO_NEWS = {
    "SAP": [
        (3, "de", "SAP übertrifft die Erwartungen und hebt die Prognose an"),
        (20, "en", "SAP shares climb as cloud revenue beats estimates"),
        (70, "de", "SAP von Analysten hochgestuft"),
    ],
    "SIE": [
        (5, "en", "Siemens keeps its outlook unchanged"),
        (30, "de", "Siemens-Aktie stabil nach Hauptversammlung"),
        (90, "en", "Siemens shares slip after weak orders in China"),
    ],
    "ALV": [
        (8, "de", "Allianz erhöht Dividende nach starkem Jahr"),
        (40, "en", "Allianz posts record operating profit"),
    ],
    "BAS": [
        (2, "de", "Gewinnwarnung: BASF-Aktie bricht ein"),
        (26, "en", "BASF cuts guidance as chemical demand slumps"),
        (60, "de", "BASF kündigt Stellenabbau an"),
    ],
    "BMW": [(12, "en", "BMW deliveries fall in China"), (50, "de", "BMW erholt sich nach schwachem Quartal")],
    "DTE": [(6, "de", "Telekom wächst in den USA kräftig"), (48, "en", "Deutsche Telekom upgraded to buy")],
    "MBG": [
        (4, "en", "Mercedes-Benz shares tumble after profit warning"),
        (36, "de", "Mercedes verfehlt Erwartungen im Quartal"),
    ],
    "IFX": [(10, "de", "Infineon senkt Umsatzprognose"), (30, "en", "Infineon rallies as chip orders recover")],
}


@transaction.atomic
def demo_market_data_seed() -> tuple[int, int]:
    """Replace the demo fundamentals and headlines of the demo instruments that exist; return (figures, headlines).

    Rows of other sources are left alone. The headlines are dated back from now, so a sentiment
    analysis finds them recent on every run.
    """
    now = timezone.now()
    as_of = timezone.localdate() - timedelta(days=DEMO_FIGURES_AGE_DAYS)
    figures = headlines = 0
    for instrument in Instrument.objects.filter(symbol__in=DEMO_FUNDAMENTALS.keys() | DEMO_NEWS.keys()):
        row = DEMO_FUNDAMENTALS.get(instrument.symbol)
        real_that_day = Fundamentals.objects.filter(instrument=instrument, as_of=as_of).exclude(source=DEMO_SOURCE)
        if row is not None and not real_that_day.exists():
            Fundamentals.objects.filter(instrument=instrument, source=DEMO_SOURCE).exclude(as_of=as_of).delete()
            pe, pb, dividend, roe, debt, eps, eps_growth, revenue_growth, market_cap = map(Decimal, row)
            Fundamentals.objects.update_or_create(
                instrument=instrument,
                as_of=as_of,
                defaults={
                    "source": DEMO_SOURCE,
                    "currency": DEMO_CURRENCY,
                    "pe_ratio": pe,
                    "pb_ratio": pb,
                    "dividend_yield": dividend,
                    "roe": roe,
                    "debt_to_equity": debt,
                    "eps": eps,
                    "eps_growth": eps_growth,
                    "revenue_growth": revenue_growth,
                    "market_cap": market_cap,
                },
            )
            figures += 1
        NewsItem.objects.filter(instrument=instrument, source=DEMO_SOURCE).delete()
        for hours, language, headline in DEMO_NEWS.get(instrument.symbol, []):
            published_at = now - timedelta(hours=hours)
            NewsItem.objects.create(
                instrument=instrument,
                published_at=published_at,
                source=DEMO_SOURCE,
                headline=headline,
                language=language,
                fingerprint=news_fingerprint(published_at=published_at, source=DEMO_SOURCE, headline=headline),
            )
            headlines += 1
    return figures, headlines
