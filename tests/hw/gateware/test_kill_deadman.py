"""The kill switch and the dead-man timer of the top level, measured in clock cycles.

docs/spec.md §8 and §9.4: from the clock after a kill latches (the second after the
``CONTROL.kill`` pulse), no ladder leaves with a level posted, on the stream or the
register path; armed and without a heartbeat for
``deadman_us`` microseconds, the device latches its own kill switch. The expectations are
restated here from the spec (cycles per microsecond from the design's clock: the 200 MHz
build's, the board's 120 MHz, or any a top is given), not read from the gateware.
"""

from __future__ import annotations

import random

import pytest
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.hw.contract.coefficients import (
    CLOCK_HZ,
    CYCLES_PER_US,
    PipelineParams,
    deadman_cycles,
)
from nanoquote.hw.gateware.board import BOARD_CLOCK, SIM_CYCLES_PER_BIT, BoardCore
from nanoquote.hw.gateware.layouts import market_update_layout
from nanoquote.hw.gateware.top import NanoquoteTop
from nanoquote.sim.testbenches.amaranth_axil_master import AxiLiteSimMaster
from nanoquote.sim.testbenches.amaranth_support import inspected_only, simulate, test_seed
from nanoquote.sim.testbenches.bench_registers import BenchRegisters

CONFIG = MarketMakerConfig(refresh_interval_ns=0)
BOOK = (100000, 100050)


def _streaming(dut, log):
    """Background: an update offered in every cycle; every cycle's output recorded as
    (cycle, valid, killed, deadman, bid_post, ask_post, any price) plus the control pulses."""
    layout = market_update_layout(dut.price_bits)

    async def driver(ctx):
        ts = 0
        ctx.set(dut.i.valid, 1)
        async for _clk, _rst, ready in ctx.tick().sample(dut.i.ready):
            if ready:
                ts += 1
            ctx.set(dut.i.payload, layout.const({"ts": ts, "bid": BOOK[0], "ask": BOOK[1],
                                                 "has_bid": 1, "has_ask": 1}))

    async def monitor(ctx):
        o, ctl, rb = dut.o, dut.regs.control, dut.regs
        cycle = 0
        async for _clk, _rst, valid, payload, kill, beat in ctx.tick().sample(
                o.valid, o.payload, ctl.kill, rb.heartbeat_stb):
            prices = any(payload.bid_price[i] or payload.ask_price[i] for i in range(dut.max_levels))
            log.append((cycle, valid, payload.killed, payload.deadman, payload.bid_post, payload.ask_post,
                        prices, kill, beat))
            cycle += 1

    return [driver, monitor]


def _run(bench, name, dut=None):
    dut = NanoquoteTop() if dut is None else dut
    log: list[tuple] = []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        bus = AxiLiteSimMaster(ctx, dut.axil, rng=random.Random(test_seed(12)))
        regs = BenchRegisters(bus, dut.rmap)
        await regs.configure(PipelineParams.from_config(CONFIG))
        await regs.pulse("CONTROL", "arm")
        await bench(ctx, dut, regs)

    simulate(dut, [testbench], _streaming(dut, log), name=name)
    return log


def _first_blocked_after(log, pulse_index):
    """Cycles from the pulse (index in the row) to the first delivered ladder flagged killed,
    and whether any ladder after that one still had a level or a price."""
    pulse = next(row[0] for row in log if row[pulse_index])
    blocked = [row for row in log if row[0] > pulse and row[1]]
    first = next(row[0] for row in blocked if row[2])
    leaked = [row for row in blocked if row[0] >= first and (not row[2] or row[4] or row[5] or row[6])]
    before = [row for row in log if row[0] <= pulse and row[1]]
    return first - pulse, leaked, before


def test_kill_silences_the_stream_from_the_clock_after_the_latch():
    """Kill-to-silence: the ladder delivered two cycles after CONTROL.kill pulses (the latch is
    set at the pulse's edge, the output register cleared at the next) is blocked, and so is
    every later one; the ones before were posted (the stream was quoting)."""

    async def bench(ctx, dut, regs):
        posted = await regs.quote(5, *BOOK)  # a ladder captured on the register path
        assert posted["bid_post"] and posted["bid_price"][0] and not posted["killed"]
        await regs.bus.idle(40)
        await regs.pulse("CONTROL", "kill")
        # the captured ladder is blocked as well: nothing to read from the register path
        assert await regs.read_fields("LADDER_MASK") == {"bid_post": 0, "ask_post": 0}
        assert await regs.read("LADDER_BID0") == 0 and (await regs.read_fields("LADDER_STATUS"))["killed"]
        await regs.bus.idle(30)
        got = await regs.quote(9, *BOOK)  # the register path: blocked as well
        assert (got["killed"], got["bid_post"], got["ask_post"], got["bid_price"][0]) == (1, 0, 0, 0)

    log = _run(bench, "kill_to_silence")
    cycles, leaked, before = _first_blocked_after(log, 7)
    print(f"kill-to-silence: {cycles} cycle(s)")
    assert cycles == 2
    assert not leaked
    assert before and before[-1][4] and not before[-1][2]  # posted right up to the kill


