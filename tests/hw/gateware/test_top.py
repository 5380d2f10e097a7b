"""``NanoquoteTop`` in ``amaranth.sim``: registers, control latches, quote path, counters.

Expectations: the register map data, the golden model ``nanoquote.host.strategy.quoting``
(``build_ladder``) and the conventions written in ``hw/gateware/top.py``'s docstring restated
here in plain Python; never the gateware.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from amaranth.hdl import ClockDomain, Module
from nanoquote.host.device.bus import Resp
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.hw.contract.coefficients import CYCLES_PER_US, PipelineParams
from nanoquote.hw.contract.register_map import Access
from nanoquote.hw.gateware.top import NanoquoteTop
from nanoquote.sim.conformance.reference import SpecRefreshClock
from nanoquote.sim.testbenches.amaranth_axil_master import AxiLiteSimMaster
from nanoquote.sim.testbenches.amaranth_support import (
    expected_ladder,
    simulate,
    test_seed,
)
from nanoquote.sim.testbenches.bench_registers import BenchRegisters


def run_top(bench, name, *, max_levels=8, price_bits=31, background=(), stall=0.0, seed=0, o_ready=1,
            input_register=False):
    dut = NanoquoteTop(max_levels=max_levels, price_bits=price_bits, input_register=input_register)

    async def testbench(ctx):
        ctx.set(dut.o.ready, o_ready)
        bus = AxiLiteSimMaster(ctx, dut.axil, rng=random.Random(seed), stall=stall)
        await bench(ctx, dut, BenchRegisters(bus, dut.rmap))

    simulate(dut, [testbench], [b(dut) for b in background], name=name)
    return dut


def ladder_monitor(log):
    """Background process: every ladder delivered on ``o``."""
    def factory(dut):
        async def process(ctx):
            o = dut.o
            async for _clk, _rst, valid, ready, payload in ctx.tick().sample(o.valid, o.ready, o.payload):
                if valid and ready:
                    log.append(payload)
        return process
    return factory


def accept_monitor(log):
    """Background process: every update the pipeline accepts (stream or register path)."""
    def factory(dut):
        async def process(ctx):
            i = dut.pipeline.i
            async for _clk, _rst, valid, ready, payload in ctx.tick().sample(i.valid, i.ready, i.payload):
                if valid and ready:
                    log.append(payload)
        return process
    return factory


def book_of(update) -> BookUpdate:
    return BookUpdate(update.ts, update.bid if update.has_bid else None, update.ask if update.has_ask else None)


def posted(ladder: dict) -> bool:
    return bool(ladder["bid_post"] or ladder["ask_post"])


# -- reset ---------------------------------------------------------------------------------------


def test_reset_values_and_nothing_quoted_until_configured_and_armed():
    delivered: list = []

    async def bench(ctx, dut, regs):
        await regs.bus.idle(40)  # let the pipeline settle after reset
        for reg in dut.rmap:
            value = await regs.read(reg.name)
            expect = 0 if reg.access is Access.WP else reg.reset
            if reg.name == "STATUS":
                expect = reg.pack(settled=1)
            assert value == expect, f"{reg.name}: {value:#x} != {expect:#x}"

        # Stream updates: nothing posted before commit + arm.
        async def stream(ts):
            ctx.set(dut.i.payload, {"ts": ts, "bid": 100000, "ask": 100050, "has_bid": 1, "has_ask": 1})
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            await regs.bus.idle(12)

        await stream(1)  # reset configuration, disarmed
        await regs.pulse("CONTROL", "arm")  # armed, but the live configuration is the reset one (M = 0)
        assert (await regs.read_fields("STATUS"))["armed"] == 1
        await stream(2)
        await regs.pulse("CONTROL", "disarm")
        await regs.configure(PipelineParams.from_config(MarketMakerConfig()))
        await stream(3)  # configured, not armed
        await regs.pulse("CONTROL", "arm")
        await stream(2 + MarketMakerConfig().refresh_interval_ns)
        assert len(delivered) == 4
        # Nothing is posted with the reset configuration, armed or not; a quote (a ladder
        # with ``refresh``, the only thing the host acts on) needs a commit and an arm. The
        # ladder itself is computed whenever configured, armed or not.
        assert [posted({"bid_post": d.bid_post, "ask_post": d.ask_post}) for d in delivered] == [
            False, False, True, True]
        assert [d.refresh for d in delivered][2:] == [0, 1]

    run_top(bench, "top_reset", background=[ladder_monitor(delivered)])


# -- control latches ---------------------------------------------------------------------------


def _latch_model(armed: bool, killed: bool, pulses: dict[str, int]) -> tuple[bool, bool]:
    """CONTROL actions in their documented order (the later wins within one write)."""
    if pulses.get("soft_reset") or pulses.get("disarm"):
        armed = False
    if pulses.get("arm") and not killed:
        armed = True
    if pulses.get("kill"):
        killed, armed = True, False
    if pulses.get("rearm"):
        killed, armed = False, True
    return armed, killed


def test_arm_kill_rearm_latches():
    seed = test_seed(7)
    rng = random.Random(seed)

    async def bench(ctx, dut, regs):
        armed = killed = False
        script = [{"arm": 1}, {"kill": 1}, {"arm": 1}, {"disarm": 1}, {"rearm": 1}, {"kill": 1, "rearm": 1},
                  {"arm": 1, "disarm": 1}, {"kill": 1}, {"soft_reset": 1}, {"arm": 1}, {"rearm": 1}]
        script += [{f: rng.random() < 0.3 for f in ("arm", "disarm", "kill", "rearm", "soft_reset")}
                   for _ in range(40)]
        for step, pulses in enumerate(script):
            await regs.write_fields("CONTROL", **pulses)
            armed, killed = _latch_model(armed, killed, pulses)
            status = await regs.read_fields("STATUS")
            assert (status["armed"], status["killed"]) == (armed, killed), \
                f"seed {seed} step {step} {pulses}: {status}"

    run_top(bench, "top_latches")


# -- the register quote path against the golden model ------------------------------------------

CONFIGS = [
    MarketMakerConfig(),
    MarketMakerConfig(quote_policy="legacy"),
    MarketMakerConfig(base_spread_ticks=5, min_edge_ticks=4, inventory_skew_factor=1.0, max_inventory=7,
                      order_size=2, num_levels=8, tick_size=1, refresh_interval_ns=500),
    MarketMakerConfig(quote_policy="legacy", base_spread_ticks=3, tick_size=7, inventory_skew_factor=Fraction(1, 3),
                      max_inventory=20, num_levels=5, order_size=3, refresh_interval_ns=0),
    MarketMakerConfig(base_spread_ticks=255, tick_size=65535, max_inventory=32767, num_levels=8,
                      inventory_skew_factor=0.75, min_edge_ticks=0, order_size=65535),
]


def _random_book(rng, config, price_bits, ts):
    t = config.tick_size
    top = (1 << price_bits) - 1
    kind = rng.random()
    if kind < 0.1:  # near the bottom of the price domain: levels fall out of it
        bid = rng.randrange(1, 4 * t + 2)
    elif kind < 0.2:  # near the top
        bid = rng.randrange(max(1, top - 4 * t - 100), top - 1)
    else:
        bid = rng.randrange(1, top)
    ask = bid + rng.choice([1, t, 2 * t, rng.randrange(1, 5 * t + 2)])
    if rng.random() < 0.1:
        bid, ask = ask, bid  # crossed
    elif rng.random() < 0.05:
        ask = bid  # locked
    ask = min(ask, top)
    if rng.random() < 0.08:
        bid = None
    if rng.random() < 0.08:
        ask = None
    return BookUpdate(ts, bid, ask)


@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_register_quote_path_matches_golden(index):
    config = CONFIGS[index]
    seed = test_seed(100 + index)
    rng = random.Random(seed)
    price_bits = 31

    async def bench(ctx, dut, regs):
        await regs.configure(PipelineParams.from_config(config, price_bits))
        await regs.pulse("CONTROL", "arm")
        last: int | None = None
        ts = rng.randrange(0, 1000)
        for step in range(12):
            m = config.max_inventory
            position = rng.choice([0, m, -m, rng.randint(-m, m), rng.randint(-32767, 32767)])
            live_bid, live_ask = rng.choice([(0, 0), (rng.randrange(3 * config.order_size), rng.randrange(40)),
                                             (rng.getrandbits(32), rng.getrandbits(32))])
            await regs.set_inventory(position, live_bid, live_ask)
            ts += rng.choice([0, 1, config.refresh_interval_ns, rng.randrange(2 * config.refresh_interval_ns + 1)])
            book = _random_book(rng, config, price_bits, ts)
            got = await regs.quote(book.ts, book.best_bid, book.best_ask)
            want = expected_ladder(config, book, position, live_bid, live_ask, dut.max_levels, price_bits)
            # docs/spec.md §6 refresh, restated: armed, a quotable mid, first (exchange) or interval elapsed.
            quotable = not want["no_mid"]
            if quotable and last is None and not config.is_legacy:
                refresh = True
            else:
                refresh = quotable and ts - (last or 0) >= config.refresh_interval_ns
            if refresh:
                last = ts
            want["refresh"] = int(refresh)
            where = f"seed {seed} step {step}: {config} {book} position {position} live {live_bid}/{live_ask}"
            assert got == want, where
            status = await regs.read_fields("STATUS")
            assert status["has_quoted"] == (last is not None), where
            assert await regs.read("LAST_QUOTE_TIME") == (last or 0), where
        counters = {r.name: await regs.read(r.name) for r in dut.rmap if r.name.startswith("COUNT_")}
        assert counters["COUNT_UPDATES"] == counters["COUNT_LADDERS"] == 12

    run_top(bench, f"top_golden_{index}")


# -- counters, sticky ladder errors, soft reset -------------------------------------------------


def test_counters_sticky_errors_and_soft_reset():
    config = MarketMakerConfig(max_inventory=10, order_size=5, num_levels=3)
    books = [BookUpdate(10, 100000, 100050), BookUpdate(20, 100050, 100000), BookUpdate(30, None, 100000),
             BookUpdate(40, 10, 40), BookUpdate(200_000_000, 100000, 100100), BookUpdate(300_000_000, 100, 100)]
    position = 4

    async def bench(ctx, dut, regs):
        await regs.configure(PipelineParams.from_config(config))
        await regs.set_inventory(position, 0, 3)
        await regs.pulse("CONTROL", "arm")
        counts = dict.fromkeys(("UPDATES", "LADDERS", "REFRESHES", "GATED_BID", "GATED_ASK",
                                "OUT_OF_DOMAIN", "CROSSED", "NO_MID"), 0)
        for book in books:
            got = await regs.quote(book.ts, book.best_bid, book.best_ask)
            want = expected_ladder(config, book, position, 0, 3, 8, 31)
            assert {k: got[k] for k in want} == want, book
            counts["UPDATES"] += 1
            counts["LADDERS"] += 1
            counts["REFRESHES"] += got["refresh"]
            counts["CROSSED"] += want["crossed"]
            counts["NO_MID"] += want["no_mid"]
            counts["OUT_OF_DOMAIN"] += want["out_of_domain"]
            counts["GATED_BID"] += not want["no_mid"] and want["bid_count"] < config.num_levels
            counts["GATED_ASK"] += not want["no_mid"] and want["ask_count"] < config.num_levels
        assert all(counts[k] for k in counts), counts  # the books exercise every counter
        for name, value in counts.items():
            assert await regs.read(f"COUNT_{name}") == value, name
        errors = await regs.read_fields("ERRORS")
        assert errors == {"bus_error": 0, "commit_rejected": 0, "out_of_domain": 1, "crossed": 1, "deadman": 0}
        await regs.write_fields("ERRORS", out_of_domain=1, crossed=1)
        assert await regs.read("ERRORS") == 0

        await regs.pulse("CONTROL", "clear_counters")
        for name in counts:
            assert await regs.read(f"COUNT_{name}") == 0, name
        assert (await regs.read_fields("LADDER_STATUS"))["valid"] == 1
        await regs.quote(400_000_000, 100000, 100050)
        assert await regs.read("COUNT_UPDATES") == 1
        assert (await regs.read_fields("STATUS"))["armed"] == 1

        await regs.pulse("CONTROL", "soft_reset")
        assert await regs.read("COUNT_UPDATES") == 0
        assert await regs.read("LADDER_STATUS") == 0
        assert await regs.read("LADDER_BID0") == 0
        assert (await regs.read_fields("STATUS"))["armed"] == 0
        # disarmed: the ladder comes back without refresh
        got = await regs.quote(500_000_000, 100000, 100050)
        assert got["refresh"] == 0

    run_top(bench, "top_counters")


# -- the stream and the register path together -------------------------------------------------


@pytest.mark.parametrize("input_register", [False, True])
def test_stream_and_register_path_share_the_pipeline(input_register):
    seed = test_seed(21)
    rng = random.Random(seed)
    config = MarketMakerConfig(num_levels=4)
    accepted: list = []
    delivered: list = []
    sent: list = []

    configured: list[bool] = []

    def stream_driver(dut):
        async def process(ctx):
            while not configured:
                await ctx.tick()
            ts = 0
            for _ in range(150):
                for _ in range(rng.choice([0, 0, 0, 1, 3])):
                    await ctx.tick()
                ts += rng.randrange(1, 50_000_000)
                bid = rng.randrange(1000, 2_000_000)
                upd = {"ts": ts, "bid": bid, "ask": bid + rng.randrange(1, 200), "has_bid": 1, "has_ask": 1}
                ctx.set(dut.i.payload, upd)
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
                sent.append(upd["ts"])
                ctx.set(dut.i.valid, 0)
        return process

    def ready_toggler(dut):
        async def process(ctx):
            while True:
                ctx.set(dut.o.ready, rng.random() < 0.7)
                await ctx.tick()
        return process

    async def bench(ctx, dut, regs):
        await regs.configure(PipelineParams.from_config(config))
        await regs.pulse("CONTROL", "arm")
        configured.append(True)
        for k in range(10):
            book = BookUpdate(10**12 + k, 500_000 + 25 * k, 500_100 + 25 * k)
            await regs.submit(book.ts, book.best_bid, book.best_ask)
            # a second submit right away may find the first still waiting: refused, no effect
            resp = await regs.bus.write(dut.rmap["BOOK_SUBMIT"].address, 0b11)
            if resp == Resp.SLVERR:
                await regs.write_fields("ERRORS", bus_error=1)
            else:
                assert resp == Resp.OKAY
            got = await regs.ladder(polls=200)
            want = expected_ladder(config, book, 0, 0, 0, 8, 31)
            assert {k2: got[k2] for k2 in want} == want, f"seed {seed} submit {k}"
        await regs.bus.idle(3000)

    dut = NanoquoteTop(input_register=input_register)
    bg = [stream_driver, ready_toggler]

    async def testbench(ctx):
        bus = AxiLiteSimMaster(ctx, dut.axil, rng=random.Random(seed), stall=0.2)
        await bench(ctx, dut, BenchRegisters(bus, dut.rmap))

    from amaranth.sim import Simulator

    sim = Simulator(dut)
    sim.add_clock(5e-9)
    sim.add_testbench(testbench)
    for b in bg:
        sim.add_testbench(b(dut), background=True)
    sim.add_process(ladder_monitor(delivered)(dut))
    sim.add_process(accept_monitor(accepted)(dut))
    sim.run()

    # Every accepted update has its ladder, in order, equal to the golden one.
    assert len(sent) == 150, f"seed {seed}: the stream was starved"
    assert len(delivered) == len(accepted), f"seed {seed}"
    for n, (upd, lad) in enumerate(zip(accepted, delivered, strict=True)):
        want = expected_ladder(config, book_of(upd), 0, 0, 0, 8, 31)
        got = {"valid": 1, "no_mid": lad.no_mid, "crossed": lad.crossed, "bid_count": lad.bid_count,
               "ask_count": lad.ask_count, "out_of_domain": lad.out_of_domain, "bid_post": lad.bid_post,
               "ask_post": lad.ask_post, "bid_price": tuple(lad.bid_price[i] for i in range(8)),
               "ask_price": tuple(lad.ask_price[i] for i in range(8)), "killed": lad.killed,
               "deadman": lad.deadman, "size_blocked": lad.size_blocked}
        assert got == want, f"seed {seed}: ladder {n} (ts {upd.ts})"
        assert lad.ts == upd.ts
    stream_ts = [u.ts for u in accepted if u.ts < 10**12]
    assert stream_ts == sent, f"seed {seed}: stream updates lost, duplicated or reordered"


@pytest.mark.parametrize("input_register", [False, True])
def test_submit_refused_while_one_waits_under_backpressure(input_register):
    config = MarketMakerConfig()

    async def bench(ctx, dut, regs):
        await regs.configure(PipelineParams.from_config(config))
        await regs.pulse("CONTROL", "arm")
        ctx.set(dut.o.ready, 0)
        await regs.submit(1, 100000, 100050)  # enters and stalls at the output
        await regs.bus.idle(20)
        await regs.submit(2, 200000, 200050)  # waits in front of the stalled pipeline
        await regs.bus.idle(20)
        if input_register:  # the input register holds one more: fill it from the register path
            await regs.submit(3, 200000, 200050)
            await regs.bus.idle(20)
        submit = dut.rmap["BOOK_SUBMIT"].address
        assert await regs.bus.write(submit, 0b11) == Resp.SLVERR
        assert (await regs.read_fields("ERRORS"))["bus_error"] == 1
        assert (await regs.read_fields("LADDER_STATUS"))["valid"] == 0
        assert await regs.read("COUNT_UPDATES") == 1 + input_register
        ctx.set(dut.o.ready, 1)
        got = await regs.ladder()
        want = expected_ladder(config, BookUpdate(2 + input_register, 200000, 200050), 0, 0, 0, 8, 31)
        assert {k: got[k] for k in want} == want
        assert await regs.read("COUNT_LADDERS") == 2 + input_register

    run_top(bench, f"top_busy_{input_register}", o_ready=0, input_register=input_register)


def test_soft_reset_clears_the_refresh_clock():
    config = MarketMakerConfig(refresh_interval_ns=1_000_000)

    async def bench(ctx, dut, regs):
        await regs.configure(PipelineParams.from_config(config))
        await regs.pulse("CONTROL", "arm")
        assert (await regs.quote(100, 100000, 100050))["refresh"] == 1  # exchange: first refresh
        assert (await regs.quote(200, 100000, 100050))["refresh"] == 0  # within the interval
        assert await regs.read("LAST_QUOTE_TIME") == 100
        await regs.pulse("CONTROL", "soft_reset")
        assert (await regs.read_fields("STATUS"))["has_quoted"] == 0
        assert await regs.read("LAST_QUOTE_TIME") == 0
        await regs.pulse("CONTROL", "arm")
        # the refresh clock starts empty again: the next quotable update refreshes
        assert (await regs.quote(300, 100000, 100050))["refresh"] == 1
        assert await regs.read("LAST_QUOTE_TIME") == 300

    run_top(bench, "top_soft_reset_refresh")


@pytest.mark.parametrize(("max_levels", "price_bits"), [(1, 20), (12, 31), (16, 32)])
def test_other_builds_quote_like_the_golden_model(max_levels, price_bits):
    seed = test_seed(300 + max_levels)
    rng = random.Random(seed)
    config = MarketMakerConfig(num_levels=max_levels, max_levels=max_levels, tick_size=3, max_inventory=100,
                               order_size=1, inventory_skew_factor=0.9)
    top = (1 << price_bits) - 1

    async def bench(ctx, dut, regs):
        build = await regs.read_fields("BUILD")
        assert build == {"max_levels": max_levels, "price_bits": price_bits, "latency": dut.LATENCY}
        await regs.configure(PipelineParams.from_config(config, price_bits))
        await regs.pulse("CONTROL", "arm")
        for step, bid in enumerate([1, 2, top - 40, top - 2, *(rng.randrange(1, top - 10) for _ in range(3))]):
            position = rng.randint(-120, 120)
            await regs.set_inventory(position, rng.randrange(10), rng.randrange(10))
            live = (await regs.read("LIVE_BID_QTY"), await regs.read("LIVE_ASK_QTY"))
            book = BookUpdate(step, bid, min(top, bid + rng.randrange(1, 9)))
            got = await regs.quote(book.ts, book.best_bid, book.best_ask)
            want = expected_ladder(config, book, position, *live, max_levels, price_bits)
            assert {k: got[k] for k in want} == want, f"seed {seed} step {step}: {book} position {position}"

    run_top(bench, f"top_l{max_levels}_p{price_bits}", max_levels=max_levels, price_bits=price_bits)


def test_builds_beyond_16_levels_are_refused():
    """The register map holds at most 16 levels (``MAX_LEVELS_LIMIT``): a build of 17..20, whose
    popcounts would have 5 chunks, is outside the validated domain and refused; 12 levels (3
    chunks) is the odd-chunk build tested above and in test_pipeline.py."""
    with pytest.raises(ValueError, match="max_levels"):
        NanoquoteTop(max_levels=20)


def test_status_settled_is_low_while_a_commit_is_adopted():
    """docs/spec.md §9.3: while the device adopts a commit ``STATUS.settled`` is low and updates
    are held back, not dropped: one submitted then is computed with the new configuration."""
    old, new = MarketMakerConfig(), MarketMakerConfig(base_spread_ticks=6)

    async def bench(ctx, dut, regs):
        await regs.configure(PipelineParams.from_config(old))
        await regs.pulse("CONTROL", "arm")
        await regs.bus.idle(60)
        assert (await regs.read_fields("STATUS"))["settled"] == 1
        await regs.configure(PipelineParams.from_config(new))
        assert (await regs.read_fields("STATUS"))["settled"] == 0  # the settle takes 35 cycles
        book = BookUpdate(1, 100000, 100050)
        got = await regs.quote(book.ts, book.best_bid, book.best_ask)
        assert {k: got[k] for k in ("bid_price", "ask_price")} == {
            k: expected_ladder(new, book, 0, 0, 0, 8, 31)[k] for k in ("bid_price", "ask_price")}
        assert (await regs.read_fields("STATUS"))["settled"] == 1

    run_top(bench, "top_settled")


# -- refresh clock: soft reset, then a commit before the next refresh ----------------------------


@pytest.mark.parametrize("policy", ["legacy", "exchange"])
def test_soft_reset_then_commit_before_the_next_refresh(policy):
    """docs/spec.md §6.1 and §9.4: after a soft reset the clock is in its starting state (legacy
    ``last_quote_time = 0``, exchange "no time yet"), and a commit that follows, which makes
    the device recompute its deadline from the new interval, must not bring the old
    ``last_quote_time`` back."""
    legacy = policy == "legacy"
    before = MarketMakerConfig(quote_policy=policy, refresh_interval_ns=1000)
    after = before.replace(refresh_interval_ns=1500)

    async def bench(ctx, dut, regs):
        await regs.configure(PipelineParams.from_config(before))
        await regs.pulse("CONTROL", "arm")
        assert (await regs.quote(5000, 100000, 100050))["refresh"] == 1  # 5000 - 0 >= 1000 (either)
        assert await regs.read("LAST_QUOTE_TIME") == 5000
        await regs.pulse("CONTROL", "soft_reset")
        await regs.pulse("CONTROL", "arm")
        # restarted clock, old interval: legacy needs 1000 from 0, exchange refreshes at once
        assert (await regs.quote(600, 100000, 100050))["refresh"] == int(not legacy)
        if not legacy:  # exchange has refreshed at 600: start it again for the commit below
            await regs.pulse("CONTROL", "soft_reset")
            await regs.pulse("CONTROL", "arm")
        await regs.configure(PipelineParams.from_config(after))
        # legacy: 1200 - 0 < 1500; exchange: still the first quotable update since the reset
        assert (await regs.quote(1200, 100000, 100050))["refresh"] == int(not legacy)
        assert (await regs.quote(1600, 100000, 100050))["refresh"] == int(legacy)  # 1600 - 0 >= 1500
        assert await regs.read("LAST_QUOTE_TIME") == (1600 if legacy else 1200)

    run_top(bench, f"top_soft_reset_commit_{policy}")


# -- counters: each one of the register map, exactly, and a hard reset after counting -----------


def _counter_names(dut) -> list[str]:
    return [r.name for r in dut.rmap.group("counters") if r.counter is not None]


def _expected_counts(config, steps, names) -> dict[str, int]:
    """docs/spec.md §9.6 restated on golden ladders: per delivered ladder of ``steps`` (position,
    live bid, live ask, book)."""
    counts = dict.fromkeys(names, 0)
    clock = SpecRefreshClock()
    for position, live_bid, live_ask, book in steps:
        want = expected_ladder(config, book, position, live_bid, live_ask, 8, 31)
        has_mid = not want["no_mid"]
        counts["COUNT_UPDATES"] += 1
        counts["COUNT_LADDERS"] += 1
        counts["COUNT_REFRESHES"] += clock.decide(config, True, has_mid, book.ts)
        counts["COUNT_GATED_BID"] += has_mid and want["bid_count"] < config.num_levels
        counts["COUNT_GATED_ASK"] += has_mid and want["ask_count"] < config.num_levels
        counts["COUNT_OUT_OF_DOMAIN"] += want["out_of_domain"]
        counts["COUNT_CROSSED"] += want["crossed"]
        counts["COUNT_NO_MID"] += want["no_mid"]
    # then one update blocked by CONTROL.kill and one by the dead-man timer (:func:`_kill_steps`)
    book = KILL_BOOK
    want = expected_ladder(config, book, 0, 0, 0, 8, 31)
    for reason in ("COUNT_KILL_BLOCKED", "COUNT_DEADMAN_BLOCKED"):
        counts["COUNT_UPDATES"] += 1
        counts["COUNT_LADDERS"] += 1
        counts[reason] += 1  # killed: disarmed, so no refresh; the gating is computed as ever
        counts["COUNT_GATED_BID"] += want["bid_count"] < config.num_levels
        counts["COUNT_GATED_ASK"] += want["ask_count"] < config.num_levels
    # and a refresh under a size limit below order_size: every level in the domain blocked
    want = expected_ladder(config.replace(max_order_qty=config.order_size - 1), SIZE_BOOK, 0, 0, 0, 8, 31)
    assert want["size_blocked"] and not want["bid_post"]
    counts["COUNT_UPDATES"] += 1
    counts["COUNT_LADDERS"] += 1
    counts["COUNT_REFRESHES"] += 1
    counts["COUNT_SIZE_BLOCKED"] += want["bid_count"] + want["ask_count"] - want["out_of_domain"]
    counts["COUNT_GATED_BID"] += want["bid_count"] < config.num_levels
    counts["COUNT_GATED_ASK"] += want["ask_count"] < config.num_levels
    return counts


#: the book the kill steps submit (a mid, every level in the price domain)
KILL_BOOK = BookUpdate(4000, 100000, 100050)
#: the book of the size-limit step: a refresh (1200 after the last one)
SIZE_BOOK = BookUpdate(4500, 100000, 100050)


async def _kill_steps(regs) -> None:
    """One submit after ``CONTROL.kill``, a re-arm, then one after the dead-man timer (1 us)
    latched the kill: both ladders come back blocked, flagged with their reason. Then, re-armed,
    a refresh under a maximum order quantity below ``order_size``: every level blocked."""
    book = KILL_BOOK
    await regs.set_inventory(0, 0, 0)
    await regs.pulse("CONTROL", "kill")
    got = await regs.quote(book.ts, book.best_bid, book.best_ask)
    assert (got["killed"], got["deadman"], got["bid_post"], got["ask_post"]) == (1, 0, 0, 0)
    await regs.pulse("CONTROL", "rearm")
    await regs.run(regs.programs.write_group("risk", {"deadman_us": 1}))
    await regs.bus.idle(CYCLES_PER_US + 10)
    assert (await regs.read_fields("STATUS"))["deadman"] == 1
    got = await regs.quote(book.ts, book.best_bid, book.best_ask)
    assert (got["killed"], got["deadman"], got["bid_post"], got["ask_post"]) == (1, 1, 0, 0)
    await regs.run(regs.programs.write_group("risk", {"deadman_us": 0}))
    await regs.pulse("CONTROL", "rearm")
    config = COUNTER_CONFIG
    await regs.configure(PipelineParams.from_config(config.replace(max_order_qty=config.order_size - 1)))
    got = await regs.quote(SIZE_BOOK.ts, SIZE_BOOK.best_bid, SIZE_BOOK.best_ask)
    assert (got["size_blocked"], got["refresh"], got["bid_post"], got["ask_post"]) == (1, 1, 0, 0)
    await regs.configure(PipelineParams.from_config(config))


#: M = 15, 3 levels of 5: position 0 fits exactly 3 levels a side (not gated); one lot either
#: way, or one live lot, gates one side; books without a mid are never counted as gated
COUNTER_CONFIG = MarketMakerConfig(max_inventory=15, order_size=5, num_levels=3, refresh_interval_ns=1000)
COUNTER_STEPS = [
    (0, 0, 0, BookUpdate(10, 100000, 100050)),  # both full
    (1, 0, 0, BookUpdate(20, 100000, 100050)),  # bid gated
    (-1, 0, 0, BookUpdate(30, 100000, 100050)),  # ask gated
    (0, 1, 0, BookUpdate(1500, 100000, 100050)),  # bid gated by a live lot; refresh
    (0, 0, 5, BookUpdate(1600, 100000, 100050)),  # ask gated by 5 live lots
    (0, 0, 0, BookUpdate(1700, 10, 40)),  # full, levels out of the price domain
    (0, 0, 0, BookUpdate(3000, 100050, 100000)),  # crossed: no mid, not gated; no refresh
    (15, 0, 0, BookUpdate(3100, None, 100000)),  # no mid: not gated although M is reached
    (0, 0, 0, BookUpdate(3200, 100000, 100000)),  # locked: crossed, no mid
    (0, 0, 0, BookUpdate(3300, 100000, 100050)),  # both full; refresh
]


def test_every_counter_counts_each_delivered_ladder_once():
    """Every ``Counter`` of the register map against docs/spec.md §9.6 restated, with ladders
    held at the output for a while (they count when delivered, once) and full ladders among
    them (GATED_* count only ladders with a mid and fewer levels than ``num_levels``)."""
    config = COUNTER_CONFIG

    async def bench(ctx, dut, regs):
        names = _counter_names(dut)
        want = _expected_counts(config, COUNTER_STEPS, names)
        assert all(want.values()), want  # the steps exercise every counter
        with_mid = want["COUNT_LADDERS"] - want["COUNT_NO_MID"]
        assert max(want["COUNT_GATED_BID"], want["COUNT_GATED_ASK"]) < with_mid  # full ladders too
        await regs.configure(PipelineParams.from_config(config))
        await regs.pulse("CONTROL", "arm")
        for position, live_bid, live_ask, book in COUNTER_STEPS:
            await regs.set_inventory(position, live_bid, live_ask)
            ctx.set(dut.o.ready, 0)
            await regs.submit(book.ts, book.best_bid, book.best_ask)
            await regs.bus.idle(12)  # the ladder waits at the output
            ctx.set(dut.o.ready, 1)
            got = await regs.ladder()
            expect = expected_ladder(config, book, position, live_bid, live_ask, 8, 31)
            assert {k: got[k] for k in expect} == expect, book
        await _kill_steps(regs)
        for name in names:
            assert await regs.read(name) == want[name], name

    run_top(bench, "top_every_counter", o_ready=0)


def test_hard_reset_after_counting_clears_every_counter():
    """docs/spec.md §9.6: reset zeroes the counters. Their registers start at zero anyway, so
    only a reset after counting shows it: every counter nonzero, then the reset, then the
    whole map at its reset values (counters, LAST_QUOTE_TIME and the captured ladder
    included)."""
    dut = NanoquoteTop()
    top = Module()
    top.domains.sync = cd = ClockDomain("sync")
    top.submodules.dut = dut
    config = COUNTER_CONFIG

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        regs = BenchRegisters(AxiLiteSimMaster(ctx, dut.axil), dut.rmap)
        await regs.configure(PipelineParams.from_config(config))
        await regs.pulse("CONTROL", "arm")
        for position, live_bid, live_ask, book in COUNTER_STEPS:
            await regs.set_inventory(position, live_bid, live_ask)
            await regs.quote(book.ts, book.best_bid, book.best_ask)
        await _kill_steps(regs)
        await regs.quote(6000, 100000, 100050)  # a ladder with every level posted, refreshing
        counts = {name: await regs.read(name) for name in _counter_names(dut)}
        assert all(counts.values()), counts
        assert await regs.read("LAST_QUOTE_TIME") == 6000
        assert await regs.read("LADDER_BID0") != 0
        ctx.set(cd.rst, 1)
        await ctx.tick()
        await ctx.tick()
        ctx.set(cd.rst, 0)
        await regs.bus.idle(40)  # the pipeline settles after reset
        for reg in dut.rmap:
            value = await regs.read(reg.name)
            expect = 0 if reg.access is Access.WP else reg.reset
            if reg.name == "STATUS":
                expect = reg.pack(settled=1)
            assert value == expect, f"after reset {reg.name}: {value:#x} != {expect:#x}"

    simulate(top, [bench], name="top_hard_reset")
