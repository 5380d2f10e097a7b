"""QuotePipeline in the Amaranth simulator (the fast gateware tier), against the golden model.

Random scenarios run with idle cycles on ``i`` and back-pressure on ``o``; directed
tests check II=1 and ``LATENCY``, a port change followed at once by an update, the
refresh rule on hand-computed timestamps and that reset clears the refresh state.
"""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.hw.contract.coefficients import PipelineParams
from nanoquote.hw.contract.widths import DatapathWidths
from nanoquote.hw.gateware.pipeline import QuotePipeline
from nanoquote.sim.conformance.amaranth_runner import Handshake, run_amaranth
from nanoquote.sim.conformance.reference import SpecRefreshClock, golden_ladder
from nanoquote.sim.conformance.scenario import GoldenRows, Scoreboard, Segment, expect
from nanoquote.sim.conformance.vectors import random_scenario
from nanoquote.sim.port_codec import PortCodec

PMAX = (1 << 31) - 1


@pytest.mark.parametrize(("policy", "levels", "seed", "idle", "stall"), [
    ("exchange", 8, 21, 0.2, 0.3),
    ("legacy", 8, 22, 0.3, 0.5),
    ("exchange", 3, 23, 0.0, 0.0),
])
def test_pipeline_matches_golden(policy: str, levels: int, seed: int, idle: float,
                                 stall: float) -> None:
    print(f"seed {seed}")
    rng = random.Random(seed)
    segments = random_scenario(rng, policy, 700, levels, 31, segment_size=(5, 120))
    exp = expect(segments, DatapathWidths(levels))
    assert not exp.model_mismatches
    outputs, _ = run_amaranth(segments, levels, 31, Handshake(idle, stall, seed))
    board = Scoreboard(exp.golden, PortCodec(levels, 31))
    for raw in outputs:
        board.push(raw)
    board.finish()
    assert board.mismatches == 0, f"seed {seed}: " + " | ".join(board.reports)


# -- directed tests ----------------------------------------------------------------------


class _Harness:
    """Drives one pipeline cycle by cycle and records handshakes (o.ready held high)."""

    def __init__(self, dut: QuotePipeline, codec: PortCodec, ctx) -> None:
        self.dut, self.codec, self.ctx = dut, codec, ctx
        self.cycle = 0
        self.accepted: list[int] = []  # cycle of each accepted update
        self.outputs: list[tuple[int, int]] = []  # (cycle, raw) of each ladder taken

    def set_ports(self, config: MarketMakerConfig, position: int, armed: bool = True,
                  live_bid: int = 0, live_ask: int = 0) -> None:
        from nanoquote.hw.contract.coefficients import PipelineParams

        ctx, dut = self.ctx, self.dut
        ctx.set(dut.cfg.as_value(), self.codec.config(PipelineParams.from_config(config)))
        ctx.set(dut.position, position)
        ctx.set(dut.live_bid_qty, live_bid)
        ctx.set(dut.live_ask_qty, live_ask)
        ctx.set(dut.armed, armed)

    async def tick(self, offer: int | None = None) -> bool:
        ctx, dut = self.ctx, self.dut
        ctx.set(dut.i.valid, offer is not None)
        if offer is not None:
            ctx.set(dut.i.payload.as_value(), offer)
        ctx.set(dut.o.ready, 1)
        accepted = offer is not None and bool(ctx.get(dut.i.ready))
        if accepted:
            self.accepted.append(self.cycle)
        if ctx.get(dut.o.valid):
            self.outputs.append((self.cycle, ctx.get(dut.o.payload.as_value())))
        await ctx.tick()
        self.cycle += 1
        return accepted

    async def send(self, raw: int, limit: int = 200) -> int:
        """Offer ``raw`` until accepted; returns the cycle it was accepted in."""
        for _ in range(limit):
            if await self.tick(raw):
                return self.accepted[-1]
        raise AssertionError("update never accepted")

    async def wait_settled(self, limit: int = 200) -> int:
        """Idle until ``settled``; the first idle cycle lets S1 see a port change."""
        for n in range(1, limit):
            await self.tick()
            if self.ctx.get(self.dut.settled):
                return n
        raise AssertionError("pipeline never settled")

    async def drain(self, count: int, limit: int = 200) -> None:
        for _ in range(limit):
            if len(self.outputs) >= count:
                return
            await self.tick()
        raise AssertionError(f"only {len(self.outputs)} of {count} ladders came out")


