"""cocotb testbench of QuotePipeline (run under Verilator by ``verilator_backend``).

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

from .codec import PortCodec
from .scenario import Scoreboard

__all__ = ["TB", "ScenarioFile", "Port"]


class Port:
    """Whole-port reads and writes of a handle, for the once-per-clock loop.

    Goes to cocotb's simulator handle directly: for wide ports ``int(binary string)`` is
    twice as fast as building a ``LogicArray``, and one-bit reads are ~50x faster. Writes
    behave as ``handle.value = v`` does under Verilator, where cocotb trusts inertial
    writes and applies them at once (``COCOTB_TRUST_INERTIAL_WRITES``, set by the runner).
    Falls back to ``.value`` if the private handle is missing.
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


class TB:
    """Clock, reset and the driver/monitor/scoreboard loop for one scenario."""

    def __init__(self, dut: Any, scenario: ScenarioFile) -> None:
        self.dut = dut
        self.scenario = scenario
        self.codec = PortCodec(scenario.max_levels, scenario.price_bits)
        self.scoreboard = Scoreboard(scenario.expected, self.codec)
        self.rng = random.Random(scenario.seed)
        self.cycles = 0
        Clock(dut.clk, 10, unit="ns").start()

    async def reset(self) -> None:
        dut = self.dut
        dut.rst.value = 1
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        for _ in range(2):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    def _set_ports(self, cfg: int, position: int, live_bid: int, live_ask: int, armed: bool) -> None:
        dut = self.dut
        dut.cfg.value = cfg
        dut.position.value = position & 0xFFFF
        dut.live_bid_qty.value = live_bid
        dut.live_ask_qty.value = live_ask
        dut.armed.value = int(armed)

    async def run(self) -> None:
        """Play every segment, then drain; each iteration is one clock."""
        dut, sc, rng, board = self.dut, self.scenario, self.rng, self.scoreboard
        clk = RisingEdge(dut.clk)
        i_valid, i_payload, i_ready = Port(dut.i__valid), Port(dut.i__payload), Port(dut.i__ready)
        o_valid, o_payload, o_ready = Port(dut.o__valid), Port(dut.o__payload), Port(dut.o__ready)
        idle, stall = sc.idle, sc.stall
        valid_now = ready_now = False  # last values written (writes cost more than compares)
        offered = None
        total = len(sc.expected)
        segments, seg_idx = sc.segments, -1
        pending: list[int] = []
        pos = 0
        quiet = 0  # cycles since the last output; a hung pipeline ends the run
        while quiet < 10_000:
            if offered is None:  # pick what to offer this cycle
                while pos >= len(pending) and seg_idx + 1 < len(segments):
                    seg_idx += 1
                    self._set_ports(*segments[seg_idx][:5])
                    pending, pos = segments[seg_idx][5], 0
                if pos < len(pending) and not (idle and rng.random() < idle):
                    offered = pending[pos]
                    i_payload.set(offered)
                if (offered is not None) != valid_now:
                    valid_now = not valid_now
                    i_valid.set(int(valid_now))
            ready = not (stall and rng.random() < stall)
            if ready != ready_now:
                ready_now = ready
                o_ready.set(int(ready))
            await clk
            self.cycles += 1
            if offered is not None and i_ready.get():
                offered = None
                pos += 1
            if ready and o_valid.get():
                board.push(o_payload.get())
                quiet = 0
            else:
                quiet += 1
            inputs_done = offered is None and pos >= len(pending) and seg_idx + 1 >= len(segments)
            if inputs_done and board.received >= total:
                break
        i_valid.set(0)
        board.finish()


@cocotb.test()
async def pipeline_scenario(dut: Any) -> None:
    """Play the scenario file and compare every ladder with the golden expectation."""
    with open(os.environ["NANOQUOTE_SCENARIO"], "rb") as f:
        scenario: ScenarioFile = pickle.load(f)
    tb = TB(dut, scenario)
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
