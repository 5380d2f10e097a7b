"""Differential tests over the RTL: the offloaded strategy driven through a simulator
process (Amaranth, Verilator) equals the golden strategy on seeded random sessions."""

import pytest
from nanoquote.host.apps.replay import run_replay
from nanoquote.host.device.driver import QuoteDriver
from nanoquote.host.device.offload import offloaded_strategy
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.sim.device_backends import open_bus
from nanoquote.sim.sessions import session_events

CONFIGS = [
    MarketMakerConfig(refresh_interval_ns=10**6),
    MarketMakerConfig(quote_policy="legacy", base_spread_ticks=3, inventory_skew_factor=1 / 3,
                      max_inventory=9, order_size=2, num_levels=4, tick_size=7, refresh_interval_ns=0),
]


@pytest.mark.parametrize("backend", ["amaranth", pytest.param("verilator", marks=pytest.mark.rtl)])
def test_rtl_backend_matches_golden(backend):
    with open_bus(backend) as bus:
        for index, config in enumerate(CONFIGS):
            seed = 100 + index
            driver = QuoteDriver.open(bus)  # a session may end killed: the operator re-arms
            driver.rearm()
            driver.disarm()
            events = session_events(seed, config, 120)
            golden = list(run_replay(events, lambda c: MarketMakerStrategy("g", 1, c), config, with_state=True))
            offloaded = list(run_replay(events, lambda c: offloaded_strategy(c, bus), config, with_state=True))
            for g, o in zip(golden, offloaded, strict=False):
                assert g == o, f"{backend}, seed {seed}: first difference at event {g['event']}"
            assert len(golden) == len(offloaded)
            assert any(r["type"] == "order" for r in golden)


#: the pre-trade gate binding: the device's size limit; the host's collar and throttle
RISK_CONFIGS = [
    MarketMakerConfig(max_order_qty=4, refresh_interval_ns=0),
    MarketMakerConfig(quote_policy="legacy", collar_ticks=1, max_quote_updates_per_sec=2, refresh_interval_ns=0),
]


@pytest.mark.parametrize("backend", ["amaranth", pytest.param("verilator", marks=pytest.mark.rtl)])
def test_rtl_backend_blocks_and_counts_like_golden(backend):
    """docs/spec.md §8 with the limits binding: identical sessions and identical blocked counts
    (the size limit applied by the gateware, counted in COUNT_SIZE_BLOCKED as well)."""
    with open_bus(backend) as bus:
        for index, config in enumerate(RISK_CONFIGS):
            seed = 200 + index
            driver = QuoteDriver.open(bus)
            driver.rearm()
            driver.disarm()
            events = session_events(seed, config, 120)
            made = {}

            def make(key, build, made=made):
                def factory(c):
                    made[key] = build(c)
                    return made[key]
                return factory

            golden = list(run_replay(events, make("g", lambda c: MarketMakerStrategy("g", 1, c)), config,
                                     with_state=True))
            offloaded = list(run_replay(events, make("o", lambda c: offloaded_strategy(c, bus)), config,
                                        with_state=True))
            assert golden == offloaded, f"{backend}, seed {seed}"
            blocked = made["g"].risk.blocked
            assert blocked == made["o"].risk.blocked and sum(blocked.values()) > 0, blocked
            if config.max_order_qty is not None:
                assert made["o"].engine.driver.counters()["size_blocked"] == blocked["size"] > 0
