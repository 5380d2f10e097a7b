"""AXI4-Lite: the bus signature and a slave that turns it into register requests.

The signature is flat (``awaddr``, ``awvalid``, ... as in the AXI specification) so that
Amaranth's port names (``axil__awaddr``) bind directly to cocotbext-axi's
``AxiLiteBus.from_prefix(dut, "axil", bus_separator="__")``.

:class:`AxiLiteRegisterSlave` accepts one write and one read at a time (independently of
each other). Every ``valid`` it drives comes from a register and never depends on the
corresponding ``ready``; AW and W may arrive in either order or in the same cycle. Each
accepted access becomes a one-cycle strobe on a :class:`RegisterPortSignature` interface;
the register block answers with an acknowledge (any number of cycles later) carrying the
AXI response code and, for reads, the data. Request fields are held stable from the
strobe until the acknowledge.

Timing: the strobe comes the cycle after the (last) handshake, ``bvalid``/``rvalid``
the cycle after the acknowledge. With :class:`~nanoquote.hw.gateware.register_block.RegisterBlock`
(read acknowledge two cycles after the strobe, write acknowledge three cycles after) a
read takes 4 cycles from ``arvalid`` to ``rvalid`` and a write 5 from ``awvalid`` and
``wvalid`` to ``bvalid``.
"""

from __future__ import annotations

from enum import IntEnum

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxiResp", "AxiLiteSignature", "RegisterPortSignature", "AxiLiteRegisterSlave"]


class AxiResp(IntEnum):
    """AXI response codes (``bresp``/``rresp``)."""

    OKAY = 0
    EXOKAY = 1
    SLVERR = 2
    DECERR = 3


class AxiLiteSignature(wiring.Signature):
    """An AXI4-Lite port, seen from the manager (the slave uses ``In(AxiLiteSignature())``).

    Parameters
    ----------
    addr_width : int
        Byte address width.
    data_width : int
        32 or 64.
    """

    def __init__(self, addr_width: int = 12, data_width: int = 32) -> None:
        if data_width not in (32, 64):
            raise ValueError(f"AXI4-Lite data width must be 32 or 64, got {data_width}")
        if addr_width < 3:
            raise ValueError(f"address width must be at least 3, got {addr_width}")
        self._addr_width = addr_width
        self._data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width),
            "awprot": Out(3),
            "awvalid": Out(1),
            "awready": In(1),
            "wdata": Out(data_width),
            "wstrb": Out(data_width // 8),
            "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2),
            "bvalid": In(1),
            "bready": Out(1),
            "araddr": Out(addr_width),
            "arprot": Out(3),
            "arvalid": Out(1),
            "arready": In(1),
            "rdata": In(data_width),
            "rresp": In(2),
            "rvalid": In(1),
            "rready": Out(1),
        })

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def data_width(self) -> int:
        return self._data_width

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __hash__(self) -> int:
        return hash((type(self), self._addr_width, self._data_width))

    def __repr__(self) -> str:
        return f"AxiLiteSignature(addr_width={self._addr_width}, data_width={self._data_width})"


class RegisterPortSignature(wiring.Signature):
    """Single-word register requests, seen from the bus side (the initiator).

    ``w_stb``/``r_stb`` pulse for one cycle per access; ``*_addr`` is the *word* address
    (byte address without its two low bits); ``w_data``/``w_strb``/``*_addr`` hold until
    the matching ``*_ack``, which carries ``*_resp`` (an :class:`AxiResp`) and ``r_data``.
    """

    def __init__(self, addr_width: int = 12) -> None:
        self._addr_width = addr_width
        word = addr_width - 2
        super().__init__({
            "w_stb": Out(1),
            "w_addr": Out(word),
            "w_data": Out(32),
            "w_strb": Out(4),
            "w_ack": In(1),
            "w_resp": In(2),
            "r_stb": Out(1),
            "r_addr": Out(word),
            "r_ack": In(1),
            "r_data": In(32),
            "r_resp": In(2),
        })

    @property
    def addr_width(self) -> int:
        return self._addr_width

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.addr_width == self.addr_width

    def __hash__(self) -> int:
        return hash((type(self), self._addr_width))

    def __repr__(self) -> str:
        return f"RegisterPortSignature(addr_width={self._addr_width})"


class AxiLiteRegisterSlave(wiring.Component):
    """AXI4-Lite slave (32-bit data) to :class:`RegisterPortSignature` bridge.

    Ports
    -----
    axil : ``In(AxiLiteSignature(addr_width))``
        The AXI4-Lite slave port. ``awprot``/``arprot`` are ignored; the two low address
        bits are ignored (accesses are word accesses, byte lanes chosen by ``wstrb``).
    regs : ``Out(RegisterPortSignature(addr_width))``
        Requests to the register block.
    """

    def __init__(self, addr_width: int = 12) -> None:
        self.addr_width = addr_width
        super().__init__({
            "axil": In(AxiLiteSignature(addr_width, 32)),
            "regs": Out(RegisterPortSignature(addr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        bus, regs = self.axil, self.regs
        word = self.addr_width - 2

        # -- write: hold AW and W independently, issue once both are here -------------------
        aw_full = Signal()
        w_full = Signal()
        w_busy = Signal()  # a strobe was issued and awaits its acknowledge
        aw_addr = Signal(word)
        w_data = Signal(32)
        w_strb = Signal(4)
        bvalid = Signal()
        bresp = Signal(2)

        m.d.comb += [
            bus.awready.eq(~aw_full),
            bus.wready.eq(~w_full),
            bus.bvalid.eq(bvalid),
            bus.bresp.eq(bresp),
            regs.w_addr.eq(aw_addr),
            regs.w_data.eq(w_data),
            regs.w_strb.eq(w_strb),
            regs.w_stb.eq(aw_full & w_full & ~w_busy & ~bvalid),
        ]
        with m.If(bus.awvalid & ~aw_full):
            m.d.sync += [aw_full.eq(1), aw_addr.eq(bus.awaddr[2:])]
        with m.If(bus.wvalid & ~w_full):
            m.d.sync += [w_full.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]
        with m.If(regs.w_stb):
            m.d.sync += w_busy.eq(1)
        with m.If(w_busy & regs.w_ack):
            m.d.sync += [
                w_busy.eq(0), aw_full.eq(0), w_full.eq(0),
                bvalid.eq(1), bresp.eq(regs.w_resp),
            ]
        with m.If(bvalid & bus.bready):
            m.d.sync += bvalid.eq(0)

        # -- read ----------------------------------------------------------------------------
        ar_full = Signal()
        r_busy = Signal()
        ar_addr = Signal(word)
        rvalid = Signal()
        rdata = Signal(32)
        rresp = Signal(2)

        m.d.comb += [
            bus.arready.eq(~ar_full),
            bus.rvalid.eq(rvalid),
            bus.rdata.eq(rdata),
            bus.rresp.eq(rresp),
            regs.r_addr.eq(ar_addr),
            regs.r_stb.eq(ar_full & ~r_busy & ~rvalid),
        ]
        with m.If(bus.arvalid & ~ar_full):
            m.d.sync += [ar_full.eq(1), ar_addr.eq(bus.araddr[2:])]
        with m.If(regs.r_stb):
            m.d.sync += r_busy.eq(1)
        with m.If(r_busy & regs.r_ack):
            m.d.sync += [
                r_busy.eq(0), ar_full.eq(0),
                rvalid.eq(1), rdata.eq(regs.r_data), rresp.eq(regs.r_resp),
            ]
        with m.If(rvalid & bus.rready):
            m.d.sync += rvalid.eq(0)
        return m
