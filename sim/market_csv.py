"""Recorded market data as CSV, read into the market simulator's event stream.

One row is the top of book at ``ts_ns`` and, when the three trade columns are filled,
a trade printed at that time against the previous row's book (the row's book is what
the trade left). So a row becomes an optional :class:`TradeEvent` followed by a
:class:`BookEvent`, exactly the pairs :func:`nanoquote.sim.market.iter_market` yields,
and the simulator's stream round-trips through a file.

A malformed file raises one :class:`MarketDataError` whose message names the file, the
line and why (docs/market.md lists the rules). The project's sample,
``data/sample_market.csv``, is written by :func:`write_sample` from the simulator with a
fixed seed; a test fails when the committed file differs from what it writes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from nanoquote.host.strategy.domain import PRICE_MAX, TS_MAX
from nanoquote.host.strategy.orders import Side
from nanoquote.sim.market import BookEvent, MarketConfig, MarketEvent, TradeEvent, generate_market

__all__ = ["COLUMNS", "MarketDataError", "read_csv", "parse_csv", "format_csv", "write_csv",
           "SAMPLE_PATH", "SAMPLE_SEED", "SAMPLE_ROWS", "sample_csv", "write_sample"]

COLUMNS = ("ts_ns", "bid", "ask", "bid_qty", "ask_qty", "trade_price", "trade_qty", "trade_side")
_TRADE = COLUMNS[5:]
_QTY_MAX = (1 << 31) - 1

#: The committed sample: seed, rows (book events) and place in a checkout.
SAMPLE_SEED = 5
SAMPLE_ROWS = 2000
SAMPLE_PATH = Path(__file__).resolve().parents[1] / "data" / "sample_market.csv"


class MarketDataError(ValueError):
    """A file that is not valid market data: ``<file>:<line>: <why>``."""


def _integer(text: str, column: str, low: int, high: int) -> int:
    """An integer in ``low..high`` written in decimal digits (no sign for these fields)."""
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{column} {text!r} is not a whole number")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{column} {value} is outside {low}..{high}")
    return value


def _row(fields: dict[str, str], tick: int, last_ts: int | None) -> list[MarketEvent]:
    ts = _integer(fields["ts_ns"], "ts_ns", 0, TS_MAX)
    if last_ts is not None and ts < last_ts:
        raise ValueError(f"ts_ns {ts} is before the previous row's {last_ts} (time must not decrease)")
    bid = _integer(fields["bid"], "bid", 1, PRICE_MAX)
    ask = _integer(fields["ask"], "ask", 1, PRICE_MAX)
    bid_qty = _integer(fields["bid_qty"], "bid_qty", 1, _QTY_MAX)
    ask_qty = _integer(fields["ask_qty"], "ask_qty", 1, _QTY_MAX)
    for column, price in (("bid", bid), ("ask", ask)):
        if price % tick:
            raise ValueError(f"{column} {price} is not a multiple of the tick {tick}")
    if bid >= ask:
        raise ValueError(f"crossed or locked book: bid {bid} >= ask {ask}")
    events: list[MarketEvent] = []
    trade = [fields[c] for c in _TRADE]
    if any(trade):
        missing = [c for c, v in zip(_TRADE, trade, strict=True) if not v]
        if missing:
            raise ValueError(f"a trade needs all of {', '.join(_TRADE)}; {', '.join(missing)} empty")
        price = _integer(trade[0], "trade_price", 1, PRICE_MAX)
        if price % tick:
            raise ValueError(f"trade_price {price} is not a multiple of the tick {tick}")
        qty = _integer(trade[1], "trade_qty", 1, _QTY_MAX)
        try:
            side = Side(trade[2])
        except ValueError:
            raise ValueError(f"trade_side {trade[2]!r} is not 'buy' or 'sell'") from None
        events.append(TradeEvent(ts, price, qty, side))
    events.append(BookEvent(ts, bid, ask, bid_qty, ask_qty))
    return events


def parse_csv(text: str, name: str = "<string>", tick: int = 25) -> list[MarketEvent]:
    """The events of CSV ``text`` (``name`` is what errors call the file)."""
    lines = text.splitlines()
    if not lines:
        raise MarketDataError(f"{name}: empty file: expected a header line {','.join(COLUMNS)}")
    header = [h.strip() for h in next(csv.reader([lines[0]]))]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        why = "; ".join(filter(None, (
            f"missing column(s) {', '.join(missing)}" if missing else "",
            f"unknown column(s) {', '.join(unknown)}" if unknown else "",
            "a column named twice" if len(set(header)) != len(header) else "")))
        raise MarketDataError(f"{name}:1: bad header ({why}); expected {','.join(COLUMNS)}")
    events: list[MarketEvent] = []
    last_ts: int | None = None
    for number, cells in enumerate(csv.reader(lines[1:]), start=2):
        if not cells or cells == [""]:
            continue  # a blank line
        if len(cells) != len(header):
            raise MarketDataError(f"{name}:{number}: {len(cells)} field(s), the header has {len(header)}")
        try:
            row = _row({h: c.strip() for h, c in zip(header, cells, strict=True)}, tick, last_ts)
        except ValueError as exc:
            raise MarketDataError(f"{name}:{number}: {exc}") from None
        last_ts = row[-1].ts_ns
        events += row
    return events


def read_csv(path: str | Path, tick: int = 25) -> list[MarketEvent]:
    """The events of a market-data CSV file (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise MarketDataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise MarketDataError(f"{path}: not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    return parse_csv(text, str(path), tick)


def format_csv(events: Iterable[MarketEvent]) -> str:
    """CSV text of an event stream made of (trade?, book) pairs at one time each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    trade: TradeEvent | None = None
    for event in events:
        if isinstance(event, TradeEvent):
            if trade is not None:
                raise ValueError(f"two trades at {trade.ts_ns} and {event.ts_ns} without a book between them")
            trade = event
            continue
        if trade is not None and trade.ts_ns != event.ts_ns:
            raise ValueError(f"the trade at {trade.ts_ns} is not followed by a book at the same time")
        tail = ("", "", "") if trade is None else (trade.price, trade.qty, trade.side.value)
        writer.writerow((event.ts_ns, event.bid, event.ask, event.bid_qty, event.ask_qty, *tail))
        trade = None
    if trade is not None:
        raise ValueError(f"the trade at {trade.ts_ns} is not followed by a book")
    return out.getvalue()


def write_csv(events: Iterable[MarketEvent], path: str | Path) -> None:
    Path(path).write_text(format_csv(events), encoding="utf-8")


def sample_csv() -> str:
    """What ``data/sample_market.csv`` holds: the simulator's default market, fixed seed."""
    return format_csv(generate_market(SAMPLE_SEED, SAMPLE_ROWS, MarketConfig()))


def write_sample(path: str | Path = SAMPLE_PATH) -> Path:
    """(Re)write the sample; run ``python -m nanoquote.sim.market_csv`` after changing the simulator."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sample_csv(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"wrote {write_sample()}")
