"""What the register map says a register means: commit rules, groups, counters."""

from __future__ import annotations

import dataclasses
from collections import namedtuple

from nanoquote.hw.contract.coefficients import PipelineParams
from nanoquote.hw.contract.regs_cli import build_map
from nanoquote.hw.gateware.layouts import pipeline_config_layout


def test_config_group_is_the_pipeline_configuration():
    """One name per configuration value: register fields, PipelineParams, the pipeline's port."""
    rmap = build_map(12)
    names = list(rmap.fields_of("config"))
    assert sorted(names) == sorted(f.name for f in dataclasses.fields(PipelineParams))
    assert sorted(name for name, _ in pipeline_config_layout(12, 31)) == sorted(names)
    assert dict(pipeline_config_layout(12, 31))["num_levels"].shape.width == 4  # 1..12
    assert list(rmap.fields_of("inventory")) == ["position", "live_bid_qty", "live_ask_qty"]


def test_commit_rules_and_counters_come_from_the_map():
    rmap = build_map(8)
    staged = {r.name: r.reset for r in rmap if r.staged}
    # the reset configuration (tick 0, ...) is refused, field by field
    assert rmap.commit_violations(staged) == [
        "TICK.tick = 0 is outside 1..65535", "SPREAD.base_spread = 0 is outside 1..255",
        "ORDER.order_size = 0 is outside 1..65535", "ORDER.num_levels = 0 is outside 1..8"]
    staged |= {"TICK": 25, "SPREAD": rmap["SPREAD"].pack(base_spread=2),
               "ORDER": rmap["ORDER"].pack(order_size=5, num_levels=9)}
    assert rmap.commit_violations(staged) == ["ORDER.num_levels = 9 is outside 1..8"]
    counters = {r.name: r.counter for r in rmap.group("counters")}
    assert [c.source for c in counters.values()].count("update") == 1
    Lad = namedtuple("Lad", "refresh no_mid crossed bid_count ask_count out_of_domain killed deadman "
                     "size_blocked", defaults=(0, 0, 0))
    Cfg = namedtuple("Cfg", "num_levels")
    lad, cfg = Lad(True, False, False, 2, 4, 3), Cfg(4)
    got = {name.removeprefix("COUNT_"): c.increment(lad, cfg) for name, c in counters.items()}
    assert got == {"UPDATES": 1, "REFRESHES": 1, "LADDERS": 1, "GATED_BID": 1, "GATED_ASK": 0,
                   "OUT_OF_DOMAIN": 3, "CROSSED": 0, "NO_MID": 0, "SIZE_BLOCKED": 0, "KILL_BLOCKED": 0,
                   "DEADMAN_BLOCKED": 0}
    assert got_no_mid(counters, Lad, cfg) == {"GATED_BID": 0, "GATED_ASK": 0, "NO_MID": 1}
    # the size limit counts the levels it blocked (candidates in the price domain) of refreshes
    size = counters["COUNT_SIZE_BLOCKED"]
    assert size.increment(Lad(True, False, False, 2, 4, 3, size_blocked=1), cfg) == 3
    assert size.increment(Lad(False, False, False, 2, 4, 3, size_blocked=1), cfg) == 0
    assert size.increment(Lad(True, False, False, 2, 4, 0, killed=1, size_blocked=1), cfg) == 0
    # a blocked ladder counts under the reason that latched the kill, never both
    for killed, deadman, want in ((1, 0, (1, 0)), (1, 1, (0, 1))):
        lad = Lad(True, False, False, 2, 4, 0, killed, deadman)
        assert (counters["COUNT_KILL_BLOCKED"].increment(lad, cfg),
                counters["COUNT_DEADMAN_BLOCKED"].increment(lad, cfg)) == want


def got_no_mid(counters, Lad, cfg):
    """Without a mid nothing counts as gated, whatever the counts say."""
    lad = Lad(False, True, False, 0, 0, 0)
    return {name.removeprefix("COUNT_"): counters[name].increment(lad, cfg)
            for name in ("COUNT_GATED_BID", "COUNT_GATED_ASK", "COUNT_NO_MID")}