def _run(dut, bench, domain_reset: list | None = None) -> None:
    """Simulate ``bench(ctx)``; with ``domain_reset`` given, the dut sits in a wrapper whose
    sync reset is exposed as ``domain_reset[0]``."""
    if domain_reset is None:
        top = dut
    else:
        top = Module()
        top.domains.sync = cd = ClockDomain("sync")
        top.submodules.dut = dut
        domain_reset.append(cd.rst)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def _book(codec: PortCodec, ts: int, bid: int | None, ask: int | None) -> int:
    return codec.updates(np.array([ts], dtype=np.uint64), np.array([bid or 0]),
                         np.array([ask or 0]), np.array([bid is not None]),
                         np.array([ask is not None]))[0]


def _golden_raw(codec, config, book, position, refresh) -> int:
    g = golden_ladder(config, book, position, 0, 0, codec.max_levels, PMAX)
    return codec.ladders(GoldenRows([g]), np.array([book.ts], dtype=np.uint64),
                         np.array([refresh]))[0]


def test_one_update_per_clock_and_fixed_latency() -> None:
    dut = QuotePipeline()
    codec = PortCodec(8, 31)
    config = MarketMakerConfig(num_levels=8)
    books = [BookUpdate(1000 + k, 100_000 + 25 * (k % 7), 100_050 + 25 * (k % 5)) for k in range(30)]
    seen: dict[str, object] = {}

    async def bench(ctx) -> None:
        h = _Harness(dut, codec, ctx)
        h.set_ports(config, 7)
        seen["settle"] = await h.wait_settled()
        for b in books:
            await h.send(_book(codec, b.ts, b.best_bid, b.best_ask), limit=1)
        await h.drain(len(books))
        seen["h"] = h

    _run(dut, bench)
    h = seen["h"]
    assert isinstance(h, _Harness)
    assert h.accepted == list(range(h.accepted[0], h.accepted[0] + len(books)))  # II = 1
    out_cycles = [c for c, _ in h.outputs]
    assert out_cycles == [c + QuotePipeline.LATENCY for c in h.accepted]
    assert dut.settle_cycles <= seen["settle"] <= dut.settle_cycles + 3
    clock = SpecRefreshClock()
    for (_, raw), b in zip(h.outputs, books, strict=True):
        refresh = clock.decide(config, True, True, b.ts)
        assert codec.decode(raw) == codec.decode(_golden_raw(codec, config, b, 7, refresh))


def test_a_stopped_consumer_fills_the_stages_then_ready_drops() -> None:
    dut = QuotePipeline()
    codec = PortCodec(8, 31)
    config = MarketMakerConfig(num_levels=8)
    books = [BookUpdate(500 + k, 100_000 + 25 * k, 100_050 + 25 * k) for k in range(QuotePipeline.LATENCY + 4)]
    seen: dict[str, object] = {"accepted": [], "out": []}

    async def bench(ctx) -> None:
        h = _Harness(dut, codec, ctx)
        h.set_ports(config, 0)
        await h.wait_settled()
        ctx.set(dut.o.ready, 0)
        pending = list(books)
        for _ in range(40):  # offer every cycle, take nothing
            ctx.set(dut.i.valid, bool(pending))
            if pending:
                ctx.set(dut.i.payload.as_value(), _book(codec, pending[0].ts, pending[0].best_bid, pending[0].best_ask))
                if ctx.get(dut.i.ready):
                    seen["accepted"].append(pending.pop(0).ts)
            await ctx.tick()
        seen["held"] = len(seen["accepted"])
        ctx.set(dut.o.ready, 1)  # i.ready follows o.ready within the cycle
        for _ in range(60):  # now take everything, one ladder per cycle
            ctx.set(dut.i.valid, bool(pending))
            if pending:
                ctx.set(dut.i.payload.as_value(), _book(codec, pending[0].ts, pending[0].best_bid, pending[0].best_ask))
                if ctx.get(dut.i.ready):
                    seen["accepted"].append(pending.pop(0).ts)
            if ctx.get(dut.o.valid):
                seen["out"].append(ctx.get(dut.o.payload.as_value()))
            await ctx.tick()

    _run(dut, bench)
    assert seen["held"] == QuotePipeline.LATENCY  # one per stage
    assert seen["accepted"] == [b.ts for b in books]
    clock = SpecRefreshClock()
    want = [codec.decode(_golden_raw(codec, config, b, 0, clock.decide(config, True, True, b.ts))) for b in books]
    assert [codec.decode(raw) for raw in seen["out"]] == want  # all of them, in order, once


