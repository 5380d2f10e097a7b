"""cocotb testbench of ``NanoquoteTop`` under Verilator, with cocotbext-axi's ``AxiLiteMaster``.

:class:`TopBench` binds the clock, reset, the AXI4-Lite master (Amaranth joins port names
with ``__``: ``AxiLiteBus.from_prefix(dut, "axil", bus_separator="__")``) and the two
streams; the build's parameters (and so its register map) come from the device's BUILD
register, read by :meth:`TopBench.reset`. The tests below are run from pytest by
``tests/sim/testbenches/test_cocotb_top.py`` through :func:`nanoquote.sim.verilator.run_cocotb`.
Expectations come from the register map data and the golden model
(``nanoquote.host.strategy.quoting.build_ladder``).
"""

from __future__ import annotations

import logging
import os
import random
from types import SimpleNamespace

import cocotb
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.triggers import ClockCycles, Event, ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiProt, AxiResp
from cocotbext.axi.axil_master import AxiLiteWriteRespCmd
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.hw.contract.coefficients import CYCLES_PER_US, PipelineParams
from nanoquote.hw.contract.register_map import Access, register_map
from nanoquote.hw.gateware.layouts import ladder_out_layout, market_update_layout
from nanoquote.sim.testbenches.amaranth_support import expected_ladder
from nanoquote.sim.testbenches.bench_registers import BenchRegisters

__all__ = ["TopBench", "CONTIGUOUS_STROBES", "CLOCK_PERIOD_NS"]

#: The clock period of the benches, in ns.
CLOCK_PERIOD_NS = 5

#: Byte strobe -> (first byte, byte count) for strobes the master issues as one write.
CONTIGUOUS_STROBES = {s: (o, n) for o in range(4) for n in range(1, 5 - o) for s in [((1 << n) - 1) << o]}


class TopBench:
    """Clock, reset, AXI4-Lite master and stream drivers around the top.

    ``max_levels``, ``price_bits`` and ``rmap`` describe the build once :meth:`reset` has
    read its BUILD register; until then ``rmap`` is the default map, used only to find
    BUILD (whose address and fields are the same in every build). Register accesses go
    through cocotbext-axi's master, a manager independent of the Verilator server's C++
    harness (``sim/servers/axil_harness.cpp``).
    """

    def __init__(self, dut) -> None:
        self.dut = dut
        self.rmap = register_map()
        self.max_levels = self.rmap.max_levels
        self.price_bits = self.rmap.price_bits
        logging.getLogger("cocotb").setLevel(os.environ.get("COCOTB_LOG_LEVEL", "WARNING"))
        cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
        dut.i__valid.value = 0
        dut.i__payload.value = 0
        dut.o__ready.value = 1
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "axil", bus_separator="__"), dut.clk, dut.rst)
        self.addr_width = len(dut.axil__awaddr)

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)
        # The parameters and register map of this build, latency included, from the device itself.
        build = self.rmap["BUILD"].unpack((await self.read32(self.rmap["BUILD"].address))[1])
        self.max_levels, self.price_bits = build["max_levels"], build["price_bits"]
        self.rmap = register_map(self.max_levels, self.price_bits, build["latency"])
        # registers by name, through the host's access programs
        self.regs = BenchRegisters(SimpleNamespace(read=self.read32, write=self.write32, idle=self.idle),
                                   self.rmap)

    # -- register access (the loopback protocol's operations) ----------------------------------

    async def read32(self, address: int) -> tuple[int, int]:
        result = await self.axil.read(address, 4)
        return int(result.resp), int.from_bytes(result.data, "little")

    async def write32(self, address: int, value: int, strobe: int = 0xF) -> int:
        if strobe in CONTIGUOUS_STROBES:
            first, count = CONTIGUOUS_STROBES[strobe]
            data = value.to_bytes(4, "little")[first:first + count]
            return int((await self.axil.write(address + first, data)).resp)
        return await self._write_strobed(address, value, strobe)

    async def _write_strobed(self, address: int, value: int, strobe: int) -> int:
        """One write with any ``wstrb`` (none, or not contiguous), which ``write`` cannot issue.

        Uses the write interface's channels and response bookkeeping directly
        (cocotbext-axi 0.1.28 internals: queue a response command, send AW and W).
        """
        wr = self.axil.write_if
        event = Event()
        wr.in_flight_operations += 1
        wr._idle.clear()
        await wr.int_write_resp_command_queue.put(AxiLiteWriteRespCmd(address, 4, 1, AxiProt.NONSECURE, event))
        aw = wr.aw_channel._transaction_obj()
        aw.awaddr, aw.awprot = address, AxiProt.NONSECURE
        w = wr.w_channel._transaction_obj()
        w.wdata, w.wstrb = value, strobe
        await wr.aw_channel.send(aw)
        await wr.w_channel.send(w)
        await event.wait()
        return int(event.data.resp)

    async def idle(self, cycles: int) -> None:
        if cycles > 0:
            await ClockCycles(self.dut.clk, cycles)


