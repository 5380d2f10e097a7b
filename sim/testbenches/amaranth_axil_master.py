"""An AXI4-Lite manager for Amaranth async testbenches, cycle-accurate.

The register-block, top-level and simulator-server benches drive the ``axil`` port
through it; seeded stalls vary the handshake order (AW before W, W before AW, both
together, B and R back-pressure).
"""

from __future__ import annotations

import random

from amaranth.hdl import Cat

__all__ = ["CLOCK_PERIOD", "AxiLiteTimeout", "AxiLiteSimMaster"]

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
