"""Test support for the register block and the top in ``amaranth.sim``.

* :class:`RegisterBlockHarness`: the AXI4-Lite slave and the register block, wired,
  with the block reachable as ``harness.rb`` for driving its inputs.
* :func:`simulate`: run testbenches, with a VCD when ``NANOQUOTE_VCD_DIR`` is set.
* :func:`test_seed`: the seed of a randomized test (``NANOQUOTE_SEED`` overrides).
* :func:`inspected_only`: components made only to look at their attributes, without the
  "created but never used" warnings Amaranth gives when they are collected.
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from amaranth.hdl import Module, UnusedElaboratable
from amaranth.lib import wiring
from amaranth.lib.wiring import In
from amaranth.sim import Simulator
from nanoquote.hw.contract.register_map import RegisterMap
from nanoquote.hw.gateware.axil import AxiLiteRegisterSlave, AxiLiteSignature
from nanoquote.hw.gateware.register_block import RegisterBlock

__all__ = ["RegisterBlockHarness", "simulate", "test_seed", "inspected_only", "expected_ladder"]


def test_seed(default: int) -> int:
    return int(os.environ.get("NANOQUOTE_SEED", default))


test_seed.__test__ = False  # not a pytest test


@contextmanager
def inspected_only() -> Iterator[None]:
    """Components made in the block and dropped by its end are not elaborated on purpose:
    their ``UnusedElaboratable`` warnings (given when they are collected, so otherwise in
    whichever test runs then) are not shown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        yield
        gc.collect()


class RegisterBlockHarness(wiring.Component):
    """``AxiLiteRegisterSlave`` + ``RegisterBlock`` behind one ``axil`` port."""

    def __init__(self, rmap: RegisterMap, addr_width: int = 12) -> None:
        self.rb = RegisterBlock(rmap, addr_width=addr_width)
        self.slave = AxiLiteRegisterSlave(addr_width)
        super().__init__({"axil": In(AxiLiteSignature(addr_width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.slave = self.slave
        m.submodules.rb = self.rb
        wiring.connect(m, self.slave.regs, self.rb.bus)
        wiring.connect(m, wiring.flipped(self.axil), self.slave.axil)
        return m


def simulate(dut, benches: Iterable[Callable], processes: Iterable[Callable] = (), *,
             name: str = "sim", period: float = 5e-9) -> None:
    """Run async testbenches (and background processes) on ``dut``."""
    sim = Simulator(dut)
    sim.add_clock(period)
    for bench in benches:
        sim.add_testbench(bench)
    for process in processes:
        sim.add_process(process)
    vcd_dir = os.environ.get("NANOQUOTE_VCD_DIR")
    if vcd_dir:
        Path(vcd_dir).mkdir(parents=True, exist_ok=True)
        writer = sim.write_vcd(str(Path(vcd_dir) / f"{name}.vcd"))
    else:
        writer = nullcontext()
    with writer:
        sim.run()


def expected_ladder(config, book, position: int, live_bid_qty: int, live_ask_qty: int,
                    max_levels: int, price_bits: int) -> dict:
    """The golden ladder (``build_ladder`` and the size limit of docs/spec.md §8, see
    ``nanoquote.sim.conformance.reference``) in the shape of
    :meth:`~nanoquote.sim.testbenches.bench_registers.BenchRegisters.ladder` (no refresh)."""
    from nanoquote.sim.conformance.reference import golden_ladder

    lad = golden_ladder(config, book, position, live_bid_qty, live_ask_qty, max_levels, (1 << price_bits) - 1)
    return {"valid": 1, "no_mid": int(lad.no_mid), "crossed": int(lad.crossed),
            "bid_count": lad.bid_count, "ask_count": lad.ask_count, "out_of_domain": lad.out_of_domain,
            "bid_post": lad.bid_post, "ask_post": lad.ask_post, "bid_price": lad.bid_price,
            "ask_price": lad.ask_price, "killed": 0, "deadman": 0, "size_blocked": int(lad.size_blocked)}