@pytest.mark.parametrize("change", ["position", "live_bid", "config"])
def test_port_change_then_immediate_update_sees_new_value(change: str) -> None:
    dut = QuotePipeline()
    codec = PortCodec(8, 31)
    old_cfg = MarketMakerConfig(num_levels=4, max_inventory=50, order_size=5)
    new_cfg = old_cfg.replace(base_spread_ticks=5) if change == "config" else old_cfg
    old_pos, new_pos = 0, (40 if change == "position" else 0)
    new_live = 40 if change == "live_bid" else 0  # 2 bid levels left instead of 4
    first = BookUpdate(10, 100_000, 100_050)
    second = BookUpdate(11, 100_000, 100_050)
    seen: dict[str, object] = {}

    async def bench(ctx) -> None:
        h = _Harness(dut, codec, ctx)
        h.set_ports(old_cfg, old_pos)
        await h.wait_settled()
        await h.send(_book(codec, first.ts, first.best_bid, first.best_ask), limit=1)
        # same cycle: new port value and the next update
        h.set_ports(new_cfg, new_pos, live_bid=new_live)
        await h.send(_book(codec, second.ts, second.best_bid, second.best_ask))
        await h.drain(2)
        seen["h"] = h

    _run(dut, bench)
    h = seen["h"]
    assert isinstance(h, _Harness)
    # offered in the very cycle of the change, it is accepted once the new coefficients
    # are in use, and then takes the usual latency
    assert h.accepted[1] >= h.accepted[0] + 1 + dut.settle_cycles
    assert h.outputs[1][0] - h.accepted[1] == QuotePipeline.LATENCY
    got_first, got_second = (codec.decode(raw) for _, raw in h.outputs)
    exp_first = golden_ladder(old_cfg, first, old_pos, 0, 0, 8, PMAX)
    exp_second = golden_ladder(new_cfg, second, new_pos, new_live, 0, 8, PMAX)
    stale = golden_ladder(old_cfg, second, old_pos, 0, 0, 8, PMAX)
    assert (got_first.bid_price, got_first.ask_price) == (exp_first.bid_price, exp_first.ask_price)
    assert (got_second.bid_price, got_second.ask_price, got_second.bid_count) == (
        exp_second.bid_price, exp_second.ask_price, exp_second.bid_count)
    assert (stale.bid_price, stale.ask_price, stale.bid_count) != (
        exp_second.bid_price, exp_second.ask_price, exp_second.bid_count)  # the test can fail


def _refresh_bits(config: MarketMakerConfig, steps: list[tuple[int, bool, bool]],
                  reset_before: int | None = None) -> list[bool]:
    """Refresh flags for updates (ts, armed, has_mid), optionally resetting the pipeline
    before update ``reset_before``."""
    dut = QuotePipeline(max_levels=2)
    codec = PortCodec(2, 31)
    rst: list = []
    flags: list[bool] = []

    async def bench(ctx) -> None:
        h = _Harness(dut, codec, ctx)
        h.set_ports(config, 0)
        await h.wait_settled()
        for k, (ts, armed, has_mid) in enumerate(steps):
            if k == reset_before:
                await h.drain(k)
                ctx.set(rst[0], 1)
                await ctx.tick()
                ctx.set(rst[0], 0)
                h.set_ports(config, 0)
                await h.wait_settled()
            ctx.set(dut.armed, armed)
            await h.send(_book(codec, ts, 1000, 1010 if has_mid else None))
        await h.drain(len(steps))
        flags.extend(codec.decode(raw).refresh for _, raw in h.outputs)

    _run(dut, bench, domain_reset=rst)
    return flags


def test_refresh_legacy_starts_at_zero_and_ignores_backwards_time() -> None:
    cfg = MarketMakerConfig(quote_policy="legacy", refresh_interval_ns=100, num_levels=2,
                            max_levels=2)
    steps = [(50, True, True), (100, True, True), (150, True, True), (120, True, True),
             (199, True, True), (200, True, True)]
    assert _refresh_bits(cfg, steps) == [False, True, False, False, False, True]


