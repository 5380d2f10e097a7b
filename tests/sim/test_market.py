"""The market simulator: deterministic for a seed, on the grid, prints consistent with the book."""

from __future__ import annotations

from collections import Counter

import pytest
from nanoquote.host.strategy.orders import Side
from nanoquote.sim.market import BookEvent, MarketConfig, TradeEvent, generate_market, iter_market

SEED = 11
BOOKS = 4000
TICK = 25


@pytest.fixture(scope="module")
def events():
    print(f"market seed {SEED}, {BOOKS} book events")
    return generate_market(SEED, BOOKS)


def test_a_seed_is_one_stream_and_another_seed_another():
    print(f"seeds {SEED}, {SEED + 1}")
    assert generate_market(SEED, 300) == generate_market(SEED, 300)
    assert generate_market(SEED, 300) != generate_market(SEED + 1, 300)
    stream = iter_market(SEED)
    assert [next(stream) for _ in range(50)] == generate_market(SEED, 1000)[:50]


def test_books_are_on_the_grid_with_one_to_four_tick_spreads(events):
    books = [e for e in events if isinstance(e, BookEvent)]
    assert len(books) == BOOKS
    assert isinstance(events[0], BookEvent) and isinstance(events[-1], BookEvent)
    for book in books:
        assert book.bid % TICK == 0 and book.ask % TICK == 0 and book.bid > 0
        assert 1 <= (book.ask - book.bid) // TICK <= 4
        assert book.bid_qty >= 1 and book.ask_qty >= 1
    spreads = Counter((b.ask - b.bid) // TICK for b in books)
    assert set(spreads) == {1, 2, 3, 4} and spreads[1] > BOOKS // 2  # mostly one tick, as in ES
    times = [e.ts_ns for e in events]
    assert times == sorted(times)


def test_every_print_is_at_the_touch_and_followed_by_the_book_it_left(events):
    sweeps = 0
    before = events[0]
    for i, event in enumerate(events[1:], 1):
        if isinstance(event, BookEvent):
            before = event
            continue
        after = events[i + 1]
        assert isinstance(after, BookEvent) and after.ts_ns == event.ts_ns
        assert event.qty >= 1 and event.price % TICK == 0
        if event.side is Side.BUY:  # lifted the ask, at most its displayed size
            assert event.price == before.ask and event.qty <= before.ask_qty
            if event.qty < before.ask_qty:
                assert (after.ask, after.ask_qty) == (before.ask, before.ask_qty - event.qty)
            else:  # the level is gone: the ask moved up
                assert after.ask > before.ask
        else:
            assert event.price == before.bid and event.qty <= before.bid_qty
            if event.qty < before.bid_qty:
                assert (after.bid, after.bid_qty) == (before.bid, before.bid_qty - event.qty)
            else:
                assert after.bid < before.bid
        previous = events[i - 2] if i >= 2 else None
        if isinstance(previous, TradeEvent) and previous.ts_ns == event.ts_ns:
            sweeps += 1  # a second level taken by the same aggressor
            assert previous.side is event.side and previous.price != event.price
    assert sweeps > 0


def test_the_mid_trends_and_jumps(events):
    books = [e for e in events if isinstance(e, BookEvent)]
    mids = [(b.bid + b.ask) / 2 for b in books]
    jumps = sum(abs(b.bid - a.bid) >= 3 * TICK and abs(b.ask - a.ask) >= 3 * TICK
                for a, b in zip(books, books[1:], strict=False))
    assert jumps > 0
    assert max(mids) - min(mids) > 20 * TICK  # regimes with drift carry it away from the start
    trades = [e for e in events if isinstance(e, TradeEvent)]
    assert Counter(t.side for t in trades).keys() == {Side.BUY, Side.SELL}


@pytest.mark.parametrize("field, value", [("tick", 0), ("start_bid", 500_010), ("trade_share", 1.5),
                                          ("mean_gap_ns", -1)])
def test_bad_market_configurations_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        MarketConfig(**{field: value})
