"""Property tests of the golden strategy (hypothesis, seeded by hypothesis' database)."""

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from nanoquote.host.apps.replay import apply_event
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.host.strategy.quoting import BookUpdate, build_ladder
from nanoquote.sim.sessions import session_events

configs = st.builds(
    MarketMakerConfig,
    base_spread_ticks=st.integers(1, 255),
    inventory_skew_factor=st.sampled_from([0, 1, 0.5, 1 / 3, 0.9]),
    max_inventory=st.integers(0, 200),
    order_size=st.integers(1, 20),
    num_levels=st.integers(1, 8),
    min_edge_ticks=st.integers(0, 5),
    cancel_distance_ticks=st.integers(0, 30),
    tick_size=st.sampled_from([1, 2, 5, 25, 100, 65535]),
    refresh_interval_ns=st.sampled_from([0, 1000, 100_000_000]),
    quote_policy=st.sampled_from(["exchange", "legacy"]),
)
books = st.tuples(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1)).map(sorted)


@example(MarketMakerConfig(quote_policy="legacy", base_spread_ticks=1, tick_size=1), (100, 101), 0, 0, 0)
@given(configs, books, st.integers(-300, 300), st.integers(0, 100), st.integers(0, 100))
@settings(max_examples=400, deadline=None, derandomize=True)
def test_ladder_monotonic_uncrossed_and_on_grid(config, book, position, live_bid, live_ask):
    bid, ask = book
    ladder = build_ladder(config, BookUpdate(0, bid, ask), position, live_bid, live_ask)
    bids = [p for _, p in ladder.posted_bids]
    asks = [p for _, p in ladder.posted_asks]
    assert bids == sorted(bids, reverse=True) and len(set(bids)) == len(bids)
    assert asks == sorted(asks) and len(set(asks)) == len(asks)
    if bids and asks and not config.is_legacy:
        assert max(bids) < min(asks)
    if not config.is_legacy:
        t = config.tick_size
        assert all(p % t == 0 for p in bids + asks)
        # Post-only: never at or through the opposite best.
        assert all(p < ask for p in bids) and all(p > bid for p in asks)
    elif bids and asks:
        # Legacy never inverts; with B*T == 1 its half spread truncates to 0 and locks.
        assert max(bids) <= min(asks)


@given(configs.filter(lambda c: not c.is_legacy), st.integers(0, 2**32), st.integers(50, 400))
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
def test_worst_case_invariant_and_totals_under_random_sessions(config, seed, steps):
    strategy = MarketMakerStrategy("p", 1, config)
    m = config.max_inventory
    for event in session_events(seed, config, steps)[1:]:
        apply_event(strategy, event)
        qm = strategy.quote_manager
        bids, asks = qm.bid_orders, qm.ask_orders
        assert qm.open_bid_qty == sum(o.remaining for o in bids), f"seed {seed}"
        assert qm.open_ask_qty == sum(o.remaining for o in asks), f"seed {seed}"
        assert strategy.position + qm.open_bid_qty <= m, f"seed {seed}"
        assert strategy.position - qm.open_ask_qty >= -m, f"seed {seed}"
        assert qm.error_count == sum(qm.error_counts.values())


@given(configs.filter(lambda c: c.is_legacy), st.integers(0, 2**32))
@settings(max_examples=30, deadline=None, derandomize=True)
def test_legacy_sessions_keep_totals(config, seed):
    strategy = MarketMakerStrategy("p", 1, config)
    for event in session_events(seed, config, 150)[1:]:
        apply_event(strategy, event)
        qm = strategy.quote_manager
        assert qm.open_bid_qty == sum(o.remaining for o in qm.bid_orders), f"seed {seed}"
        assert qm.open_ask_qty == sum(o.remaining for o in qm.ask_orders), f"seed {seed}"