def test_refresh_exchange_first_mid_disarmed_and_reset() -> None:
    cfg = MarketMakerConfig(refresh_interval_ns=100, num_levels=2, max_levels=2)
    steps = [(5, True, False),  # no mid: nothing
             (6, False, True),  # disarmed: nothing
             (7, True, True),  # first update with a mid: refresh
             (50, True, True), (106, True, True),  # 43, 99 elapsed: nothing
             (60, True, True),  # reset before this one: first update again
             (70, True, True)]
    assert _refresh_bits(cfg, steps, reset_before=5) == [
        False, False, True, False, False, True, False]
    assert _refresh_bits(cfg, steps) == [False, False, True, False, False, False, False]


def test_nothing_posted_before_configuration() -> None:
    """Out of reset the ports are zero (max_inventory 0): the ladder is empty."""
    dut = QuotePipeline(max_levels=2)
    codec = PortCodec(2, 31)
    got: list = []

    async def bench(ctx) -> None:
        h = _Harness(dut, codec, ctx)
        assert not ctx.get(dut.i.ready)  # settling right after reset
        await h.wait_settled()
        ctx.set(dut.armed, 1)
        await h.send(_book(codec, 1, 1000, 1010))
        await h.drain(1)
        got.append(codec.decode(h.outputs[0][1]))

    _run(dut, bench)
    assert got[0].bid_post == got[0].ask_post == 0 and got[0].bid_count == 0


# -- corners random books almost never reach ----------------------------------------------


def _sum_book(p: int, ts: int = 0) -> BookUpdate:
    """A book with ``bid + ask = p``, both in the price domain: uncrossed when ``3 <= p <
    2*PMAX`` (exchange quotes nothing else), else locked (legacy quotes it)."""
    bid = (p - 1) // 2 if 3 <= p < 2 * PMAX else p // 2
    return BookUpdate(ts, bid, p - bid)


def _sweep_segment(config: MarketMakerConfig, position: int, sums: list[int], ts0: int) -> Segment:
    """One update per ``P = bid + ask`` in ``sums``, armed, no live quantity."""
    books = [_sum_book(p) for p in sums]
    n = len(books)
    return Segment(config, position, 0, 0, True, np.arange(ts0, ts0 + n, dtype=np.uint64),
                   np.array([b.best_bid for b in books], dtype=np.int64),
                   np.array([b.best_ask for b in books], dtype=np.int64),
                   np.ones(n, dtype=bool), np.ones(n, dtype=bool))


def _window_bounds(config: MarketMakerConfig, position: int, levels: int) -> list[tuple[int, str, bool]]:
    """``(P, side, at the bottom)`` for every ``P`` near either end of the price domain at
    which the golden ladder posts a side differently from ``P - 1``: a window bound."""
    span = 2 * config.tick_size * (levels + config.base_spread_ticks + config.min_edge_ticks + 4)
    ends = ((True, range(3, span)),
            (False, range(2 * PMAX - span, 2 * PMAX + (1 if config.is_legacy else 0))))
    bounds = []
    for bottom, sums in ends:
        prev = None
        for p in sums:
            lad = golden_ladder(config, _sum_book(p), position, 0, 0, levels, PMAX)
            if prev is not None:
                bounds += [(p, "bid", bottom)] if lad.bid_post != prev.bid_post else []
                bounds += [(p, "ask", bottom)] if lad.ask_post != prev.ask_post else []
            prev = lad
    return bounds


def _play(segments: list[Segment], levels: int, seed: int) -> None:
    """The pipeline (with back-pressure seeded by ``seed``) against golden on ``segments``."""
    print(f"seed {seed}")
    exp = expect(segments, DatapathWidths(levels))
    assert not exp.model_mismatches, f"model differs from golden at {exp.model_mismatches[:5]}"
    outputs, _ = run_amaranth(segments, levels, 31, Handshake(0.0, 0.2, seed))
    board = Scoreboard(exp.golden, PortCodec(levels, 31))
    for raw in outputs:
        board.push(raw)
    board.finish()
    assert board.mismatches == 0, f"seed {seed}: " + " | ".join(board.reports)


