"""Order state survives device faults, contradicting exchanges and bad fills (docs/spec.md §7.5).

Each test reproduces one of the ways the host used to lose track of a live order.
"""

from __future__ import annotations

import pytest
from nanoquote.host.device.bus import BusError, BusTimeout, Resp
from nanoquote.host.device.offload import offloaded_strategy
from nanoquote.host.strategy.anomalies import AnomalyKind
from nanoquote.host.strategy.config import ConfigError, MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.host.strategy.orders import CancelOrder, Fill, NewOrder, OrderState, Side
from nanoquote.host.strategy.quote_manager import EventResult
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.sim.device.software_device import SoftwareDevice
from nanoquote.sim.faulty_bus import AnswerLost, FaultyBus

TICK = 25


class Recording:
    """Counts the writes that reach the device."""

    def __init__(self, bus) -> None:
        self.bus, self.writes = bus, []

    def read32(self, address):
        return self.bus.read32(address)

    def write32(self, address, value, strobe=0xF):
        self.writes.append(address)
        self.bus.write32(address, value, strobe)

    def close(self):
        pass


def _resting_six(strategy):
    actions = strategy.on_market_data(BookUpdate(0, 50000, 50025))
    assert [type(a) for a in actions] == [NewOrder] * 6
    for a in actions:
        assert strategy.on_order_ack(a.id) is EventResult.OK
    return actions


def _timeout_mid_update():
    """Six acked orders; the market moves 40 ticks so the bids must go; LADDER_STATUS times out."""
    device = SoftwareDevice()
    bus = FaultyBus(device)
    strategy = offloaded_strategy(MarketMakerConfig(), bus)
    strategy.arm()
    _resting_six(strategy)
    bus.rule = FaultyBus.timeout_on(device.map["LADDER_STATUS"].address)
    actions = strategy.on_market_data(BookUpdate(1, 50000 + 40 * TICK, 50025 + 40 * TICK))
    return strategy, bus, device, actions


def test_a_device_timeout_mid_update_strands_no_order():
    """Six acked orders; the market moves 40 ticks so the bids must go; LADDER_STATUS times out."""
    strategy, bus, device, actions = _timeout_mid_update()
    assert bus.faults == 1
    # the three far bids it had decided to cancel, then the kill's cancel of every order
    assert [a.id for a in actions[:3]] == [1, 2, 3] and all(isinstance(a, CancelOrder) for a in actions)
    assert sorted({a.id for a in actions}) == [1, 2, 3, 4, 5, 6]
    assert strategy.killed and not strategy.is_ready
    assert device.killed  # the device's own kill switch, reachable again after the timeout
    [fault] = strategy.take_anomalies()
    assert fault.kind is AnomalyKind.DEVICE_FAULT and "[1, 2, 3, 4, 5, 6]" in fault.detail
    assert strategy.possibly_live_orders() == [1, 2, 3, 4, 5, 6]
    # nothing is confirmed gone yet, so a later kill sends every cancel again
    assert [a.id for a in strategy.kill()] == [1, 2, 3, 4, 5, 6]
    for order_id in range(1, 7):
        assert strategy.on_order_cancel(order_id) is EventResult.OK
    assert strategy.possibly_live_orders() == [] and strategy.kill() == []


def test_a_reject_of_an_acked_order_keeps_it():
    strategy = MarketMakerStrategy("mm", 1, MarketMakerConfig())
    strategy.arm()
    strategy.on_market_data(BookUpdate(0, 50000, 50025))
    strategy.on_order_ack(1)
    strategy.kill()
    assert strategy.on_order_reject(1) is EventResult.REJECT_OF_LIVE_ORDER
    assert 1 in strategy.quote_manager and strategy.quote_manager.open_bid_qty == 15
    assert [a.kind for a in strategy.take_anomalies()] == [AnomalyKind.REJECT_OF_LIVE_ORDER]
    # a reject of an order the exchange never accepted removes it, silently
    assert strategy.on_order_reject(2) is EventResult.OK and 2 not in strategy.quote_manager


def test_a_cancel_reject_reopens_and_a_killed_strategy_cancels_again():
    strategy = MarketMakerStrategy("mm", 1, MarketMakerConfig())
    strategy.arm()
    _resting_six(strategy)
    strategy.kill()
    assert strategy.on_cancel_reject(4) is EventResult.OK
    assert strategy.quote_manager.get(4).state is OrderState.PENDING_CANCEL  # sent again at once
    assert strategy.take_actions() == [CancelOrder(4)]
    assert strategy.on_cancel_reject(99) is EventResult.UNKNOWN_ID


