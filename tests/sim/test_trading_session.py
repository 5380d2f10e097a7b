"""Sessions of the golden strategy against the exchange simulator, and the report recomputed.

Invariants are checked against the exchange (the truth) at every entry of the log; the
summary's numbers are recomputed here from the log by other routes than ``summarize``
takes (cash flows instead of average cost, the exchange's message log instead of the
entries, position times mid moves instead of a difference).
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import pytest
from nanoquote.host.device.offload import offloaded_strategy
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.host.strategy.orders import Side
from nanoquote.sim.device.software_device import SoftwareDevice
from nanoquote.sim.exchange import ExchangeConfig
from nanoquote.sim.market import BookEvent, TradeEvent, generate_market
from nanoquote.sim.market_csv import SAMPLE_PATH, SAMPLE_ROWS, SAMPLE_SEED, read_csv
from nanoquote.sim.trading_session import SessionLog, run_trading_session, summarize

SEED = 3
BOOKS = 2000
EXCHANGE = ExchangeConfig()
#: Legacy gates on the filled position only and never cancels, and its prices leave the
#: grid on odd spreads: with a small limit the worst case runs far past it.
LEGACY = MarketMakerConfig(quote_policy="legacy", max_inventory=10)
POLICIES = {"exchange": MarketMakerConfig(), "legacy": LEGACY}


@pytest.fixture(scope="module")
def market():
    print(f"market seed {SEED}, {BOOKS} book events")
    return generate_market(SEED, BOOKS)


@pytest.fixture(scope="module")
def sessions(market):
    out = {}
    for policy, config in POLICIES.items():
        strategy = MarketMakerStrategy(policy, 1, config)
        out[policy] = (strategy, run_trading_session(strategy, market, EXCHANGE))
    return out


def _exposure(entry) -> int:
    buys = sum(r.remaining for r in entry.resting if r.side is Side.BUY)
    sells = sum(r.remaining for r in entry.resting if r.side is Side.SELL)
    return max(entry.true_position + buys, -entry.true_position + sells)


@pytest.mark.parametrize("policy", list(POLICIES))
def test_nothing_rests_that_the_strategy_does_not_track(sessions, policy):
    strategy, log = sessions[policy]
    config = POLICIES[policy]
    assert len(log.entries) > BOOKS and any(e.fills for e in log.entries)
    for entry in log.entries:
        tracked = {o.id for o in entry.ladder}
        untracked = [r.id for r in entry.resting if r.id not in tracked]
        assert not untracked, f"{entry.kind} at {entry.ts_ns}: resting but not tracked {untracked}"
        if policy == "exchange":
            assert _exposure(entry) <= config.max_inventory, entry
    # settled: the strategy believes exactly what the exchange knows
    last = log.entries[-1]
    assert strategy.position == last.true_position == last.position
    assert sorted((o.id, o.remaining) for o in strategy.quote_manager.orders()) == \
        sorted((r.id, r.remaining) for r in last.resting)
    assert dict(strategy.anomaly_counts) == {}


def test_exchange_policy_stays_within_the_limit_and_is_never_rejected(sessions):
    _, log = sessions["exchange"]
    summary = summarize(log, POLICIES["exchange"])
    assert summary["max_exposure"] <= summary["max_inventory"] == 50
    assert summary["rejects"] == {}
    assert summary["cancels"] > 0 and summary["fills"] > 0
    levels = Counter(f.level for e in log.entries for f in e.fills)
    assert set(levels) <= set(range(POLICIES["exchange"].num_levels)) and levels[0] > 0


def test_legacy_overshoots_the_limit_and_sends_off_grid_prices(sessions):
    _, log = sessions["legacy"]
    summary = summarize(log, LEGACY)
    print({k: summary[k] for k in ("max_exposure", "position_min", "position_max", "rejects")})
    assert summary["max_exposure"] > 4 * LEGACY.max_inventory  # orders pile up: never cancelled
    assert summary["position_max"] > LEGACY.max_inventory or summary["position_min"] < -LEGACY.max_inventory
    assert summary["rejects"].get("off-grid", 0) > 100
    assert summary["cancels"] == 0
    off_grid = [m for m in log.messages if m.kind == "new" and m.price % EXCHANGE.tick]
    assert len(off_grid) == summary["rejects"]["off-grid"]


def test_a_seed_is_one_session(market):
    config = POLICIES["exchange"]
    again = run_trading_session(MarketMakerStrategy("again", 1, config), market[:3000], EXCHANGE)
    once = run_trading_session(MarketMakerStrategy("once", 1, config), market[:3000], EXCHANGE)
    assert once.entries == again.entries and once.messages == again.messages


def test_the_runner_takes_an_offloaded_strategy_and_sees_the_same_session(market):
    config = POLICIES["exchange"]
    events = market[:800]
    golden = run_trading_session(MarketMakerStrategy("golden", 1, config), events, EXCHANGE)
    offloaded = run_trading_session(offloaded_strategy(config, SoftwareDevice()), events, EXCHANGE)
    assert offloaded.entries == golden.entries


def _recompute(log: SessionLog, config: MarketMakerConfig) -> dict:
    """The summary's numbers by other routes (see the module docstring)."""
    money = Fraction(config.tick_value) / config.tick_size
    fills = [m for m in log.messages if m.direction == "out" and m.kind == "fill"]
    cash = sum(-m.side.sign * m.price * m.qty for m in fills)
    position = sum(m.side.sign * m.qty for m in fills)
    books = [e.event for e in log.entries if e.kind == "book"]
    last_mid = Fraction(books[-1].bid + books[-1].ask, 2)
    # mids at each fill: the book in effect when the exchange executed it
    book, mids = None, []
    for entry in log.entries:
        if isinstance(entry.event, BookEvent):
            book = entry.event
        for _ in entry.fills:
            mids.append(Fraction(book.bid + book.ask, 2))
    spread = sum(m.side.sign * (mid - m.price) * m.qty for m, mid in zip(fills, mids, strict=True))
    held, inventory = 0, Fraction(0)
    for m, mid, next_mid in zip(fills, mids, mids[1:] + [last_mid], strict=True):
        held += m.side.sign * m.qty
        inventory += held * (next_mid - mid)  # the position after each fill, over the next mid move
    fees = sum(m.fee for m in fills)
    rebates = sum(m.rebate for m in fills)
    assert fees == sum(m.qty for m in fills) * EXCHANGE.fee_per_lot
    assert rebates == sum(m.qty for m in fills) * EXCHANGE.maker_rebate_per_lot
    trading = (cash + position * last_mid) * money  # realized + unrealized, by cash flow
    positions, running = [0], 0
    for entry in log.entries:
        if entry.true_position != running:
            running = entry.true_position
            positions.append(running)
    ins = [m for m in log.messages if m.direction == "in"]
    ordered = [m for m in ins if m.kind == "new"]
    delivered = [e.event for e in log.entries if e.kind in ("reject", "cancel-reject")]
    duration = books[-1].ts_ns - books[0].ts_ns
    quote_updates = sum(1 for e in log.entries if e.kind == "book" and e.sent)
    return {
        "trading": trading, "fees": fees, "rebates": rebates, "net_fees": fees - rebates,
        "total_pnl": trading - fees + rebates, "spread_captured": spread * money,
        "inventory_pnl": inventory * money, "final_position": position,
        "position_min": min(positions), "position_max": max(positions),
        "max_exposure": max(_exposure(e) for e in log.entries),
        "orders": len(ordered), "cancels": sum(m.kind == "cancel" for m in ins),
        "fills": len(fills), "filled_qty": sum(m.qty for m in fills),
        "ordered_qty": sum(m.qty for m in ordered),
        "fill_ratio": Fraction(sum(m.qty for m in fills), sum(m.qty for m in ordered)),
        "rejects": dict(Counter(m.reason for m in delivered if m.kind == "reject")),
        "cancel_rejects": dict(Counter(m.reason for m in delivered if m.kind == "cancel-reject")),
        "quote_updates": quote_updates, "book_events": len(books), "duration_ns": duration,
        "quote_updates_per_sec": Fraction(quote_updates, 1) / Fraction(duration, 10**9),
    }