#: build levels -> (config, position): together they put a window bound of each side at
#: each end of the price domain (exchange bids can only leave it at the bottom, asks only at
#: the top; legacy, skewed, reaches the other two)
WINDOW_CASES = {
    12: [  # counts of 9..12 need the third 4-bit popcount chunk
        (MarketMakerConfig(num_levels=12, max_levels=12, tick_size=3, base_spread_ticks=2, min_edge_ticks=1,
                           inventory_skew_factor=1.0, max_inventory=100, order_size=5), 7),
        (MarketMakerConfig(quote_policy="legacy", num_levels=12, max_levels=12, tick_size=3, base_spread_ticks=3,
                           inventory_skew_factor=1.0, max_inventory=11, order_size=1), 10),
    ],
    8: [
        (MarketMakerConfig(num_levels=8, tick_size=25, base_spread_ticks=2, min_edge_ticks=0,
                           inventory_skew_factor=0.5, max_inventory=50, order_size=5), -20),
        # long: the legacy asks start below the mid, so they leave the domain at the bottom too
        (MarketMakerConfig(quote_policy="legacy", num_levels=8, tick_size=25, base_spread_ticks=3,
                           inventory_skew_factor=1.0, max_inventory=11, order_size=1), 10),
        # short: the legacy bids start above the mid, so they leave the domain at the top too,
        # where 5 asks are out already (out-of-domain counts 5 + 1: an adder, not an or)
        (MarketMakerConfig(quote_policy="legacy", num_levels=5, tick_size=7, base_spread_ticks=3,
                           inventory_skew_factor=1.0, max_inventory=11, order_size=1), -10),
    ],
}


@pytest.mark.parametrize("levels", sorted(WINDOW_CASES))
def test_books_on_every_price_domain_window_bound(levels: int) -> None:
    """``P`` exactly on each level's window bound, and either side of it (docs/pipeline.md,
    "price-domain windows on P"), in both policies, at both ends of the price domain."""
    segments, ts, reached = [], 1000, set()
    for config, position in WINDOW_CASES[levels]:
        bounds = _window_bounds(config, position, levels)
        top = 2 * PMAX if config.is_legacy else 2 * PMAX - 1  # bid, ask <= PMAX (and uncrossed)
        sums = sorted({q for p, _, _ in bounds for q in (p - 1, p, p + 1) if q <= top})
        segments.append(_sweep_segment(config, position, sums, ts))
        ts += len(sums)
        reached |= {(side, bottom, config.is_legacy) for _, side, bottom in bounds}
    want = {("bid", True, False), ("ask", False, False)}  # exchange
    if levels == 8:
        want |= {(side, bottom, True) for side in ("bid", "ask") for bottom in (True, False)}
    assert want <= reached, f"window bounds not reached: {want - reached}"
    _play(segments, levels, 31 + levels)


def test_skew_exactness_at_a_large_position() -> None:
    """``a*c`` an integer with ``t mod 2**47 = a*eps`` above 2**14 (docs/datapath.md, "the skew
    coefficient"): M = 32767, T = 7, B = 1, f = 1 and position 18724 give w = 8 exactly."""
    config = MarketMakerConfig(max_inventory=32767, tick_size=7, base_spread_ticks=1, inventory_skew_factor=1.0,
                               min_edge_ticks=0, order_size=1, num_levels=4)
    position = 18724
    frac = position * PipelineParams.from_config(config).skew_coef % (1 << 47)
    assert 1 << 14 <= frac < 1 << 15
    assert 2 * position * config.skew_q * config.tick_size % (config.max_inventory * 65536) == 0
    sums = list(range(100_000, 100_000 + 4 * config.tick_size))  # every residue of P mod 2T, twice
    _play([_sweep_segment(config, position, sums, 5)], 8, 41)


@pytest.mark.parametrize("tick", [2, 4])
def test_fraction_exactly_on_the_thresholds(tick: int) -> None:
    """With ``2T`` a power of two the reciprocal is exact (``err = 0``), so ``F = rP*m`` lands
    exactly on the thresholds ``kbr*m``, ``m`` and ``(kar+1)*m`` when ``rP`` equals them
    (docs/pipeline.md, "rP comparisons on the fraction"): every residue, every position."""
    config = MarketMakerConfig(max_inventory=5, tick_size=tick, base_spread_ticks=3, min_edge_ticks=0,
                               inventory_skew_factor=Fraction(1, 3), order_size=1, num_levels=3)
    sums = list(range(100_000, 100_000 + 4 * tick))
    segments = [_sweep_segment(config, pos, sums, 10 * k) for k, pos in enumerate(range(-6, 7))]
    _play(segments, 8, 50 + tick)


