"""cocotb testbench of QuotePipeline (run under Verilator by ``nanoquote.sim.conformance.verilator_runner``).

Scoreboard pattern: a driver offers the scenario's updates on ``i`` (idle cycles with a
seeded probability) and sets the ports of each segment as its first update is offered;
a back-pressure source drops ``o.ready`` at random; a monitor takes every ladder that
leaves ``o`` and a scoreboard compares it, in order, with the expected raw value
(golden model, computed before the simulation). One ``await`` per clock: at a rising
edge cocotb reads the values sampled by that edge, so the loop writes the next cycle's
inputs and then reads what the edge just took.

The scenario comes from the pickle named by ``NANOQUOTE_SCENARIO``; a JSON summary goes
to ``NANOQUOTE_RESULT``.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import time
from dataclasses import dataclass
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from nanoquote.sim.conformance.scenario import Scoreboard
from nanoquote.sim.port_codec import PortCodec

__all__ = ["PipelineBench", "ScenarioFile", "Port", "UpdateDriver", "LadderMonitor"]


class Port:
    """Whole-port reads and writes of a handle, for the once-per-clock loop.

    Goes to cocotb's simulator handle directly: for wide ports ``int(binary string)`` is
    faster than building a ``LogicArray``, and one-bit reads much more so (figures in
    docs/performance.md). Writes behave as ``handle.value = v`` does under Verilator,
    where cocotb trusts inertial writes and applies them at once
    (``COCOTB_TRUST_INERTIAL_WRITES``, set by ``nanoquote.sim.verilator.simulator_command``). Falls back to ``.value`` if
    the private handle is missing.
    """

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.width = len(handle)
        self.raw = getattr(handle, "_handle", None)

    def get(self) -> int:
        if self.raw is None:
            return int(self.handle.value.to_unsigned())
        if self.width == 1:
            return self.raw.get_signal_val_long()
        return int(self.raw.get_signal_val_binstr(), 2)

    def set(self, value: int) -> None:
        if self.raw is None:
            self.handle.value = value
        elif self.width <= 32:
            self.raw.set_signal_val_int(0, value)  # 0: deposit
        else:
            self.raw.set_signal_val_binstr(0, format(value, f"0{self.width}b"))


@dataclass
class ScenarioFile:
    """What the parent process hands the simulation."""

    max_levels: int
    price_bits: int
    #: per segment: (cfg raw, position, live_bid, live_ask, armed, [update raw, ...])
    segments: list[tuple[int, int, int, int, bool, list[int]]]
    expected: list[int]
    idle: float
    stall: float
    seed: int
    fail_on_mismatch: bool = True


class UpdateDriver:
    """Offers the scenario's updates on ``i``, idling with probability ``idle``; sets each
    segment's ports in the cycle its first update is offered."""

    def __init__(self, dut: Any, segments: list, idle: float, rng: random.Random) -> None:
        self.dut, self.segments, self.idle, self.rng = dut, segments, idle, rng
        self.valid, self.payload, self.ready = Port(dut.i__valid), Port(dut.i__payload), Port(dut.i__ready)
        self.seg_idx = -1
        self.pending: list[int] = []
        self.pos = 0
        self.offered: int | None = None
        self.valid_now = False  # last value written (writes cost more than compares)

    @property
    def done(self) -> bool:
        return self.offered is None and self.pos >= len(self.pending) and (
            self.seg_idx + 1 >= len(self.segments))

    def drive(self) -> None:
        """Before the clock edge: what to offer this cycle."""
        if self.offered is None:
            while self.pos >= len(self.pending) and self.seg_idx + 1 < len(self.segments):
                self.seg_idx += 1
                seg = self.segments[self.seg_idx]
                self._set_ports(*seg[:5])
                self.pending, self.pos = seg[5], 0
            if self.pos < len(self.pending) and not (self.idle and self.rng.random() < self.idle):
                self.offered = self.pending[self.pos]
                self.payload.set(self.offered)
            if (self.offered is not None) != self.valid_now:
                self.valid_now = not self.valid_now
                self.valid.set(int(self.valid_now))

    def sampled(self) -> None:
        """After the edge: was the offer taken?"""
        if self.offered is not None and self.ready.get():
            self.offered = None
            self.pos += 1

    def _set_ports(self, cfg: int, position: int, live_bid: int, live_ask: int, armed: bool) -> None:
        dut = self.dut
        dut.cfg.value = cfg
        dut.position.value = position & 0xFFFF
        dut.live_bid_qty.value = live_bid
        dut.live_ask_qty.value = live_ask
        dut.armed.value = int(armed)