@pytest.mark.parametrize("policy", list(POLICIES))
def test_the_summary_is_recomputed_from_the_log(sessions, policy):
    strategy, log = sessions[policy]
    config = POLICIES[policy]
    summary = summarize(log, config)
    expected = _recompute(log, config)
    assert summary["realized_pnl"] + summary["unrealized_pnl"] == expected.pop("trading")
    for key, value in expected.items():
        assert summary[key] == value, key
    assert summary["total_pnl"] == summary["spread_captured"] + summary["inventory_pnl"] - summary["net_fees"]
    # the strategy's own accounting (floats, fees as it was told them) agrees on realized P&L
    assert strategy.base.realized_pnl == pytest.approx(float(summary["realized_pnl"] - summary["net_fees"]),
                                                       rel=1e-9, abs=1e-6)
    assert summary["net_fees"] < 0  # the default rebate exceeds the fee: makers are paid


@pytest.mark.parametrize("fill_first", [True, False], ids=["fill-before-cancel", "cancel-before-fill"])
def test_a_cancel_racing_a_fill_through_the_runner(fill_first):
    """A requote cancels the bid at 100000 while a print at 100000 is on its way."""
    config = MarketMakerConfig(num_levels=1, refresh_interval_ns=0)
    exchange = ExchangeConfig(entry_latency_ns=100, ack_latency_ns=10, fill_latency_ns=10,
                              cancel_latency_ns=10)
    print(f"fill first: {fill_first}")
    trade_ts = 2050 if fill_first else 2150  # the cancel sent at 2000 arrives at 2100
    events = [BookEvent(1000, 100_000, 100_050, 1, 1),  # ladder: buy 100000 (id 1), sell 100050 (id 2)
              BookEvent(2000, 100_025, 100_075, 1, 1),  # requote: cancel 1 and 2, buy 100025, sell 100075
              TradeEvent(trade_ts, 100_000, 10, Side.SELL),
              BookEvent(3000, 100_025, 100_075, 1, 1)]
    strategy = MarketMakerStrategy("race", 1, config)
    log = run_trading_session(strategy, events, exchange)
    answers = [(m.kind, m.reason) for m in log.messages if m.direction == "out" and m.order_id == 1]
    filled = {(m.order_id, m.qty) for m in log.messages if m.kind == "fill"}
    if fill_first:
        assert answers == [("ack", None), ("fill", None), ("cancel-reject", "unknown-order")]
        assert filled == {(1, 5)}
    else:  # order 1 is gone; the print trades through the new bid at 100025 instead
        assert answers == [("ack", None), ("cancel", None)]
        assert filled == {(3, 5)}
    assert strategy.position == log.entries[-1].true_position == 5
    assert 1 not in strategy.quote_manager and dict(strategy.anomaly_counts) == {}


def test_market_events_out_of_time_order_are_refused():
    events = [BookEvent(10, 100_000, 100_025, 1, 1), BookEvent(5, 100_000, 100_025, 1, 1)]
    with pytest.raises(ValueError, match="time order"):
        run_trading_session(MarketMakerStrategy("late", 1, MarketMakerConfig()), events)


def test_the_recorded_sample_plays_like_the_simulator_it_came_from():
    print(f"sample seed {SAMPLE_SEED}")
    config = POLICIES["exchange"]
    recorded = run_trading_session(MarketMakerStrategy("csv", 1, config), read_csv(SAMPLE_PATH), EXCHANGE)
    simulated = run_trading_session(MarketMakerStrategy("sim", 1, config),
                                    generate_market(SAMPLE_SEED, SAMPLE_ROWS), EXCHANGE)
    assert summarize(recorded, config) == summarize(simulated, config)
    assert summarize(recorded, config)["book_events"] == SAMPLE_ROWS
