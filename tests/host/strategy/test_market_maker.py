"""MarketMakerStrategy: event loop, arming, kill switch, refresh, requote, cancels, risk."""

import pytest
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import EventError, KillSwitchLatched, MarketMakerStrategy
from nanoquote.host.strategy.orders import CancelOrder, Fill, NewOrder, Side
from nanoquote.host.strategy.quote_manager import EventResult
from nanoquote.host.strategy.quoting import BookUpdate

S = 100_000_000  # the default refresh interval


def make(**fields):
    strategy = MarketMakerStrategy("mm", 7, MarketMakerConfig(**fields))
    strategy.arm()
    return strategy


def prices(actions, side):
    return [a.price for a in actions if isinstance(a, NewOrder) and a.side is side]


def test_not_ready_until_armed():
    s = MarketMakerStrategy("mm", 7, MarketMakerConfig())
    assert s.on_market_data(BookUpdate(0, 50000, 50025)) == []
    assert s.last_quote_time is None and s.fair_value is None
    s.arm()
    actions = s.on_market_data(BookUpdate(1, 50000, 50025))
    assert [a.id for a in actions] == [1, 2, 3, 4, 5, 6]
    assert prices(actions, Side.BUY) == [49975, 49950, 49925]
    assert s.fair_value == 50012 and s.last_quote_time == 1