class LadderMonitor:
    """Drops ``o.ready`` with probability ``stall``; takes every ladder that leaves ``o``."""

    def __init__(self, dut: Any, stall: float, rng: random.Random) -> None:
        self.stall, self.rng = stall, rng
        self.valid, self.payload, self.ready = Port(dut.o__valid), Port(dut.o__payload), Port(dut.o__ready)
        self.ready_now = False
        self.taking = False

    def drive(self) -> None:
        self.taking = not (self.stall and self.rng.random() < self.stall)
        if self.taking != self.ready_now:
            self.ready_now = self.taking
            self.ready.set(int(self.taking))

    def sampled(self) -> int | None:
        """After the edge: the ladder taken by it, if any."""
        return self.payload.get() if self.taking and self.valid.get() else None


class PipelineBench:
    """Clock, reset and the driver/monitor/scoreboard loop for one scenario."""

    def __init__(self, dut: Any, scenario: ScenarioFile) -> None:
        self.dut = dut
        self.scenario = scenario
        rng = random.Random(scenario.seed)
        self.codec = PortCodec(scenario.max_levels, scenario.price_bits)
        self.driver = UpdateDriver(dut, scenario.segments, scenario.idle, rng)
        self.monitor = LadderMonitor(dut, scenario.stall, rng)
        self.scoreboard = Scoreboard(scenario.expected, self.codec)
        self.cycles = 0
        Clock(dut.clk, 10, unit="ns").start()

    async def reset(self) -> None:
        dut = self.dut
        dut.rst.value = 1
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        dut.soft_reset.value = 0  # an input the conformance runs leave idle
        for _ in range(2):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def run(self) -> None:
        """Play every segment, then drain; each iteration is one clock."""
        clk = RisingEdge(self.dut.clk)
        driver, monitor, board = self.driver, self.monitor, self.scoreboard
        total = len(self.scenario.expected)
        quiet = 0  # cycles since the last ladder; a hung pipeline ends the run
        while quiet < 10_000 and not (driver.done and board.received >= total):
            driver.drive()
            monitor.drive()
            await clk
            self.cycles += 1
            driver.sampled()
            raw = monitor.sampled()
            if raw is None:
                quiet += 1
            else:
                board.push(raw)
                quiet = 0
        driver.valid.set(0)
        board.finish()


@cocotb.test()
async def pipeline_scenario(dut: Any) -> None:
    """Play the scenario file and compare every ladder with the golden expectation."""
    with open(os.environ["NANOQUOTE_SCENARIO"], "rb") as f:
        scenario: ScenarioFile = pickle.load(f)
    tb = PipelineBench(dut, scenario)
    await tb.reset()
    start = time.perf_counter()
    await tb.run()
    seconds = time.perf_counter() - start
    board = tb.scoreboard
    summary = {
        "expected": len(scenario.expected), "received": board.received,
        "mismatches": board.mismatches, "mismatched": board.mismatched,
        "reports": board.reports, "cycles": tb.cycles,
        "seconds": seconds, "seed": scenario.seed,
    }
    with open(os.environ["NANOQUOTE_RESULT"], "w") as f:
        json.dump(summary, f)
    if scenario.fail_on_mismatch:
        assert board.mismatches == 0, (
            f"{board.mismatches} mismatches (seed {scenario.seed}): " + " | ".join(board.reports))
