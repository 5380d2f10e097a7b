"""The dead-man timer and kill blocking in the software device, the driver and the offloaded
strategy (docs/spec.md §8, §9.4). The software device's clock runs only in a batch's idles,
so the timer is checked to the cycle against ``deadman_cycles`` (the gateware's own test is
tests/hw/gateware/test_kill_deadman.py)."""

from __future__ import annotations

import pytest
from nanoquote.host.device.batch import Idle
from nanoquote.host.device.driver import DeviceKilled, QuoteDriver
from nanoquote.host.device.offload import offloaded_strategy
from nanoquote.host.strategy.config import ConfigError, MarketMakerConfig
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.hw.contract.coefficients import CYCLES_PER_US, deadman_cycles
from nanoquote.hw.gateware.board import BOARD_CLOCK
from nanoquote.sim.device.software_device import SoftwareDevice

BOOK = BookUpdate(10, 100000, 100050)


def _driver(timeout_us: int | None, **device_options) -> tuple[SoftwareDevice, QuoteDriver]:
    device = SoftwareDevice(**device_options)
    driver = QuoteDriver.open(device)
    driver.configure(MarketMakerConfig(deadman_timeout_us=timeout_us, refresh_interval_ns=0))
    return device, driver


def test_policy_defaults_and_range():
    assert MarketMakerConfig().deadman_timeout_us == 1_000_000
    assert MarketMakerConfig(quote_policy="legacy").deadman_timeout_us is None
    assert deadman_cycles(1) == CYCLES_PER_US == 200  # the 200 MHz build clock
    for bad in (0, 1 << 24, 1.5, "1"):
        with pytest.raises(ConfigError, match="deadman_timeout_us"):
            MarketMakerConfig(deadman_timeout_us=bad)


def test_configure_writes_the_timeout_and_reads_it_back():
    device, _ = _driver(7)
    assert device.regs.field("DEADMAN", "deadman_us") == 7
    device, _ = _driver(None)
    assert device.regs.field("DEADMAN", "deadman_us") == 0


@pytest.mark.parametrize("cycles_per_us", [CYCLES_PER_US, BOARD_CLOCK.cycles_per_us])
def test_timer_fires_on_the_cycle_the_timeout_ends(cycles_per_us):
    """At the build's 200 cycles a microsecond (the default) and at the board's 120."""
    device, driver = _driver(2, cycles_per_us=cycles_per_us)
    assert deadman_cycles(2, cycles_per_us) == 2 * cycles_per_us
    driver.arm()
    device.batch([Idle(deadman_cycles(2, cycles_per_us))])
    assert not device.killed
    driver.heartbeat()  # restarts: the cycles before it no longer count
    device.batch([Idle(deadman_cycles(2, cycles_per_us))])
    assert not device.killed  # the timeout has just ended: the latch is set in the next cycle
    device.batch([Idle(1)])
    assert driver.status() == {"armed": 0, "killed": 1, "settled": 1, "has_quoted": 0, "deadman": 1}
    assert driver.errors()["deadman"] == 1
    blocked = driver.quote(BOOK)
    assert blocked.killed and blocked.deadman and not any(blocked.ladder.bids) and not any(blocked.ladder.asks)
    assert driver.counters()["deadman_blocked"] == 1 and driver.counters()["kill_blocked"] == 0
    with pytest.raises(DeviceKilled, match="dead-man"):
        blocked.check_not_killed()
    driver.rearm()
    assert driver.status()["deadman"] == 0 and driver.errors()["deadman"] == 1  # sticky until cleared
    assert any(driver.quote(BOOK).ladder.bids)


def test_cycles_per_us_must_be_a_positive_integer():
    assert SoftwareDevice().cycles_per_us == CYCLES_PER_US
    for bad in (0, -1, 1.5, True, "120"):
        with pytest.raises(ValueError, match="cycles_per_us must be a positive integer"):
            SoftwareDevice(cycles_per_us=bad)


def test_disarmed_or_switched_off_the_timer_never_fires():
    device, driver = _driver(1)
    device.batch([Idle(50_000)])  # disarmed
    assert not device.killed
    device, driver = _driver(None)
    driver.arm()
    device.batch([Idle(50_000)])
    assert not device.killed


def test_every_quote_feeds_the_timer():
    device, driver = _driver(1)
    driver.arm()
    for ts in range(1, 200):  # each quote idles a few cycles and beats: never 200 in a row
        device.batch([Idle(CYCLES_PER_US // 2)])
        assert not driver.quote(BookUpdate(ts, 100000, 100050)).killed


def test_kill_blocks_the_captured_ladder_and_later_ones():
    device, driver = _driver(None)
    driver.arm()
    assert any(driver.quote(BOOK).ladder.bids)
    driver.kill()
    assert driver.device.read_fields("LADDER_MASK") == {"bid_post": 0, "ask_post": 0}
    assert driver.device.read("LADDER_BID0") == 0
    result = driver.quote(BOOK)
    assert result.killed and not result.deadman and not any(result.ladder.bids)
    assert driver.counters()["kill_blocked"] == 1 and driver.counters()["deadman_blocked"] == 0


def test_a_device_that_killed_itself_is_a_device_fault_for_the_strategy():
    """The host misses its heartbeats: the device kills itself; the next update finds a
    blocked ladder while the strategy is armed, so the strategy latches its own kill and
    cancels every order (§7.5)."""
    device = SoftwareDevice()
    config = MarketMakerConfig(deadman_timeout_us=1, refresh_interval_ns=0)
    strategy = offloaded_strategy(config, device)
    strategy.arm()
    orders = strategy.on_market_data(BOOK)
    live = strategy.possibly_live_orders()
    assert orders and live
    device.batch([Idle(deadman_cycles(1) + 1)])
    assert device.killed and device.deadman_killed
    actions = strategy.on_market_data(BookUpdate(20, 100000, 100050))
    assert strategy.killed
    assert all(type(a).__name__ == "CancelOrder" for a in actions)
    assert sorted(a.id for a in actions) == sorted(live)
    kinds = [a.kind for a in strategy.take_anomalies()]
    assert "device-fault" in kinds
