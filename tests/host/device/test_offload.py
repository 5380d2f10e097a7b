"""Differential tests: the offloaded strategy equals the golden one, event for event.

Sessions are seeded random markets with fills, acks, rejects, cancels, kills and
re-arms (``nanoquote.sim.sessions``), run through both policies. The simulator
backends run the same comparison in ``tests/sim/test_offload_on_simulators.py``.
"""

import pytest
from nanoquote.host.apps.replay import run_replay
from nanoquote.host.device.offload import offloaded_strategy
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.sim.device.software_device import SoftwareDevice
from nanoquote.sim.sessions import session_events

CONFIGS = [
    MarketMakerConfig(),
    MarketMakerConfig(quote_policy="legacy"),
    MarketMakerConfig(base_spread_ticks=5, inventory_skew_factor=1 / 3, max_inventory=12, order_size=2,
                      num_levels=8, min_edge_ticks=0, tick_size=7, refresh_interval_ns=10**6),
    MarketMakerConfig(quote_policy="legacy", base_spread_ticks=3, inventory_skew_factor=1, max_inventory=7,
                      order_size=3, num_levels=5, tick_size=1, refresh_interval_ns=0),
    MarketMakerConfig(max_inventory=0),
    MarketMakerConfig(tick_size=65535, base_spread_ticks=255, collar_ticks=None, max_inventory=40),
]


def records(strategy_factory, config, events):
    return list(run_replay(events, strategy_factory, config, with_state=True))


@pytest.mark.parametrize("index", range(len(CONFIGS)))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_model_backend_matches_golden(index, seed):
    config = CONFIGS[index]
    events = session_events(seed, config, 400)
    golden = records(lambda c: MarketMakerStrategy("g", 1, c), config, events)
    device = SoftwareDevice()
    offloaded = records(lambda c: offloaded_strategy(c, device), config, events)
    assert len(golden) > 150
    for g, o in zip(golden, offloaded, strict=False):
        assert g == o, f"seed {seed}, config #{index}: first difference at event {g['event']}"
    assert len(golden) == len(offloaded)
    # The session really quoted (M = 0 never may).
    assert any(r["type"] == "order" for r in golden) == (config.max_inventory > 0)


#: risk limits that bind: the size limit (every level, applied by the device), a tight
#: collar and throttle (applied by the host's gate to the device's ladder)
RISK_CONFIGS = [
    MarketMakerConfig(max_order_qty=4, refresh_interval_ns=10**6),
    MarketMakerConfig(quote_policy="legacy", max_order_qty=4, refresh_interval_ns=0),
    MarketMakerConfig(collar_ticks=2, max_quote_updates_per_sec=3, num_levels=6, refresh_interval_ns=0),
    MarketMakerConfig(quote_policy="legacy", collar_ticks=1, max_order_qty=5, max_quote_updates_per_sec=2,
                      refresh_interval_ns=0),
]


@pytest.mark.parametrize("index", range(len(RISK_CONFIGS)))
def test_risk_gate_blocks_and_counts_alike(index):
    """docs/spec.md §8: golden and offloaded sessions are identical with the limits binding,
    and the gate's blocked counts are the same (the device's size limit included)."""
    config = RISK_CONFIGS[index]
    events = session_events(7, config, 400)
    made = {}

    def factory(key, build):
        def make(c):
            made[key] = build(c)
            return made[key]
        return make

    golden = records(factory("golden", lambda c: MarketMakerStrategy("g", 1, c)), config, events)
    offloaded = records(factory("offload", lambda c: offloaded_strategy(c, SoftwareDevice())), config, events)
    assert golden == offloaded
    blocked = made["golden"].risk.blocked
    assert blocked == made["offload"].risk.blocked
    print(f"config #{index}: blocked {dict(blocked)}")
    if config.max_order_qty is not None and config.order_size > config.max_order_qty:
        assert blocked["size"] > 0 and blocked["collar"] == 0
        # the device counted the same levels (COUNT_SIZE_BLOCKED)
        assert made["offload"].engine.driver.counters()["size_blocked"] == blocked["size"]
    else:
        assert blocked["collar"] > 0 and blocked["throttle"] > 0
