"""An 18x18 multiply with registered inputs and output: a MULT18X18D on ECP5.

Yosys maps ``a * b`` to a MULT18X18D but leaves its internal registers unused, so a
fabric flip-flop feeds the DSP and another takes its product: two routed hops around the
multiplier. That barely reaches the 200 MHz target on an otherwise empty ECP5 and misses
it inside the pipeline, where the routes are longer. With the DSP's input and output
registers (this component) only the route from the DSP output register to its consumer
is left on the fabric timing. docs/performance.md has the measured figures.

The behaviour is the same everywhere: the operands are registered on clocks with
``en_in`` high, and ``p`` takes their product on clocks with ``en_out`` high (both high:
``p`` is ``a * b`` of two clocks earlier). Two enables let the input register be the
last register of one pipeline stage and the output register the next stage's, each
with its stage's advance condition. Under ``nanoquote build`` (``platform.family == "ecp5"``) it is
an instance of the primitive; elsewhere (the Amaranth simulator, Verilator) it is the
equivalent pair of registers, so the conformance tests check the same cycle behaviour.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RegisteredMultiplier"]

#: clocks from ``a``/``b`` to ``p``
LATENCY = 2


class RegisteredMultiplier(wiring.Component):
    """``p = a * b`` through an input register (``en_in``) and an output register (``en_out``).

    Parameters
    ----------
    a_width, b_width : int
        Operand widths, at most 18 each.
    signed_ : bool
        Both operands are two's complement (the product is then signed).
    input_register : bool
        With ``False`` the operand registers are bypassed (``en_in`` unused): the DSP
        multiplies fabric registers routed to it, for a producer whose logic would
        otherwise sit in front of the DSP's input register.
    output_register : bool
        With ``False`` the DSP's output register is bypassed (``en_out`` unused): ``p`` is
        the product of the registered operands one clock after them, for a consumer that
        registers it in the fabric next to its own logic.
    b_register : bool or None
        Register ``b`` (on ``en_in``) whether or not ``a`` is: for a coefficient operand
        that changes rarely, so its route into the DSP leaves the per-update timing.
        Default: as ``input_register``.
    site : str or None
        nextpnr BEL of the primitive (e.g. ``"X49/Y34/MULT18_0"``), see ``floorplan``.
    """

    LATENCY = LATENCY

    def __init__(self, a_width: int = 18, b_width: int = 18, *, signed_: bool = False,
                 input_register: bool = True, output_register: bool = True, b_register: bool | None = None,
                 site: str | None = None) -> None:
        if not (1 <= a_width <= 18 and 1 <= b_width <= 18):
            self._MustUse__silence = True  # never elaborated: no "unused" warning
            raise ValueError(f"operands must be 1..18 bits, got {a_width} and {b_width}")
        if not (input_register or output_register):
            self._MustUse__silence = True
            raise ValueError("a RegisteredMultiplier needs its input or its output register")
        self.signed = signed_
        self.input_register = input_register
        self.output_register = output_register
        self.site = site
        self.b_register = input_register if b_register is None else b_register
        self.latency = int(input_register) + int(output_register)
        shape = signed if signed_ else unsigned
        super().__init__({
            "a": In(shape(a_width)), "b": In(shape(b_width)),
            "en_in": In(1, init=1), "en_out": In(1, init=1),
            "p": Out(shape(a_width + b_width)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        if getattr(platform, "family", None) == "ecp5":
            self._primitive(m)
            return m
        a_q, b_q = self.a, self.b
        if self.input_register:
            a_q = Signal.like(self.a, reset_less=True)
            with m.If(self.en_in):
                m.d.sync += a_q.eq(self.a)
        if self.b_register:
            b_q = Signal.like(self.b, reset_less=True)
            with m.If(self.en_in):
                m.d.sync += b_q.eq(self.b)
        if self.output_register:
            with m.If(self.en_out):
                m.d.sync += self.p.eq(a_q * b_q)
        else:
            m.d.comb += self.p.eq(a_q * b_q)
        return m

    def _primitive(self, m: Module) -> None:
        # operands extended to 18 bits (sign-extended when signed), product truncated
        a = Signal(18)
        b = Signal(18)
        p = Signal(36)
        m.d.comb += [a.eq(self.a), b.eq(self.b), self.p.eq(p)]
        sign = int(self.signed)
        ports = {f"i_A{k}": a[k] for k in range(18)}
        ports |= {f"i_B{k}": b[k] for k in range(18)}
        ports |= {f"i_C{k}": 0 for k in range(18)}
        ports |= {f"o_P{k}": p[k] for k in range(36)}
        input_clk = "CLK0" if self.input_register else "NONE"
        placement = {"a_BEL": self.site} if self.site else {}
        m.submodules.mult = Instance(
            "MULT18X18D", **placement,
            p_REG_INPUTA_CLK=input_clk, p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
            p_REG_INPUTB_CLK="CLK0" if self.b_register else "NONE", p_REG_INPUTB_CE="CE0",
            p_REG_INPUTB_RST="RST0",
            p_REG_OUTPUT_CLK="CLK0" if self.output_register else "NONE",
            p_REG_OUTPUT_CE="CE1", p_REG_OUTPUT_RST="RST0",
            p_REG_PIPELINE_CLK="NONE", p_REG_INPUTC_CLK="NONE",
            p_GSR="DISABLED", p_RESETMODE="SYNC",
            i_CLK0=ClockSignal(), i_CE0=self.en_in, i_CE1=self.en_out, i_RST0=0,
            i_SIGNEDA=sign, i_SIGNEDB=sign, i_SOURCEA=0, i_SOURCEB=0,
            **ports)
