"""Market-data CSV: the simulator's stream round-trips, bad rows name file and line, the sample is fresh."""

from __future__ import annotations

from pathlib import Path

import pytest
from nanoquote.host.strategy.orders import Side
from nanoquote.sim.market import BookEvent, TradeEvent, generate_market
from nanoquote.sim.market_csv import (
    COLUMNS,
    SAMPLE_ROWS,
    SAMPLE_SEED,
    MarketDataError,
    format_csv,
    parse_csv,
    read_csv,
    sample_csv,
)

ROOT = Path(__file__).resolve().parents[2]
HEADER = ",".join(COLUMNS)


def test_the_committed_sample_is_what_the_simulator_writes():
    print(f"sample seed {SAMPLE_SEED}, {SAMPLE_ROWS} rows")
    committed = (ROOT / "data" / "sample_market.csv").read_text(encoding="utf-8")
    assert committed == sample_csv(), "data/sample_market.csv is stale: run python -m nanoquote.sim.market_csv"
    events = read_csv(ROOT / "data" / "sample_market.csv")
    assert events == generate_market(SAMPLE_SEED, SAMPLE_ROWS)
    assert sum(isinstance(e, BookEvent) for e in events) == SAMPLE_ROWS == len(committed.splitlines()) - 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_simulator_stream_round_trips(seed):
    print(f"seed {seed}")
    events = generate_market(seed, 500)
    assert parse_csv(format_csv(events)) == events


def test_rows_with_and_without_trades():
    text = f"{HEADER}\n10,100,125,3,4,,,\n\n20,100,150,3,2,125,4,buy\n20,75,150,1,2,100,3,sell\n"
    assert parse_csv(text) == [
        BookEvent(10, 100, 125, 3, 4),
        TradeEvent(20, 125, 4, Side.BUY), BookEvent(20, 100, 150, 3, 2),
        TradeEvent(20, 100, 3, Side.SELL), BookEvent(20, 75, 150, 1, 2),
    ]
    # columns may come in any order
    reordered = "ask,ts_ns,bid,bid_qty,ask_qty,trade_side,trade_qty,trade_price\n125,10,100,3,4,sell,1,100\n"
    assert parse_csv(reordered) == [TradeEvent(10, 100, 1, Side.SELL), BookEvent(10, 100, 125, 3, 4)]


@pytest.mark.parametrize("body, line, why", [
    ("10,100,125,3,x4,,,", 2, "ask_qty 'x4' is not a whole number"),
    ("10,100,125.5,3,4,,,", 2, "ask '125.5' is not a whole number"),
    ("-10,100,125,3,4,,,", 2, "ts_ns '-10' is not a whole number"),
    ("10,100,125,3,4,,", 2, "7 field(s), the header has 8"),
    ("10,100,125,3,4,,,\n5,100,125,3,4,,,", 3, "ts_ns 5 is before the previous row's 10"),
    ("10,125,125,3,4,,,", 2, "crossed or locked book: bid 125 >= ask 125"),
    ("10,150,125,3,4,,,", 2, "crossed or locked book"),
    ("10,100,130,3,4,,,", 2, "ask 130 is not a multiple of the tick 25"),
    ("10,100,125,0,4,,,", 2, "bid_qty 0 is outside 1..2147483647"),
    ("10,100,125,3,4,125,,buy", 2, "trade_qty empty"),
    ("10,100,125,3,4,125,2,up", 2, "trade_side 'up' is not 'buy' or 'sell'"),
    ("10,100,125,3,4,120,2,buy", 2, "trade_price 120 is not a multiple of the tick 25"),
    ("10,100,125,3,4,125,0,buy", 2, "trade_qty 0 is outside"),
])
def test_a_malformed_row_is_one_error_naming_file_line_and_why(tmp_path, body, line, why):
    path = tmp_path / "bad.csv"
    path.write_text(f"{HEADER}\n{body}\n")
    with pytest.raises(MarketDataError) as info:
        read_csv(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and why in message, message
    error = info.value  # one error, no chained traceback behind it
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


@pytest.mark.parametrize("text, why", [
    ("", "empty file"),
    ("ts_ns,bid,ask,bid_qty,ask_qty\n", ":1: bad header (missing column(s) trade_price, trade_qty, trade_side)"),
    (HEADER + ",extra\n", ":1: bad header (unknown column(s) extra)"),
])
def test_a_bad_header_or_file_is_one_error(tmp_path, text, why):
    path = tmp_path / "head.csv"
    path.write_text(text)
    with pytest.raises(MarketDataError) as info:
        read_csv(path)
    assert str(info.value).startswith(str(path)) and why in str(info.value)


def test_unreadable_and_non_utf8_files(tmp_path):
    with pytest.raises(MarketDataError, match="cannot read"):
        read_csv(tmp_path / "missing.csv")
    path = tmp_path / "latin.csv"
    path.write_bytes(HEADER.encode() + b"\n\xff\n")
    with pytest.raises(MarketDataError, match="not UTF-8"):
        read_csv(path)


def test_the_writer_refuses_a_stream_it_cannot_represent():
    with pytest.raises(ValueError, match="not followed by a book"):
        format_csv([BookEvent(0, 100, 125, 1, 1), TradeEvent(1, 125, 1, Side.BUY)])
    with pytest.raises(ValueError, match="same time"):
        format_csv([TradeEvent(1, 125, 1, Side.BUY), BookEvent(2, 100, 125, 1, 1)])
