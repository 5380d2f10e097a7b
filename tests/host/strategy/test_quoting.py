"""Golden quote calculation: the hand-computed cases of the spec and edge rules."""

import pytest
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.domain import PRICE_MAX
from nanoquote.host.strategy.quoting import (
    BookUpdate,
    book_mid,
    build_ladder,
    calculate_quotes,
    gate_levels,
)

LEGACY = MarketMakerConfig(quote_policy="legacy")
EXCHANGE = MarketMakerConfig()


def ladder(config, bid, ask, position, live_bid=0, live_ask=0):
    result = build_ladder(config, BookUpdate(0, bid, ask), position, live_bid, live_ask)
    return [p for _, p in result.posted_bids], [p for _, p in result.posted_asks]


@pytest.mark.parametrize(
    "config, bid, ask, position, bids, asks",
    [
        (LEGACY, 50000, 50025, 0, [49987, 49962, 49937], [50037, 50062, 50087]),
        (LEGACY, 50000, 50050, 50, [], [50025, 50050, 50075]),
        (LEGACY, 50000, 50050, -50, [50025, 50000, 49975], []),
        (EXCHANGE, 50000, 50025, 0, [49975, 49950, 49925], [50050, 50075, 50100]),
        (EXCHANGE, 50000, 50025, 10, [49975, 49950, 49925], [50050, 50075, 50100]),
        (EXCHANGE, 50000, 50025, 30, [49950, 49925, 49900], [50050, 50075, 50100]),
        (EXCHANGE, 50000, 50025, -30, [49975, 49950, 49925], [50075, 50100, 50125]),
        (EXCHANGE, 50000, 50050, 0, [50000, 49975, 49950], [50050, 50075, 50100]),
    ],
)
def test_spec_cases(config, bid, ask, position, bids, asks):
    assert ladder(config, bid, ask, position) == (bids, asks)


def test_no_mid_without_both_sides():
    for bid, ask in ((None, 50025), (50000, None), (None, None)):
        for config in (LEGACY, EXCHANGE):
            assert calculate_quotes(config, BookUpdate(0, bid, ask), 0) is None
            assert ladder(config, bid, ask, 0) == ([], [])


def test_crossed_book_policy():
    crossed = BookUpdate(0, 50050, 50000)
    locked = BookUpdate(0, 50000, 50000)
    assert crossed.crossed and locked.crossed
    assert book_mid(EXCHANGE, crossed) is None and book_mid(EXCHANGE, locked) is None
    # Legacy quotes around the floored mid of a crossed book, as the original did.
    assert book_mid(LEGACY, crossed) == 50025
    assert calculate_quotes(LEGACY, crossed, 0) == (50025 - 25, 50025 + 25)
    result = build_ladder(EXCHANGE, crossed, 0)
    assert result.crossed and result.mid is None


def test_legacy_odd_half_spread_and_truncated_skew():
    c = MarketMakerConfig(quote_policy="legacy", base_spread_ticks=3, tick_size=25)
    # half = trunc(75 / 2) = 37; mid = floor(100025 / 2) = 50012.
    assert calculate_quotes(c, BookUpdate(0, 50000, 50025), 0) == (50012 - 37, 50012 + 37)
    # skew = trunc(-7 * 32768 * 3 / (50 * 65536)) = trunc(-0.21) = 0 (toward zero).
    assert calculate_quotes(c, BookUpdate(0, 50000, 50025), -7) == (50012 - 37, 50012 + 37)
    # -40 lots: trunc(-1.2) = -1 tick: both prices up one tick.
    assert calculate_quotes(c, BookUpdate(0, 50000, 50025), -40) == (50012 - 37 + 25, 50012 + 37 + 25)


def test_position_beyond_limit_is_clamped_for_skew():
    assert calculate_quotes(EXCHANGE, BookUpdate(0, 50000, 50025), 80) == calculate_quotes(
        EXCHANGE, BookUpdate(0, 50000, 50025), 50
    )


def test_zero_max_inventory_never_quotes():
    for policy in ("legacy", "exchange"):
        c = MarketMakerConfig(quote_policy=policy, max_inventory=0)
        assert gate_levels(c, 0, 0, 0) == (0, 0)
        assert ladder(c, 50000, 50025, 0) == ([], [])


def test_exchange_worst_case_gating():
    c = EXCHANGE  # M=50, size 5, N=3
    assert gate_levels(c, 0, 0, 0) == (3, 3)
    assert gate_levels(c, 40, 0, 0) == (2, 3)
    assert gate_levels(c, 40, 5, 0) == (1, 3)
    assert gate_levels(c, 40, 10, 0) == (0, 3)
    assert gate_levels(c, -45, 0, 5) == (3, 0)
    assert gate_levels(c, 60, 0, 0) == (0, 3)
    legacy = LEGACY
    assert gate_levels(legacy, 49, 1000, 1000) == (3, 3)
    assert gate_levels(legacy, 50, 0, 0) == (0, 3)


def test_min_edge_and_post_only():
    # Wide spread: min edge 1 tick from the exact mid holds both sides.
    c = MarketMakerConfig(base_spread_ticks=1, min_edge_ticks=3)
    bid0, ask0 = calculate_quotes(c, BookUpdate(0, 50000, 50100), 0)
    assert (bid0, ask0) == (49975, 50125)
    # Off-grid book: quotes are snapped to the grid.
    bid0, ask0 = calculate_quotes(EXCHANGE, BookUpdate(0, 50003, 50011), 0)
    assert bid0 % 25 == 0 and ask0 % 25 == 0 and bid0 < 50011 and ask0 > 50003


def test_levels_outside_price_domain_are_counted():
    result = build_ladder(EXCHANGE, BookUpdate(0, 1, 30), 0)
    assert result.bids == (None, None, None) and result.out_of_domain == 3
    result = build_ladder(EXCHANGE, BookUpdate(0, PRICE_MAX - 30, PRICE_MAX), 0)
    assert result.asks == (None, None, None) and result.out_of_domain == 3
    # Gated levels are not counted as out of domain.
    result = build_ladder(EXCHANGE, BookUpdate(0, 1, 30), 50)
    assert result.out_of_domain == 0 and result.bid_count == 0
