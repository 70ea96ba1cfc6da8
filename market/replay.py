"""Replay of recorded quotes from a CSV file, at a chosen speed, for demos and back-tests.

The file is read and checked whole before anything plays, so a bad file is refused at start
with every problem and its line number, never half played. Columns (a header row names them,
in any order, case-insensitive):

- `time, symbol, price[, volume]`: one quote per row;
- `time, symbol, open, high, low, close[, volume]`: one bar per row, played as its close.

`time` is ISO 8601 (`2024-05-02T09:00:00+02:00`, `2024-05-02 09:00:00`, `2024-05-02`; without
an offset it is UTC) and never goes backwards; `price`/`open`/... are plain positive decimals
with at most four places; `volume` is a whole number (0 if the column is absent).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal
from pathlib import Path

from django.utils import timezone

from .providers import BadQuote, ProviderHealth, Tick, quote_price, quote_volume

MAX_REPORTED_PROBLEMS = 20
BAR_COLUMNS = ("open", "high", "low", "close")


class ReplayFileError(ValueError):
    """A replay file that cannot be played; the message names the file, lines and problems."""


@dataclass(frozen=True)
class ReplayRow:
    line: int
    at: datetime
    symbol: str
    price: Decimal
    volume: int


def _time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise BadQuote(f"time {text[:40]!r} is not an ISO 8601 date or date and time") from None
    return at.replace(tzinfo=dt_timezone.utc) if at.tzinfo is None else at


def _columns(header: list[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in header]
    columns = {name: index for index, name in enumerate(names) if name}
    if len(columns) != len([n for n in names if n]):
        raise ReplayFileError("the header names a column twice")
    missing = [name for name in ("time", "symbol") if name not in columns]
    bar = [name for name in BAR_COLUMNS if name in columns]
    if "price" in columns and bar:
        raise ReplayFileError("the header has both price and open/high/low/close; give one of them")
    if "price" not in columns and not bar:
        missing.append("price (or open, high, low, close)")
    elif bar and len(bar) < len(BAR_COLUMNS):
        missing += [name for name in BAR_COLUMNS if name not in columns]
    if missing:
        raise ReplayFileError(f"the header lacks {', '.join(missing)} (it has {', '.join(names) or 'nothing'})")
    return columns


def _row(line: int, values: list[str], columns: dict[str, int]) -> ReplayRow:
    cell = {name: values[index].strip() for name, index in columns.items()}
    symbol = cell["symbol"].upper()
    if not symbol or len(symbol) > 16:
        raise BadQuote(f"symbol {cell['symbol'][:40]!r} is empty or longer than 16 characters")
    if "price" in cell:
        price = quote_price(cell["price"])
    else:
        bar = {name: quote_price(cell[name]) for name in BAR_COLUMNS}
        if not bar["low"] <= min(bar["open"], bar["close"]) <= max(bar["open"], bar["close"]) <= bar["high"]:
            raise BadQuote("the bar's low and high do not enclose its open and close")
        price = bar["close"]
    volume = quote_volume(cell["volume"]) if "volume" in cell else 0
    return ReplayRow(line=line, at=_time(cell["time"]), symbol=symbol, price=price, volume=volume)


def replay_rows_read(path: str | Path) -> list[ReplayRow]:
    """Read and check a replay file; raise ReplayFileError listing its problems by line."""
    path = Path(path)
    problems: list[str] = []
    rows: list[ReplayRow] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise ReplayFileError(f"replay file {path}: it is empty")
            try:
                columns = _columns(header)
            except ReplayFileError as exc:
                raise ReplayFileError(f"replay file {path}: line 1: {exc}") from None
            for values in reader:
                line = reader.line_num
                if not any(value.strip() for value in values):
                    continue
                if len(values) != len(header):
                    problems.append(f"line {line}: {len(values)} columns, the header has {len(header)}")
                    continue
                try:
                    row = _row(line, values, columns)
                except BadQuote as exc:
                    problems.append(f"line {line}: {exc}")
                    continue
                if rows and row.at < rows[-1].at:
                    problems.append(f"line {line}: time {row.at.isoformat()} is before the previous row's")
                    continue
                rows.append(row)
    except OSError as exc:
        raise ReplayFileError(f"replay file {path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ReplayFileError(f"replay file {path}: is not UTF-8 text") from None
    except csv.Error as exc:
        raise ReplayFileError(f"replay file {path}: is not CSV ({exc})") from None
    if problems:
        shown = problems[:MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(shown)
        raise ReplayFileError(
            f"replay file {path}: {len(problems)} bad row(s): "
            + "; ".join(shown)
            + (f"; and {more} more" if more else "")
        )
    if not rows:
        raise ReplayFileError(f"replay file {path}: it has a header but no rows")
    return rows


class ReplayMarket:
    """Play recorded rows in file order, `speed` market seconds per real second, optionally looping.

    Each round yields the rows whose time has come since the replay started, stamped with the
    moment they play (the file's times set only the spacing, so history, analyses and resting
    orders see them as live ticks). Without `loop` the provider is `finished` after the last row.
    """

    source = "replay"
    needs_last_price = False

    def __init__(
        self,
        rows: list[ReplayRow],
        *,
        speed: float = 1.0,
        loop: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not rows:
            raise ValueError("a replay needs at least one row")
        if not speed > 0:
            raise ValueError("the replay speed must be positive")
        self.rows = rows
        self.speed = speed
        self.loop = loop
        self.clock = clock
        self.position = 0
        self.started_at: float | None = None
        self.plays = 0
        self.finished = False
        self.health = ProviderHealth()
        self.file_symbols = sorted({row.symbol for row in rows})

    def ticks(self, quotes: Mapping[str, Decimal | None]) -> Iterable[Tick]:
        now = self.clock()
        if self.finished:
            return []
        if self.started_at is None:
            self.started_at = now
        self.health.symbol_problems = {
            symbol: "in the replay file but not an instrument the feed moves"
            for symbol in self.file_symbols
            if symbol not in quotes
        }
        played = (now - self.started_at) * self.speed
        origin = self.rows[0].at
        ticks = []
        while self.position < len(self.rows) and (self.rows[self.position].at - origin).total_seconds() <= played:
            row = self.rows[self.position]
            self.position += 1
            if row.symbol in quotes:
                ticks.append(Tick(symbol=row.symbol, price=row.price, volume=row.volume, at=timezone.now()))
        if self.position >= len(self.rows):
            self.plays += 1
            if self.loop:
                self.position, self.started_at = 0, None
            else:
                self.finished = True
        self.health.last_answer_at = timezone.now()
        return ticks