def test_a_rejected_configuration_writes_nothing():
    device = SoftwareDevice(max_levels=8)
    device.write32(device.map["CONTROL"].address, device.map["CONTROL"].pack(arm=1))
    bus = Recording(device)
    with pytest.raises(ConfigError, match="num_levels"):
        offloaded_strategy(MarketMakerConfig(max_levels=16, num_levels=12), bus)
    assert bus.writes == [] and device.armed  # no soft reset: still armed, counters kept


@pytest.mark.parametrize("engine", ["golden", "model"])
def test_a_fill_past_the_position_domain_kills_alike_on_every_backend(engine):
    config = MarketMakerConfig()
    strategy = (MarketMakerStrategy("mm", 1, config) if engine == "golden"
                else offloaded_strategy(config, SoftwareDevice()))
    strategy.arm()
    _resting_six(strategy)
    assert strategy.on_fill(Fill(1, Side.BUY, 49975, 40_000)) is EventResult.OVERFILL
    assert strategy.position == 40_000 and strategy.killed
    kinds = [a.kind for a in strategy.take_anomalies()]
    assert kinds == [AnomalyKind.OVERFILL, AnomalyKind.POSITION_LIMIT]
    assert [a.id for a in strategy.take_actions()] == [2, 3, 4, 5, 6]
    assert strategy.on_fill(Fill(2, Side.BUY, 49950, 1)) is EventResult.OK
    assert strategy.take_actions() == []  # only the fill that crossed the limit kills
    # later books cost no device access and quote nothing
    bus = getattr(getattr(strategy.engine, "driver", None), "device", None)
    before = bus.bus.regs.live.copy() if bus is not None else None
    assert strategy.on_market_data(BookUpdate(10**9, 50000, 50025)) == []
    if bus is not None:
        assert bus.bus.regs.live == before and bus.bus.counters["COUNT_UPDATES"] == 1


def test_a_configured_hard_limit_kills_before_the_domain():
    strategy = MarketMakerStrategy("mm", 1, MarketMakerConfig(hard_position_limit=12))
    strategy.arm()
    _resting_six(strategy)
    strategy.on_fill(Fill(1, Side.BUY, 49975, 5))
    strategy.on_fill(Fill(2, Side.BUY, 49950, 5))
    assert not strategy.killed
    strategy.on_fill(Fill(3, Side.BUY, 49925, 5))
    assert strategy.killed and strategy.anomaly_counts["position-limit"] == 1


@pytest.mark.parametrize("fields", [{"max_levels": 64}, {"tick_value": 1e308}, {"tick_value": float("inf")}])
def test_configurations_that_no_backend_can_run_are_refused(fields):
    with pytest.raises(ConfigError, match=next(iter(fields))):
        MarketMakerConfig(**fields)


def test_anomalies_of_a_lying_exchange_are_recorded():
    strategy = MarketMakerStrategy("mm", 1, MarketMakerConfig())
    strategy.arm()
    strategy.on_market_data(BookUpdate(0, 50000, 50025))  # orders 1-6, none acked
    strategy.on_fill(Fill(1, Side.BUY, 49900, 1))  # before its ack, at a price it never had
    strategy.on_order_ack(1)  # late ack after a fill: accepted
    strategy.on_order_ack(1)  # duplicate
    strategy.on_order_ack(77)  # unknown
    strategy.on_fill(Fill(2, Side.SELL, 49950, 1))  # wrong side
    strategy.on_fill(Fill(3, Side.BUY, 49925, 9))  # overfill (and before its ack)
    strategy.on_order_cancel(3)  # late: already gone
    kinds = [a.kind.value for a in strategy.take_anomalies()]
    assert kinds == ["fill-before-ack", "wrong-price", "duplicate", "unknown-id", "wrong-side",
                     "fill-before-ack", "overfill", "finished-order"]
    assert sum(strategy.anomaly_counts.values()) == 8 and strategy.take_anomalies() == []


def test_an_unconfirmed_cancel_is_reported_once_in_book_time():
    strategy = MarketMakerStrategy("mm", 1, MarketMakerConfig(cancel_timeout_ns=1000))
    strategy.arm()
    strategy.on_market_data(BookUpdate(0, 50000, 50025))
    strategy.kill()  # cancels sent at book time 0
    strategy.on_order_cancel(1)
    strategy.on_market_data(BookUpdate(1000, 50000, 50025))
    assert strategy.take_anomalies() == []
    strategy.on_market_data(BookUpdate(1001, 50000, 50025))
    overdue = strategy.take_anomalies()
    assert [(a.kind, a.order_id) for a in overdue] == [(AnomalyKind.CANCEL_TIMEOUT, i) for i in (2, 3, 4, 5, 6)]
    strategy.on_market_data(BookUpdate(5000, 50000, 50025))
    assert strategy.take_anomalies() == []