def _board_top():
    """The top exactly as the board's core builds it (the simulated board's core; the rest
    of the core is not simulated here)."""
    with inspected_only():
        return BoardCore(SIM_CYCLES_PER_BIT).top


# (the design's clock in Hz, its top, the timeout in us): the 200 MHz build, the board's
# top (120 MHz), and a top clocked at 1 MHz (one cycle a microsecond: no prescaler)
DEADMAN_CASES = [
    pytest.param(CLOCK_HZ, NanoquoteTop, 1, id="build-1us"),
    pytest.param(CLOCK_HZ, NanoquoteTop, 3, id="build-3us"),
    pytest.param(BOARD_CLOCK.design_hz, _board_top, 2, id="board-2us"),
    pytest.param(1_000_000, lambda: NanoquoteTop(cycles_per_us=1), 150, id="1MHz-150us"),
]


@pytest.mark.parametrize(("clock_hz", "make_top", "timeout_us"), DEADMAN_CASES)
def test_deadman_latches_the_kill_switch_when_the_heartbeat_stops(clock_hz, make_top, timeout_us):
    """Dead-man-to-kill: armed, with heartbeats more often than the timeout nothing happens;
    after the last heartbeat, the first blocked ladder leaves exactly
    ``deadman_cycles(timeout, cycles_per_us) + 3`` cycles later (the timeout ends, the expiry
    is registered, the latch set, then the output register cleared), flagged dead-man;
    STATUS and ERRORS say so, and only a re-arm clears the latch. The cycles a microsecond
    are the design clock's MHz (the board's top counts 120, not the build's 200)."""
    dut = make_top()
    cycles_per_us = round(clock_hz / 1e6)
    assert dut.cycles_per_us == cycles_per_us
    timeout = deadman_cycles(timeout_us, cycles_per_us)
    assert timeout == timeout_us * cycles_per_us
    if clock_hz == CLOCK_HZ:
        assert deadman_cycles(timeout_us) == timeout and cycles_per_us == CYCLES_PER_US == 200

    async def bench(ctx, dut, regs):
        await regs.run(regs.programs.write_group("risk", {"deadman_us": timeout_us}))
        for _ in range(4):  # fed: a heartbeat well within the timeout
            await regs.bus.idle(timeout // 2)
            await regs.pulse("HEARTBEAT", "beat")
        assert (await regs.read_fields("STATUS"))["killed"] == 0
        await regs.bus.idle(timeout + 20)
        status = await regs.read_fields("STATUS")
        assert (status["killed"], status["armed"], status["deadman"]) == (1, 0, 1)
        assert (await regs.read_fields("ERRORS"))["deadman"] == 1
        await regs.pulse("HEARTBEAT", "beat")  # a heartbeat does not clear the latch
        assert (await regs.read_fields("STATUS"))["killed"] == 1
        await regs.pulse("CONTROL", "rearm")
        status = await regs.read_fields("STATUS")
        assert (status["killed"], status["armed"], status["deadman"]) == (0, 1, 0)
        await regs.run(regs.programs.write_group("risk", {"deadman_us": 0}))

    log = _run(bench, f"deadman_{cycles_per_us}_{timeout_us}", dut)
    beats = [row[0] for row in log if row[8]]
    first_blocked = next(row for row in log if row[1] and row[2])
    last_beat = max(b for b in beats if b < first_blocked[0])
    cycles = first_blocked[0] - last_beat
    print(f"dead-man {timeout_us} us at {cycles_per_us} cycles/us: heartbeat to first blocked ladder "
          f"{cycles} cycles (timeout {timeout} cycles)")
    assert cycles == timeout + 3
    assert first_blocked[3] == 1  # flagged: the dead-man timer's kill
    # nothing was blocked while the heartbeats came
    assert not any(row[1] and row[2] for row in log if row[0] < first_blocked[0])


@pytest.mark.parametrize("bad", [0, -200, 1.5, 200.0, True, "200", None])
def test_cycles_per_us_must_be_a_positive_integer(bad):
    with inspected_only(), pytest.raises(ValueError, match="cycles_per_us must be a positive integer"):
        NanoquoteTop(cycles_per_us=bad)
    with pytest.raises(ValueError, match="cycles_per_us must be a positive integer"):
        deadman_cycles(1, bad)
