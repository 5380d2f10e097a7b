"""Out-of-context wrapper: measure a component's register-to-register timing on a real part.

The quote engine has far more ports (a ladder of 2 x 8 prices, AXI4-Lite, the market
data stream) than the 205 user pins of a CABGA381 package, and unregistered top-level
ports would put I/O pads on its timing paths. :class:`OutOfContext` gives the design five
pins instead and keeps every bit of it observable, so synthesis removes nothing:

* every input port of the wrapped component is driven by one bit of a shift register
  ``in_sr`` that shifts in ``si`` every clock: each input is a flip-flop output;
* every output port is captured in a register ``out_q`` (as the consumer of the port
  would register it) and folded into a serial signature register
  ``out_sr[i] <= out_sr[i + 1] ^ out_q[i]``, read on ``so``: every output bit reaches the
  pin, through one 2-input XOR per bit and no high-fanout control net;
* ``rst_n`` (active low, asynchronous pushbutton) is synchronised by two flip-flops and
  becomes the synchronous reset of the ``sync`` domain, as a board's reset would be.

So the timing report covers: the component's internal register-to-register paths, the
paths from its inputs (driven by ``in_sr`` flip-flops) and the paths to its outputs
(captured by ``out_q``). The wrapper's own paths are one LUT deep.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, ClockDomain, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["OutOfContext", "PortCount", "port_count"]


@dataclass(frozen=True)
class PortCount:
    """Port bits of a component and the flip-flops the wrapper adds for them."""

    inputs: int
    outputs: int

    @property
    def wrapper_ffs(self) -> int:
        # in_sr + out_q + out_sr + the two-stage reset synchroniser
        return self.inputs + 2 * self.outputs + 2

    @property
    def wrapper_luts(self) -> int:
        # one XOR per out_sr bit but the last
        return max(self.outputs - 1, 0)


def _ports(component: wiring.Component) -> tuple[list[Value], list[Value]]:
    inputs, outputs = [], []
    for _path, member, value in component.signature.flatten(component):
        (inputs if member.flow == wiring.In else outputs).append(Value.cast(value))
    return inputs, outputs


def port_count(component: wiring.Component) -> PortCount:
    inputs, outputs = _ports(component)
    return PortCount(sum(len(v) for v in inputs), sum(len(v) for v in outputs))


class OutOfContext(wiring.Component):
    """Wrap ``dut`` (in the ``sync`` domain) behind five pins; see the module docstring.

    Parameters
    ----------
    dut : wiring.Component
        The design to measure. Its ``sync`` domain is driven by ``clk`` and ``rst_n``.
    """

    def __init__(self, dut: wiring.Component) -> None:
        self.dut = dut
        self.ports = port_count(dut)
        super().__init__({"clk": In(1), "rst_n": In(1), "si": In(1), "so": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = self.dut

        m.domains.sync = cd_sync = ClockDomain("sync")
        m.domains.ooc = cd_ooc = ClockDomain("ooc", reset_less=True)
        m.d.comb += [cd_sync.clk.eq(self.clk), cd_ooc.clk.eq(self.clk)]

        rst_sync = Signal(2, init=0b11)
        m.d.ooc += rst_sync.eq(Cat(~self.rst_n, rst_sync[0]))
        m.d.comb += cd_sync.rst.eq(rst_sync[1])

        inputs, outputs = _ports(self.dut)
        if inputs:
            in_sr = Signal(self.ports.inputs)
            m.d.ooc += in_sr.eq(Cat(self.si, in_sr[:-1]))
            m.d.comb += Cat(*inputs).eq(in_sr)
        if outputs:
            out_q = Signal(self.ports.outputs)
            out_sr = Signal(self.ports.outputs)
            m.d.ooc += [out_q.eq(Cat(*outputs)), out_sr.eq((out_sr >> 1) ^ out_q)]
            m.d.comb += self.so.eq(out_sr[0])
        else:
            m.d.comb += self.so.eq(0)
        return m