def test_soft_reset_forgets_a_refresh_still_in_flight() -> None:
    """docs/pipeline.md: updates already past the refresh decision keep their flag, but the clock
    forgets them. A refresh decided just before the soft reset, held in S2 by back-pressure,
    must not be taken over afterwards: the next update is the first again (exchange)."""
    dut = QuotePipeline(max_levels=2)
    codec = PortCodec(2, 31)
    config = MarketMakerConfig(refresh_interval_ns=1000, num_levels=2, max_levels=2)
    ahead = [_book(codec, 1 + k, 1000, None) for k in range(3)]  # no mid: they fill S5..S3
    refreshing, after = _book(codec, 10, 1000, 1010), _book(codec, 20, 1000, 1010)
    got: list = []

    async def bench(ctx) -> None:
        h = _Harness(dut, codec, ctx)
        h.set_ports(config, 0)
        await h.wait_settled()
        for raw in [*ahead, refreshing]:  # back to back into a pipeline whose output is held
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload.as_value(), raw)
            ctx.set(dut.o.ready, 0)
            assert ctx.get(dut.i.ready)
            await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for _ in range(6):  # the stages fill and stall: the refresh waits in S2
            await ctx.tick()
        assert not ctx.get(dut.i.ready)
        ctx.set(dut.soft_reset, 1)
        await ctx.tick()
        ctx.set(dut.soft_reset, 0)
        for _ in range(3):
            await ctx.tick()
        await h.send(after)  # h.tick takes the output again
        await h.drain(5)
        got.extend(codec.decode(raw).refresh for _, raw in h.outputs)

    _run(dut, bench)
    assert got == [False, False, False, True, True]


def test_steps_switched_off_at_the_largest_tick() -> None:
    """T = 65535 (``l = 17``): ``F`` reaches above ``2**(pb+17)`` when ``rP >= T``, so a switched-off
    ask step's threshold must stay beyond every ``F`` (B = 2, e = 0, no skew: ``[rP > 0]`` is off)."""
    t = 65535
    config = MarketMakerConfig(tick_size=t, base_spread_ticks=2, min_edge_ticks=0, max_inventory=50, num_levels=3)
    base = 2 * t * 5000
    sums = [base + r for r in (0, 1, 2, t - 1, t, t + 1, 2 * t - 2, 2 * t - 1)]
    _play([_sweep_segment(config, 0, sums, 3)], 8, 61)


@pytest.mark.parametrize("levels", [2, 8])
def test_settled_is_low_for_settle_cycles_after_a_port_change(levels: int) -> None:
    """``settle_cycles`` is how long ``settled`` stays low after the ports are taken over (one
    cycle after the change): exactly, once, with no update accepted meanwhile."""
    dut = QuotePipeline(max_levels=levels)
    codec = PortCodec(levels, 31)
    config = MarketMakerConfig(num_levels=2, max_levels=levels)
    trace: list[tuple[bool, bool]] = []

    async def bench(ctx) -> None:
        h = _Harness(dut, codec, ctx)
        h.set_ports(config, 0)
        await h.wait_settled()
        ctx.set(dut.position, 3)
        for _ in range(dut.settle_cycles + 10):
            await ctx.tick()
            trace.append((bool(ctx.get(dut.settled)), bool(ctx.get(dut.i.ready))))

    _run(dut, bench)
    low = [k for k, (settled, _) in enumerate(trace) if not settled]
    assert low == list(range(dut.settle_cycles + 1)), low
    assert not any(ready for settled, ready in trace if not settled)


@pytest.mark.parametrize("policy", ["exchange", "legacy"])
def test_size_limit_blocks_above_max_order_qty_only(policy: str) -> None:
    """docs/spec.md §8: ``order_size > max_order_qty`` blocks every level (flagged
    ``size_blocked``, counts and out-of-domain kept); equal or off does not. Golden
    expectations, both sides of the boundary, books with and without a mid."""
    segments, ts = [], 0
    for size, limit in ((5, 4), (5, 5), (5, 6), (5, None), (65535, 65534), (1, 1)):
        config = MarketMakerConfig(order_size=size, max_order_qty=limit, max_inventory=32767, num_levels=4,
                                   quote_policy=policy)
        sums = list(range(100_000, 100_000 + 2 * config.tick_size)) + [2, 3, 2 * PMAX - 1]
        segments.append(_sweep_segment(config, 0, sums, ts))
        ts += len(sums)
    _play(segments, 8, 77)