@cocotb.test()
async def reset_values(dut):
    """Every register reads its reset value (sourced read-only ones: the idle state)."""
    tb = TopBench(dut)
    await tb.reset()
    await tb.idle(40)
    for reg in tb.rmap:
        value = await tb.regs.read(reg.name)
        expect = 0 if reg.access is Access.WP else reg.reset
        if reg.name == "STATUS":
            expect = reg.pack(settled=1)
        assert value == expect, f"{reg.name}: {value:#x}, expected {expect:#x}"


@cocotb.test()
async def error_responses(dut):
    """DECERR for unmapped words, SLVERR for read-only and reserved bits, W1C, byte strobes."""
    tb = TopBench(dut)
    await tb.reset()
    rmap = tb.rmap
    rng = random.Random(int(os.environ.get("NANOQUOTE_SEED", "5")))
    mapped = {a for r in rmap for a in r.addresses}
    holes = [a for a in range(0, 1 << tb.addr_width, 4) if a not in mapped]
    for address in rng.sample(holes, 12):
        assert await tb.read32(address) == (AxiResp.DECERR, 0), hex(address)
        assert await tb.write32(address, 0xFFFFFFFF) == AxiResp.DECERR, hex(address)
    for name in ("MAGIC", "STATUS", "LADDER_STATUS", "COUNT_UPDATES", "LAST_QUOTE_TIME"):
        before = await tb.regs.read(name)
        assert await tb.write32(rmap[name].address, 0) == AxiResp.SLVERR, name
        assert await tb.regs.read(name) == before, name
    book_bid = rmap["BOOK_BID"]
    reserved = ~book_bid.word_mask(0) & 0xFFFFFFFF
    assert await tb.write32(book_bid.address, reserved) == AxiResp.SLVERR
    assert await tb.write32(book_bid.address, reserved | 0x1234, 0b0111) == AxiResp.OKAY  # bit not strobed
    assert await tb.regs.read("BOOK_BID") == 0x1234
    errors = rmap["ERRORS"]
    assert (await tb.regs.read_fields("ERRORS"))["bus_error"] == 1
    assert await tb.write32(errors.address, errors.field("bus_error").mask) == AxiResp.OKAY
    assert await tb.regs.read("ERRORS") == 0
    scratch = rmap["SCRATCH"].address
    value = 0x11223344
    assert await tb.write32(scratch, value) == AxiResp.OKAY
    for strobe in range(16):
        mask = sum(0xFF << (8 * b) for b in range(4) if strobe >> b & 1)
        assert await tb.write32(scratch, 0xA5C3E187 ^ strobe, strobe) == AxiResp.OKAY
        value = value & ~mask | (0xA5C3E187 ^ strobe) & mask
        assert (await tb.read32(scratch)) == (AxiResp.OKAY, value), f"strobe {strobe:#x}"
    # a commit of the reset configuration (tick 0, ...) is refused and changes nothing
    assert await tb.write32(rmap["CONTROL"].address, rmap["CONTROL"].pack(commit=1)) == AxiResp.SLVERR
    assert await tb.regs.read_fields("ERRORS") == {"bus_error": 1, "commit_rejected": 1, "out_of_domain": 0,
                                              "crossed": 0, "deadman": 0}


@cocotb.test()
async def quote_round_trip(dut):
    """Configure, arm and quote through registers; the ladders equal the golden model's."""
    tb = TopBench(dut)
    await tb.reset()
    rng = random.Random(int(os.environ.get("NANOQUOTE_SEED", "9")))
    for config in (MarketMakerConfig(), MarketMakerConfig(quote_policy="legacy", num_levels=tb.rmap.max_levels,
                                                          inventory_skew_factor=0.3, tick_size=5)):
        await tb.regs.configure(PipelineParams.from_config(config, tb.price_bits))
        await tb.regs.write_fields("CONTROL", arm=1)
        for step in range(6):
            position = rng.randint(-config.max_inventory - 5, config.max_inventory + 5)
            await tb.regs.write_fields("POSITION", position=position)
            await tb.regs.write_fields("LIVE_BID_QTY", live_bid_qty=rng.randrange(20))
            await tb.regs.write_fields("LIVE_ASK_QTY", live_ask_qty=0)
            await tb.regs.write_fields("CONTROL", commit=1)
            live_bid = await tb.regs.read("LIVE_BID_QTY")
            bid = rng.randrange(1, 3_000_000)
            book = BookUpdate(step * 10**8, bid, bid + rng.randrange(1, 100))
            got = await tb.regs.quote(book.ts, book.best_bid, book.best_ask)
            want = expected_ladder(config, book, position, live_bid, 0, tb.rmap.max_levels, tb.price_bits)
            assert {k: got[k] for k in want} == want, f"{config} {book} position {position}"
        # six since the last soft reset
        assert await tb.regs.read("COUNT_UPDATES") == await tb.regs.read("COUNT_LADDERS") == 6
        await tb.regs.write_fields("CONTROL", soft_reset=1)
        assert await tb.regs.read("COUNT_UPDATES") == await tb.regs.read("LADDER_STATUS") == 0


