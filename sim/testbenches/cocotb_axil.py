"""A lean AXI4-Lite manager for cocotb: one transaction at a time, signals driven directly.

cocotbext-axi's ``AxiLiteMaster`` runs a coroutine per channel with queues and events
between them, which costs about a hundred microseconds of Python per transaction; the
Verilator server performs every register access of a session, so it drives the port
itself: AW and W together with ``bready`` high, AR with ``rready`` high, one awaited
clock edge per cycle (and an idle of many cycles is one timer, not an edge each). Handshakes are sampled at the edge, as cocotbext-axi samples them
(a signal read right after ``RisingEdge`` holds the value the edge sampled). Any byte
strobe is issued as is.
"""

from __future__ import annotations

from cocotb.triggers import RisingEdge, Timer

__all__ = ["LeanAxiLiteMaster"]


class LeanAxiLiteMaster:
    """The ``<prefix>__*`` AXI4-Lite port of ``dut`` (Amaranth's port names), clocked by ``dut.clk``."""

    def __init__(self, dut, prefix: str = "axil", max_cycles: int = 1000) -> None:
        def port(name: str):
            return getattr(dut, f"{prefix}__{name}")

        self.clk = dut.clk
        self.edge = RisingEdge(dut.clk)
        self.max_cycles = max_cycles
        self.awaddr, self.awvalid, self.awready = port("awaddr"), port("awvalid"), port("awready")
        self.wdata, self.wstrb, self.wvalid, self.wready = port("wdata"), port("wstrb"), port("wvalid"), port("wready")
        self.bvalid, self.bready, self.bresp = port("bvalid"), port("bready"), port("bresp")
        self.araddr, self.arvalid, self.arready = port("araddr"), port("arvalid"), port("arready")
        self.rvalid, self.rready, self.rresp, self.rdata = port("rvalid"), port("rready"), port("rresp"), port("rdata")
        for name in ("awprot", "arprot"):
            if hasattr(dut, f"{prefix}__{name}"):
                port(name).value = 0
        for signal in (self.awvalid, self.wvalid, self.bready, self.arvalid, self.rready):
            signal.value = 0

    async def write(self, address: int, value: int, strobe: int = 0xF) -> int:
        """One write; its ``bresp``."""
        self.awaddr.value, self.wdata.value, self.wstrb.value = address, value, strobe
        self.awvalid.value = self.wvalid.value = self.bready.value = 1
        aw_wait = w_wait = True
        for _ in range(self.max_cycles):
            await self.edge
            if aw_wait and int(self.awready.value):
                aw_wait, self.awvalid.value = False, 0
            if w_wait and int(self.wready.value):
                w_wait, self.wvalid.value = False, 0
            if not (aw_wait or w_wait) and int(self.bvalid.value):
                self.bready.value = 0
                return int(self.bresp.value)
        raise TimeoutError(f"write of {address:#06x} got no response in {self.max_cycles} cycles")

    async def read(self, address: int) -> tuple[int, int]:
        """One read; ``(rresp, rdata)``."""
        self.araddr.value = address
        self.arvalid.value = self.rready.value = 1
        ar_wait = True
        for _ in range(self.max_cycles):
            await self.edge
            if ar_wait and int(self.arready.value):
                ar_wait, self.arvalid.value = False, 0
            if int(self.rvalid.value):
                self.rready.value = 0
                return int(self.rresp.value), int(self.rdata.value)
        raise TimeoutError(f"read of {address:#06x} got no response in {self.max_cycles} cycles")

    async def idle(self, cycles: int, period_ns: float) -> None:
        """Let ``cycles`` clock edges pass, from an edge (where every transaction ends):
        a timer to the middle of the last cycle, then that edge."""
        if cycles > 1:
            await Timer((cycles - 1) * period_ns + period_ns / 2, unit="ns")
        if cycles > 0:
            await self.edge