def test_an_order_size_the_size_limit_always_blocks_is_flagged():
    strategy = MarketMakerStrategy("mm", 1, MarketMakerConfig(order_size=10, max_order_qty=5))
    assert [a.kind for a in strategy.take_anomalies()] == [AnomalyKind.CONFIG_BLOCKS_QUOTING]


def _fail_nth(n, error):
    def rule(op, address, index):
        rule.seen += 1
        return error(op, address) if rule.seen == n else None
    rule.seen = 0
    return rule


@pytest.mark.parametrize("error", [
    lambda op, address: BusTimeout(f"no answer for {address:#x}"),
    lambda op, address: BusError(op, address, Resp.SLVERR),
    lambda op, address: AnswerLost(f"answer for {address:#x} lost"),
], ids=["timeout", "slverr", "answer-lost"])
def test_a_fault_at_any_register_access_of_an_update_loses_nothing(error):
    """An update after a fill writes the inventory, submits the book and reads the ladder:
    failing each of its accesses in turn, every order is still cancelled and the strategy killed."""
    def session(rule):
        device = SoftwareDevice()
        bus = FaultyBus(device)
        strategy = offloaded_strategy(MarketMakerConfig(), bus)
        strategy.arm()
        _resting_six(strategy)
        strategy.on_fill(Fill(1, Side.BUY, 49975, 2))
        bus.rule, bus.accesses = rule, 0
        actions = strategy.on_market_data(BookUpdate(1, 50000 + 40 * TICK, 50025 + 40 * TICK))
        return strategy, bus, device, actions

    _, clean, _, _ = session(None)
    accesses = clean.accesses
    assert accesses >= 10  # inventory, arming, book, poll, ladder
    for n in range(1, accesses + 1):
        strategy, bus, device, actions = session(_fail_nth(n, error))
        where = f"fault at access {n} of {accesses}"
        assert bus.faults == 1, where
        assert strategy.killed and not strategy.is_ready, where
        assert {a.id for a in actions if isinstance(a, CancelOrder)} == {1, 2, 3, 4, 5, 6}, where
        assert not any(isinstance(a, NewOrder) for a in actions), where
        assert [a.kind for a in strategy.take_anomalies()] == [AnomalyKind.DEVICE_FAULT], where
        assert device.killed, where  # the kill switch write comes after the failed access


def test_after_a_device_fault_the_engine_rests_until_rearm():
    """No kill storm: one fault, one kill; later updates neither ask the device nor re-kill."""
    strategy, bus, device, actions = _timeout_mid_update()
    ids = [a.id for a in actions]
    assert sorted(ids) == [1, 2, 3, 4, 5, 6] and len(ids) == len(set(ids))  # each order once
    accesses = bus.accesses
    for ts in range(2, 12):
        assert strategy.on_market_data(BookUpdate(ts, 50000, 50025)) == []
    assert bus.accesses == accesses and strategy.anomaly_counts["device-fault"] == 1
    strategy.rearm()  # re-arms the device, then the engine is asked again
    assert not device.killed and strategy.is_ready
    strategy.on_market_data(BookUpdate(10**9, 50000, 50025))
    assert bus.accesses > accesses


def test_any_engine_failure_still_returns_the_decided_cancels():
    """A book the device's narrower price range cannot take fails in the driver (ValueError)."""
    device = SoftwareDevice(price_bits=20)
    strategy = offloaded_strategy(MarketMakerConfig(), device)
    strategy.arm()
    _resting_six(strategy)
    actions = strategy.on_market_data(BookUpdate(1, 1_100_000, 1_100_025))
    assert sorted(a.id for a in actions) == [1, 2, 3, 4, 5, 6] and strategy.killed
    assert "ValueError" in strategy.take_anomalies()[-1].detail


def test_an_unknown_order_cancel_reject_for_an_order_not_being_cancelled_keeps_it():
    strategy = MarketMakerStrategy("mm", 1, MarketMakerConfig())
    strategy.arm()
    _resting_six(strategy)
    assert strategy.on_cancel_reject(1, unknown_order=True) is EventResult.INVALID_STATE
    assert 1 in strategy.quote_manager
    strategy.kill()
    assert strategy.on_cancel_reject(1, unknown_order=True) is EventResult.OK
    assert 1 not in strategy.quote_manager