def test_exchange_requote_keeps_unchanged_orders():
    s = make()
    first = s.on_market_data(BookUpdate(0, 50000, 50025))
    for a in first:
        s.on_order_ack(a.id)
    assert s.on_market_data(BookUpdate(S // 2, 50000, 50025)) == []  # not yet due
    # Market moves up one tick: one level changes on each side, the rest are kept.
    actions = s.on_market_data(BookUpdate(S, 50025, 50050))
    # bids 49975/49950/49925 -> 50000/49975/49950; asks 50050/50075/50100 -> 50075/50100/50125
    assert actions == [CancelOrder(3), CancelOrder(4), NewOrder(7, Side.BUY, 50000, 5),
                       NewOrder(8, Side.SELL, 50125, 5)]
    assert s.on_market_data(BookUpdate(2 * S, 50025, 50050)) == []  # same ladder: no churn


def test_legacy_refresh_adds_full_ladder_and_starts_at_zero():
    s = make(quote_policy="legacy")
    assert s.on_market_data(BookUpdate(S - 1, 50000, 50025)) == []  # ts < interval
    assert len(s.on_market_data(BookUpdate(S, 50000, 50025))) == 6
    assert len(s.on_market_data(BookUpdate(2 * S, 50000, 50025))) == 6
    assert len(s.quote_manager) == 12 and s.quote_manager.open_bid_qty == 30


def test_time_going_backwards_never_refreshes():
    s = make()
    s.on_market_data(BookUpdate(10 * S, 50000, 50025))
    assert s.on_market_data(BookUpdate(5 * S, 50100, 50125)) == []
    assert not s.should_refresh_quotes(5 * S) and s.should_refresh_quotes(11 * S)


def test_no_mid_does_not_touch_timer_or_fair_value():
    s = make()
    s.on_market_data(BookUpdate(0, None, 50025))
    s.on_market_data(BookUpdate(1, 50025, 50000))  # crossed: treated as no mid
    assert s.last_quote_time is None and s.fair_value is None
    assert s.counters["crossed_books"] == 1


def test_generate_cancels_by_distance():
    s = make(cancel_distance_ticks=2)
    s.on_market_data(BookUpdate(0, 50000, 50025))
    # Best bid jumps 5 ticks up: bids 49975/49950/49925 are 3, 4, 5 ticks behind it.
    actions = s.generate_cancels(BookUpdate(1, 50100, 50200))
    assert actions == [CancelOrder(1), CancelOrder(2), CancelOrder(3)]
    # Asks more than 2 ticks above best ask 50025: 50100 (3 ticks) only.
    actions = s.generate_cancels(BookUpdate(1, 50000, 50025))
    assert actions == [CancelOrder(6)]


def test_kill_switch_latches_and_cancels_everything():
    s = make()
    s.on_market_data(BookUpdate(0, 50000, 50025))
    actions = s.kill()
    assert sorted(a.id for a in actions) == [1, 2, 3, 4, 5, 6]
    assert all(isinstance(a, CancelOrder) for a in actions)
    # a second kill sends every cancel not yet confirmed again (pending-cancel included)
    assert s.kill() == [CancelOrder(i) for i in (1, 2, 3, 4, 5, 6)]
    assert s.on_market_data(BookUpdate(5 * S, 50000, 50025)) == []
    with pytest.raises(KillSwitchLatched):
        s.arm()
    s.rearm()
    assert s.is_ready
    # Pending-cancel orders are not kept by a requote but still count as live for gating.
    actions = s.on_market_data(BookUpdate(6 * S, 50000, 50025))
    assert [a.id for a in actions] == [7, 8, 9, 10, 11, 12]
    assert s.quote_manager.open_bid_qty == 30


def test_disarm_stops_quoting_but_leaves_orders():
    s = make()
    s.on_market_data(BookUpdate(0, 50000, 50025))
    s.disarm()
    assert s.on_market_data(BookUpdate(S, 50100, 50125)) == []
    assert len(s.quote_manager) == 6


def test_fill_moves_position_even_for_unknown_id():
    s = make()
    assert s.on_fill(Fill(99, Side.SELL, 50000, 2)) is EventResult.UNKNOWN_ID
    assert s.position == -2 and s.quote_manager.error_count == 1


def test_gating_counts_live_orders():
    s = make(max_inventory=10)  # size 5: two bid levels at most with nothing live
    actions = s.on_market_data(BookUpdate(0, 50000, 50025))
    assert len(prices(actions, Side.BUY)) == 2 and len(prices(actions, Side.SELL)) == 2
    s.on_fill(Fill(1, Side.BUY, 49975, 5))
    # position 5 + live bid 5: no room for any bid level: the live bid is cancelled.
    actions = s.on_market_data(BookUpdate(S, 50000, 50025))
    assert CancelOrder(2) in actions and prices(actions, Side.BUY) == []


def test_risk_collar_size_and_throttle_are_counted():
    s = make(collar_ticks=1)
    actions = s.on_market_data(BookUpdate(0, 50000, 50025))
    # Exact mid 50012.5: 49975 is 1.5 ticks away -> every level blocked.
    assert actions == [] and s.risk.blocked["collar"] == 6
    s = make(order_size=10, max_order_qty=5)
    assert s.on_market_data(BookUpdate(0, 50000, 50025)) == [] and s.risk.blocked["size"] == 6
    s = make(max_quote_updates_per_sec=2, refresh_interval_ns=0)
    for ts in range(4):
        s.on_market_data(BookUpdate(ts, 50000 + 25 * ts, 50025 + 25 * ts))
    assert s.risk.blocked["throttle"] == 2
    assert s.on_market_data(BookUpdate(10**9, 51000, 51025)) != []  # next window


def test_bad_events_raise_and_change_nothing():
    s = make()
    with pytest.raises(EventError, match="best_bid"):
        s.on_market_data(BookUpdate(0, 0, 50025))
    with pytest.raises(EventError, match="ts"):
        s.on_market_data(BookUpdate(-1, 50000, 50025))
    with pytest.raises(EventError, match="qty"):
        s.on_fill(Fill(1, Side.BUY, 50000, 0))
    with pytest.raises(EventError, match="fee"):
        s.on_fill(Fill(1, Side.BUY, 50000, 1, fee=float("nan")))
    assert s.position == 0 and s.last_quote_time is None and len(s.quote_manager) == 0


def test_tick_value_argument_overrides_config():
    s = MarketMakerStrategy("mm", 1, MarketMakerConfig(), tick_value=50.0)
    assert s.config.tick_value == 50.0 and s.base.tick_value == 50.0
    assert s.name == "mm" and s.quotes is s.quote_manager
    with pytest.raises(TypeError):
        MarketMakerStrategy("mm", 1, {"num_levels": 3})


def test_calculate_quotes_uses_position():
    s = make()
    s.on_fill(Fill(1, Side.BUY, 50000, 30))
    assert s.calculate_quotes(BookUpdate(0, 50000, 50025)) == (49950, 50050)


def test_refresh_clock_reset_restores_policy_start():
    from nanoquote.host.strategy.refresh import RefreshClock
    legacy, exchange = RefreshClock(10, legacy=True), RefreshClock(10, legacy=False)
    legacy.mark(50)
    exchange.mark(50)
    legacy.reset()
    exchange.reset()
    assert legacy.last_quote_time == 0 and not legacy.due(9) and legacy.due(10)
    assert exchange.last_quote_time is None and exchange.due(0)