@cocotb.test()
async def stream_with_backpressure(dut):
    """Updates on ``i`` at full rate with random ``o.ready``: every ladder, in order, golden."""
    tb = TopBench(dut)
    await tb.reset()
    rng = random.Random(int(os.environ.get("NANOQUOTE_SEED", "13")))
    config = MarketMakerConfig(num_levels=min(4, tb.rmap.max_levels))
    await tb.regs.configure(PipelineParams.from_config(config, tb.price_bits))
    await tb.regs.write_fields("CONTROL", arm=1)
    await tb.idle(30)
    upd_layout = market_update_layout(tb.price_bits)
    lad_layout = ladder_out_layout(tb.rmap.max_levels, tb.price_bits)
    updates = []
    for n in range(200):
        bid = rng.randrange(1, 5_000_000)
        updates.append({"ts": n * 7, "bid": bid, "ask": bid + rng.randrange(-3, 200), "has_bid": rng.random() < 0.95,
                        "has_ask": rng.random() < 0.95})
    got: Queue = Queue()

    async def monitor():
        dut = tb.dut
        while True:  # values settled after an edge are the ones the next edge samples
            await RisingEdge(dut.clk)
            await ReadOnly()
            if int(dut.o__valid.value) and int(dut.o__ready.value):
                got.put_nowait(lad_layout.from_bits(int(dut.o__payload.value)))

    async def toggle_ready():
        while True:
            tb.dut.o__ready.value = int(rng.random() < 0.6)
            await RisingEdge(tb.dut.clk)

    async def drive():
        dut = tb.dut
        for upd in updates:
            dut.i__payload.value = upd_layout.const({k: int(v) for k, v in upd.items()}).as_value().value
            dut.i__valid.value = 1
            await ReadOnly()
            while not int(dut.i__ready.value):
                await RisingEdge(dut.clk)
                await ReadOnly()
            await RisingEdge(dut.clk)
        dut.i__valid.value = 0

    cocotb.start_soon(monitor())
    cocotb.start_soon(toggle_ready())
    await drive()
    for n, upd in enumerate(updates):
        lad = await got.get()
        book = BookUpdate(upd["ts"], upd["bid"] if upd["has_bid"] else None, upd["ask"] if upd["has_ask"] else None)
        want = expected_ladder(config, book, 0, 0, 0, tb.rmap.max_levels, tb.price_bits)
        have = {"valid": 1, "no_mid": lad.no_mid, "crossed": lad.crossed, "bid_count": lad.bid_count,
                "ask_count": lad.ask_count, "out_of_domain": lad.out_of_domain, "bid_post": lad.bid_post,
                "ask_post": lad.ask_post,
                "bid_price": tuple(lad.bid_price[i] for i in range(tb.rmap.max_levels)),
                "ask_price": tuple(lad.ask_price[i] for i in range(tb.rmap.max_levels)),
                "killed": lad.killed, "deadman": lad.deadman, "size_blocked": lad.size_blocked}
        assert lad.ts == upd["ts"], f"ladder {n}: ts {lad.ts} != {upd['ts']}"
        assert have == want, f"ladder {n}: {book}"
    await tb.idle(20)
    assert got.empty(), "more ladders than updates"
    assert await tb.regs.read("COUNT_UPDATES") == await tb.regs.read("COUNT_LADDERS") == len(updates)


@cocotb.test()
async def kill_and_deadman(dut):
    """docs/spec.md §8.2-§8.3 from random register start values: a kill blocks the ladder;
    re-armed, with a 1 us dead-man timeout and no heartbeat the device kills itself."""
    tb = TopBench(dut)
    await tb.reset()
    config = MarketMakerConfig(refresh_interval_ns=0)
    await tb.regs.configure(PipelineParams.from_config(config, tb.price_bits))
    await tb.regs.write_fields("CONTROL", arm=1)
    book = BookUpdate(10, 100000, 100050)
    got = await tb.regs.quote(book.ts, book.best_bid, book.best_ask)
    assert got["bid_post"] and not got["killed"]
    await tb.regs.write_fields("CONTROL", kill=1)
    got = await tb.regs.quote(book.ts, book.best_bid, book.best_ask)
    assert (got["killed"], got["deadman"], got["bid_post"], got["ask_post"]) == (1, 0, 0, 0)
    await tb.regs.write_fields("CONTROL", rearm=1)
    await tb.regs.run(tb.regs.programs.write_group("risk", {"deadman_us": 1}))
    await tb.idle(CYCLES_PER_US + 10)
    status = await tb.regs.read_fields("STATUS")
    assert (status["killed"], status["deadman"], status["armed"]) == (1, 1, 0), status
    got = await tb.regs.quote(book.ts, book.best_bid, book.best_ask)
    assert (got["killed"], got["deadman"], got["bid_post"]) == (1, 1, 0)
    assert await tb.regs.read("COUNT_KILL_BLOCKED") == 1 and await tb.regs.read("COUNT_DEADMAN_BLOCKED") == 1
