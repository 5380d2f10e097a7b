"""Test support for the register block and the top in ``amaranth.sim``.

* :class:`RegisterFileReference`: a small transaction-level model of the register
  file's bus semantics, written from the conventions in ``nanoquote.hw.contract.register_map`` and
  nothing else (no gateware import), used as the independent expectation.
* :class:`RegisterBlockHarness`: the AXI4-Lite slave and the register block, wired,
  with the block reachable as ``harness.rb`` for driving its inputs.
* :func:`simulate`: run testbenches, with a VCD when ``NANOQUOTE_VCD_DIR`` is set.
* :func:`test_seed`: the seed of a randomized test (``NANOQUOTE_SEED`` overrides).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In
from amaranth.sim import Simulator
from nanoquote.host.device.bus import Resp
from nanoquote.hw.contract.register_map import Access, Register, RegisterMap
from nanoquote.hw.gateware.axil import AxiLiteRegisterSlave, AxiLiteSignature
from nanoquote.hw.gateware.register_block import RegisterBlock

__all__ = ["RegisterFileReference", "RegisterBlockHarness", "simulate", "test_seed", "strobe_mask",
           "AccessError", "AsyncRegisters", "expected_ladder"]

#: Staged-value rules of a commit, restated from the ``CONTROL.commit`` documentation.
_COMMIT_RULES = (("TICK", "tick", 1, None), ("SPREAD", "base_spread", 1, None),
                 ("ORDER", "order_size", 1, None), ("ORDER", "num_levels", 1, "max_levels"))


def strobe_mask(strobe: int) -> int:
    return sum(0xFF << (8 * i) for i in range(4) if strobe >> i & 1)


def test_seed(default: int) -> int:
    return int(os.environ.get("NANOQUOTE_SEED", default))


test_seed.__test__ = False  # not a pytest test


class RegisterFileReference:
    """What every access must answer and change, from the register map alone.

    ``ro`` holds the current value of every sourced read-only register (the test sets
    it as it drives the block's inputs); ``busy`` the refusal input of each write-pulse
    register; ``pulses`` collects ``(register, written value)`` of accepted pulse writes.
    """

    def __init__(self, rmap: RegisterMap) -> None:
        self.map = rmap
        self.live: dict[str, int] = {}
        self.staged: dict[str, int] = {}
        self.ro: dict[str, int] = {}
        self.snapshots: dict[str, int] = {}
        self.busy: dict[str, bool] = {}
        self.pulses: list[tuple[str, int]] = []
        for reg in rmap:
            if reg.access in (Access.RW, Access.W1C):
                self.live[reg.name] = reg.reset
                if reg.staged:
                    self.staged[reg.name] = reg.reset
            elif reg.access is Access.RO and reg.group != "id":
                self.ro[reg.name] = 0
            elif reg.access is Access.WP:
                self.busy[reg.name] = False

    def flag(self, name: str) -> None:
        self.live["ERRORS"] |= self.map["ERRORS"].field(name).mask

    def _error(self, resp: Resp) -> Resp:
        self.flag("bus_error")
        return resp

    def staged_valid(self) -> bool:
        for rname, fname, low, high in _COMMIT_RULES:
            value = self.map[rname].unpack(self.staged[rname])[fname]
            high = self.map.max_levels if high == "max_levels" else high
            if value < low or (high is not None and value > high):
                return False
        return True

    def read(self, address: int) -> tuple[Resp, int]:
        found = self.map.at(address)
        if found is None:
            return self._error(Resp.DECERR), 0
        reg, word = found
        if reg.access is Access.WP:
            value = 0
        elif reg.access is Access.RO and reg.group == "id":
            value = reg.reset
        elif reg.access is Access.RO:
            if word == 0:
                value = self.snapshots[reg.name] = self.ro[reg.name]
            else:
                value = self.snapshots.get(reg.name, self.ro[reg.name])
        else:
            value = self.live[reg.name]
        return Resp.OKAY, (value >> (32 * word)) & 0xFFFFFFFF

    def write(self, address: int, value: int, strobe: int = 0xF) -> Resp:
        found = self.map.at(address)
        if found is None:
            return self._error(Resp.DECERR)
        reg, word = found
        written = value & strobe_mask(strobe)
        if reg.access is Access.RO or written & ~reg.word_mask(word):
            return self._error(Resp.SLVERR)
        shift = 32 * word
        if reg.access is Access.W1C:
            self.live[reg.name] &= ~(written << shift)
        elif reg.access is Access.WP:
            if self.busy[reg.name]:
                return self._error(Resp.SLVERR)
            commit = reg.name == "CONTROL" and written & reg.field("commit").mask
            if commit and not self.staged_valid():
                self.flag("commit_rejected")
                return self._error(Resp.SLVERR)
            self.pulses.append((reg.name, written))
            if commit:
                self.live.update(self.staged)
        else:
            store = self.staged if reg.staged else self.live
            mask = strobe_mask(strobe) << shift
            store[reg.name] = (store[reg.name] & ~mask) | (written << shift)
        return Resp.OKAY

    def register(self, name: str) -> Register:
        return self.map[name]


class RegisterBlockHarness(wiring.Component):
    """``AxiLiteRegisterSlave`` + ``RegisterBlock`` behind one ``axil`` port."""

    def __init__(self, rmap: RegisterMap, addr_width: int = 12) -> None:
        self.rb = RegisterBlock(rmap, addr_width=addr_width)
        self.slave = AxiLiteRegisterSlave(addr_width)
        super().__init__({"axil": In(AxiLiteSignature(addr_width))})

    def elaborate(self, platform):  # noqa: ARG002
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


class AccessError(AssertionError):
    """A register access answered an error response in a test that expected OKAY."""


class AsyncRegisters:
    """Registers by name over an async bus (``AxiLiteSimMaster``), for testbenches.

    Mirrors the host's ``Device`` (whole multi-word registers, field packing) without
    its blocking bus, so a testbench can configure and drive the top as the host would.
    """

    def __init__(self, bus, rmap: RegisterMap) -> None:
        self.bus = bus
        self.map = rmap

    async def read(self, name: str) -> int:
        reg = self.map[name]
        value = 0
        for i, address in enumerate(reg.addresses):
            resp, word = await self.bus.read(address)
            if resp != Resp.OKAY:
                raise AccessError(f"read of {name} word {i} answered {Resp(resp).name}")
            value |= word << (32 * i)
        return value

    async def read_fields(self, name: str) -> dict[str, int]:
        return self.map[name].unpack(await self.read(name))

    async def write(self, name: str, value: int) -> None:
        reg = self.map[name]
        for i, address in enumerate(reg.addresses):
            resp = await self.bus.write(address, (value >> (32 * i)) & 0xFFFFFFFF)
            if resp != Resp.OKAY:
                raise AccessError(f"write of {name} word {i} answered {Resp(resp).name}")

    async def write_fields(self, name: str, **fields: int) -> None:
        await self.write(name, self.map[name].pack(**fields))

    async def pulse(self, *fields: str, name: str = "CONTROL") -> None:
        await self.write_fields(name, **{f: 1 for f in fields})

    async def configure(self, params) -> None:
        """Write a ``PipelineParams`` into the staged registers (by field name) and commit."""
        values = params.as_dict()
        for reg in self.map:
            if reg.group == "config":
                await self.write_fields(reg.name, **{f.name: values[f.name] for f in reg.fields})
        await self.pulse("commit")

    async def set_inventory(self, position: int, live_bid_qty: int = 0, live_ask_qty: int = 0) -> None:
        await self.write_fields("POSITION", position=position)
        await self.write_fields("LIVE_BID_QTY", live_bid_qty=live_bid_qty)
        await self.write_fields("LIVE_ASK_QTY", live_ask_qty=live_ask_qty)
        await self.pulse("commit")

    async def submit(self, ts: int, bid: int | None, ask: int | None) -> None:
        await self.write("BOOK_TS", ts)
        await self.write("BOOK_BID", bid or 0)
        await self.write("BOOK_ASK", ask or 0)
        await self.write_fields("BOOK_SUBMIT", has_bid=bid is not None, has_ask=ask is not None)

    async def ladder(self, polls: int = 50) -> dict:
        """Poll ``LADDER_STATUS.valid`` and read the captured ladder (all levels)."""
        for _ in range(polls):
            status = await self.read_fields("LADDER_STATUS")
            if status["valid"]:
                break
        else:
            raise AccessError(f"no ladder after {polls} polls")
        mask = await self.read_fields("LADDER_MASK")
        levels = range(self.map.max_levels)
        return {
            **status, **mask,
            "bid_price": tuple([await self.read(f"LADDER_BID{i}") for i in levels]),
            "ask_price": tuple([await self.read(f"LADDER_ASK{i}") for i in levels]),
        }

    async def quote(self, ts: int, bid: int | None, ask: int | None) -> dict:
        await self.submit(ts, bid, ask)
        return await self.ladder()


def expected_ladder(config, book, position: int, live_bid_qty: int, live_ask_qty: int,
                    max_levels: int, price_bits: int) -> dict:
    """The golden ``build_ladder`` in the shape of :meth:`AsyncRegisters.ladder` (no refresh)."""
    from nanoquote.host.strategy.quoting import build_ladder

    lad = build_ladder(config, book, position, live_bid_qty, live_ask_qty, price_max=(1 << price_bits) - 1)

    def side(prices):
        padded = list(prices) + [None] * (max_levels - len(prices))
        return tuple(p or 0 for p in padded), sum(1 << i for i, p in enumerate(padded) if p is not None)

    bid_price, bid_post = side(lad.bids)
    ask_price, ask_post = side(lad.asks)
    return {"valid": 1, "no_mid": int(lad.mid is None), "crossed": int(lad.crossed),
            "bid_count": lad.bid_count, "ask_count": lad.ask_count, "out_of_domain": lad.out_of_domain,
            "bid_post": bid_post, "ask_post": ask_post, "bid_price": bid_price, "ask_price": ask_price}
