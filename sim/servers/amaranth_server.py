"""Serve the device simulated by ``amaranth.sim`` on a loopback port.

The server process elaborates :class:`~nanoquote.hw.gateware.top.NanoquoteTop`, runs it in
:class:`amaranth.sim.Simulator` and, from an async testbench, answers the wire protocol
of :mod:`nanoquote.host.device.bus`: each read or write is a cycle-accurate AXI4-Lite
transaction on the top's ``axil`` port (:class:`AxiLiteSimMaster`), ``OP_IDLE`` runs
clock cycles, ``OP_CLOSE`` ends the simulation. The ladder stream's ``ready`` is tied
high and the market-data stream is idle (a register-only deployment).

From another process::

    from nanoquote.sim.servers.amaranth_server import start_amaranth_server
    with start_amaranth_server(max_levels=8) as server:
        bus = server.connect()          # a SocketBus
        ...
        bus.close()                     # ends the server

or ``python -m nanoquote.sim.servers.amaranth_server [--max-levels N] [--vcd out.vcd]``, which
prints ``NANOQUOTE_PORT <port>`` and serves. ``NANOQUOTE_VCD=<path>`` also records a
waveform.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Sequence
from contextlib import nullcontext

from amaranth.hdl import Cat
from amaranth.sim import Simulator
from nanoquote.sim.servers.server_process import (
    SimServer,
    announce_port,
    launch,
    listen,
    serve_requests,
)

__all__ = ["AxiLiteSimMaster", "AxiLiteTimeout", "serve", "start_amaranth_server", "main"]

#: Clock period of the simulation (5 ns: the 200 MHz target).
CLOCK_PERIOD = 5e-9


class AxiLiteTimeout(RuntimeError):
    """The slave did not complete a transaction within the cycle limit."""


class AxiLiteSimMaster:
    """An AXI4-Lite manager for Amaranth async testbenches, cycle-accurate.

    ``stall`` in 0..1 is the probability, per channel and cycle, of holding a ``valid``
    back or of not being ``ready`` (seeded through ``rng``), to vary handshake timing:
    AW before W, W before AW, both together, B and R back-pressure.
    """

    def __init__(self, ctx, port, *, rng: random.Random | None = None, stall: float = 0.0,
                 max_cycles: int = 1000) -> None:
        self.ctx = ctx
        self.port = port
        self.rng = rng or random.Random(0)
        self.stall = stall
        self.max_cycles = max_cycles
        self.cycles = 0  # clock cycles spent in transactions
        p = port
        # Grouped request and status values for the stall-free path (one set or get each).
        self._w_request = Cat(p.awaddr, p.awvalid, p.wdata, p.wstrb, p.wvalid, p.bready)
        self._ar_request = Cat(p.araddr, p.arvalid, p.rready)
        self._w_status = Cat(p.awready, p.wready, p.bvalid, p.bresp)
        self._r_status = Cat(p.arready, p.rvalid, p.rresp, p.rdata)

    def _delay(self) -> int:
        if not self.stall:
            return 0
        delay = 0
        while self.rng.random() < self.stall and delay < 8:
            delay += 1
        return delay

    async def _fast_write(self, address: int, value: int, strobe: int) -> int:
        # No stalls: AW and W together, ``bready`` held high. Every ``ctx.set`` makes the
        # simulator settle the whole design, so the request is one assignment.
        ctx, p = self.ctx, self.port
        aw, dw = len(p.awaddr), len(p.wdata)
        ctx.set(self._w_request, address | 1 << aw | value << (aw + 1) | strobe << (aw + 1 + dw)
                | 1 << (aw + 1 + dw + dw // 8) | 1 << (aw + 2 + dw + dw // 8))
        aw_done = w_done = False
        for cycle in range(self.max_cycles):
            status = ctx.get(self._w_status)
            aw_ready, w_ready, b_valid, b_resp = status & 1, status >> 1 & 1, status >> 2 & 1, status >> 3
            await ctx.tick()
            if (aw_ready and not aw_done) or (w_ready and not w_done):
                aw_done, w_done = aw_done or aw_ready, w_done or w_ready
                ctx.set(p.awvalid, not aw_done)
                ctx.set(p.wvalid, not w_done)
            if b_valid:
                self.cycles += cycle + 1
                return b_resp
        raise AxiLiteTimeout(f"write of {address:#06x} got no response in {self.max_cycles} cycles")

    async def _fast_read(self, address: int) -> tuple[int, int]:
        ctx, p = self.ctx, self.port
        ctx.set(self._ar_request, address | 1 << len(p.araddr) | 1 << (len(p.araddr) + 1))
        ar_done = False
        for cycle in range(self.max_cycles):
            status = ctx.get(self._r_status)
            ar_ready, r_valid, r_resp, r_data = status & 1, status >> 1 & 1, status >> 2 & 3, status >> 4
            await ctx.tick()
            if ar_ready and not ar_done:
                ar_done = True
                ctx.set(p.arvalid, 0)
            if r_valid:
                self.cycles += cycle + 1
                return r_resp, r_data
        raise AxiLiteTimeout(f"read of {address:#06x} got no response in {self.max_cycles} cycles")

    async def write(self, address: int, value: int, strobe: int = 0xF) -> int:
        """One write; returns ``bresp``."""
        if not self.stall:
            return await self._fast_write(address, value, strobe)
        ctx, p = self.ctx, self.port
        aw_at, w_at, b_at = self._delay(), self._delay(), self._delay()
        ctx.set(p.awaddr, address)
        ctx.set(p.awprot, 0)
        ctx.set(p.wdata, value)
        ctx.set(p.wstrb, strobe)
        ctx.set(p.bready, 0)
        aw_wait = w_wait = True
        for cycle in range(self.max_cycles):
            if aw_wait and cycle == aw_at:
                ctx.set(p.awvalid, 1)
            if w_wait and cycle == w_at:
                ctx.set(p.wvalid, 1)
            if cycle == b_at:
                ctx.set(p.bready, 1)
            aw_done = aw_wait and cycle >= aw_at and ctx.get(p.awready)
            w_done = w_wait and cycle >= w_at and ctx.get(p.wready)
            b_done = cycle >= b_at and ctx.get(p.bvalid)
            resp = ctx.get(p.bresp) if b_done else 0
            await ctx.tick()
            if aw_done:
                aw_wait = False
                ctx.set(p.awvalid, 0)
            if w_done:
                w_wait = False
                ctx.set(p.wvalid, 0)
            if b_done:
                ctx.set(p.bready, 0)
                self.cycles += cycle + 1
                return resp
        raise AxiLiteTimeout(f"write of {address:#06x} got no response in {self.max_cycles} cycles")

    async def read(self, address: int) -> tuple[int, int]:
        """One read; returns ``(rresp, rdata)``."""
        if not self.stall:
            return await self._fast_read(address)
        ctx, p = self.ctx, self.port
        ar_at, r_at = self._delay(), self._delay()
        ctx.set(p.araddr, address)
        ctx.set(p.arprot, 0)
        ctx.set(p.rready, 0)
        ar_wait = True
        for cycle in range(self.max_cycles):
            if ar_wait and cycle == ar_at:
                ctx.set(p.arvalid, 1)
            if cycle == r_at:
                ctx.set(p.rready, 1)
            ar_done = ar_wait and cycle >= ar_at and ctx.get(p.arready)
            r_done = cycle >= r_at and ctx.get(p.rvalid)
            if r_done:
                resp, data = ctx.get(p.rresp), ctx.get(p.rdata)
            await ctx.tick()
            if ar_done:
                ar_wait = False
                ctx.set(p.arvalid, 0)
            if r_done:
                ctx.set(p.rready, 0)
                self.cycles += cycle + 1
                return resp, data
        raise AxiLiteTimeout(f"read of {address:#06x} got no response in {self.max_cycles} cycles")

    async def idle(self, cycles: int) -> None:
        if cycles > 0:
            await self.ctx.tick().repeat(cycles)
            self.cycles += cycles


def serve(dut, listener, *, vcd: str | None = None, announce: bool = False) -> None:
    """Simulate ``dut`` (a component with an ``axil`` port) serving ``listener`` until closed.

    With ``announce``, the port marker is printed once the design has elaborated, so a
    design that fails to elaborate never looks like a listening server.
    """
    sim = Simulator(dut)
    sim.add_clock(CLOCK_PERIOD)
    addr_width = len(dut.axil.awaddr)

    async def testbench(ctx):
        if hasattr(dut, "o"):
            ctx.set(dut.o.ready, 1)  # register-only deployment: nobody back-pressures ladders
        master = AxiLiteSimMaster(ctx, dut.axil)
        await ctx.tick().repeat(2)
        await serve_requests(listener, master.read, master.write, master.idle, addr_width)

    sim.add_testbench(testbench)
    if announce:
        announce_port(listener)
    vcd = vcd or os.environ.get("NANOQUOTE_VCD")
    with sim.write_vcd(vcd) if vcd else nullcontext():
        sim.run()


def build_design(max_levels: int, price_bits: int, addr_width: int):
    from nanoquote.hw.gateware.top import NanoquoteTop

    return NanoquoteTop(max_levels=max_levels, price_bits=price_bits, addr_width=addr_width)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-levels", type=int, default=8)
    parser.add_argument("--price-bits", type=int, default=31)
    parser.add_argument("--addr-width", type=int, default=12)
    parser.add_argument("--vcd", default=None, help="write a waveform to this file")
    parser.add_argument("--accept-timeout", type=float, default=600.0,
                        help="give up when no client connects for this many seconds")
    args = parser.parse_args(argv)
    dut = build_design(args.max_levels, args.price_bits, args.addr_width)
    listener = listen(args.accept_timeout)
    with listener:
        serve(dut, listener, vcd=args.vcd, announce=True)
    return 0


def start_amaranth_server(max_levels: int = 8, price_bits: int = 31, *, addr_width: int = 12,
                          vcd: str | None = None, timeout: float = 120.0) -> SimServer:
    """Run the Amaranth-simulated device in a subprocess; returns ``(process, port)``."""
    argv = [sys.executable, "-m", "nanoquote.sim.servers.amaranth_server", "--max-levels", str(max_levels),
            "--price-bits", str(price_bits), "--addr-width", str(addr_width)]
    if vcd:
        argv += ["--vcd", vcd]
    return launch(argv, timeout=timeout)


if __name__ == "__main__":
    sys.exit(main())
