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
