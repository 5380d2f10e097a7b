"""The quote engine on the ECP5-5G Evaluation Board: host link, register block, pipeline, LEDs.

:class:`BoardCore` is everything clocked by the design clock: the UART (the FT2232H's
second channel), the :class:`~nanoquote.hw.gateware.host_link.HostLink` (frames to
AXI4-Lite accesses), the :class:`~nanoquote.hw.gateware.top.NanoquoteTop` and the LED
drivers. It is what the simulators run (with a small ``cycles_per_bit``, so a bit-level
UART simulation is quick). The top's stream ports are tied off as a register-only
deployment: the market-data stream ``i`` is idle (``valid`` low) and the ladder stream
``o`` is always ready, so every update comes from the register quote path and every
ladder is captured into the ``LADDER_*`` registers.

:class:`BoardTop` adds the board: the 12 MHz oscillator through an EHXPLLL to the design
clock, the reset pushbutton and the PLL's lock through a reset synchroniser, the UART
pins and the LEDs. Every frequency comes from one definition, :data:`BOARD_CLOCK`
(:class:`BoardClock`): the PLL's dividers, the UART's cycles per bit and the dead-man
timer's cycles per microsecond (120 at 120 MHz, not the 200 MHz build's); nextpnr derives
the design clock's constraint from the oscillator pin's through the PLL (the board build
checks that it is the design clock).

LEDs (the board's eight, active low; index as in the board's LED resource): 0 heartbeat
(about 1 Hz), 1 armed, 2 killed, 3 a frame was executed, 4 a frame was refused (each of
the last two lit for about 50 ms), 7 the PLL is locked.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from nanoquote.hw.contract.coefficients import clock_cycles_per_us
from nanoquote.hw.contract.link import FRAME_TIMEOUT_BITS
from nanoquote.hw.gateware.host_link import HostLink
from nanoquote.hw.gateware.top import NanoquoteTop
from nanoquote.hw.gateware.uart import UARTRx, UARTTx

__all__ = ["BoardClock", "PllSettings", "BOARD_CLOCK", "SIM_CYCLES_PER_BIT", "pll_settings", "BoardCore",
           "BoardTop"]

#: The ECP5 PLL's limits (EHXPLLL): phase detector input, VCO and output frequency, Hz.
PFD_RANGE = (3.125e6, 400e6)
VCO_RANGE = (400e6, 800e6)
OUT_RANGE = (3.125e6, 400e6)
#: Largest baud error the link accepts (the receiver samples mid-bit: a few % would do).
MAX_BAUD_ERROR = 0.005


@dataclass(frozen=True)
class PllSettings:
    clki_div: int
    clkfb_div: int
    clkop_div: int
    input_hz: float

    @property
    def output_hz(self) -> float:
        return self.input_hz / self.clki_div * self.clkfb_div

    @property
    def vco_hz(self) -> float:
        return self.output_hz * self.clkop_div


def pll_settings(input_hz: float, output_hz: float) -> PllSettings:
    """EHXPLLL dividers (feedback from CLKOP) that make exactly ``output_hz`` from ``input_hz``.

    Of the exact settings, the one with the VCO nearest the middle of its range.
    """
    best = None
    for clki in range(1, 129):
        pfd = input_hz / clki
        if not PFD_RANGE[0] <= pfd <= PFD_RANGE[1]:
            continue
        for fb in range(1, 81):
            if abs(pfd * fb - output_hz) > 1e-3:
                continue
            for op in range(1, 129):
                vco = output_hz * op
                if VCO_RANGE[0] <= vco <= VCO_RANGE[1]:
                    cost = abs(vco - sum(VCO_RANGE) / 2)
                    if best is None or cost < best[0]:
                        best = (cost, PllSettings(clki, fb, op, input_hz))
    if best is None or not OUT_RANGE[0] <= output_hz <= OUT_RANGE[1]:
        raise ValueError(f"no EHXPLLL setting makes {output_hz / 1e6:g} MHz from {input_hz / 1e6:g} MHz")
    return best[1]


@dataclass(frozen=True)
class BoardClock:
    """The board's one clock definition: oscillator, design clock and link baud rate."""

    oscillator_hz: float = 12e6
    design_hz: float = 120e6
    baud: int = 3_000_000

    @property
    def pll(self) -> PllSettings:
        return pll_settings(self.oscillator_hz, self.design_hz)

    @property
    def cycles_per_us(self) -> int:
        """Design clock cycles a microsecond (the dead-man timer's); the design clock must be
        a whole number of MHz (ValueError otherwise, no rounding)."""
        return clock_cycles_per_us(self.design_hz)

    @property
    def cycles_per_bit(self) -> int:
        return round(self.design_hz / self.baud)

    @property
    def baud_error(self) -> float:
        """Relative error of the UART's bit time against ``baud``."""
        return self.design_hz / self.cycles_per_bit / self.baud - 1

    def check(self) -> None:
        if abs(self.baud_error) > MAX_BAUD_ERROR:
            raise ValueError(f"{self.design_hz / 1e6:g} MHz / {self.cycles_per_bit} is "
                             f"{self.baud_error:+.2%} off {self.baud} baud")


#: The board build: 12 MHz oscillator, 120 MHz design clock (120 cycles a microsecond), 3 Mbaud
#: (40 cycles per bit).
BOARD_CLOCK = BoardClock()
#: Cycles per bit of the simulated board (a bit-level UART simulation stays quick).
SIM_CYCLES_PER_BIT = 8


class BoardCore(wiring.Component):
    """UART pins, host link, quote engine and LEDs in the ``sync`` domain.

    Ports: ``rx`` (the UART's receive pin, asynchronous: synchronised here), ``tx``,
    ``leds`` (active high; the board top inverts), ``receiving`` and ``busy`` (the
    link's state, for a simulation harness). ``timeout_bits``: the link's receiver timeout
    (a test may shorten it). ``clock``: the design clock the core runs at; the dead-man
    timer counts its ``cycles_per_us`` (the simulators run the board's clock: only the
    UART's ``cycles_per_bit`` is theirs).
    """

    def __init__(self, cycles_per_bit: int, max_levels: int = 8, price_bits: int = 31, *,
                 addr_width: int = 12, heartbeat_bit: int = 26, flash_cycles: int = 6_000_000,
                 timeout_bits: int = FRAME_TIMEOUT_BITS, clock: BoardClock = BOARD_CLOCK) -> None:
        self.cycles_per_bit = cycles_per_bit
        self.clock = clock
        self.top = NanoquoteTop(max_levels=max_levels, price_bits=price_bits, addr_width=addr_width,
                                cycles_per_us=clock.cycles_per_us)
        self.link = HostLink(cycles_per_bit, addr_width, timeout_bits=timeout_bits)
        self.heartbeat_bit = heartbeat_bit
        self.flash_cycles = flash_cycles
        self.LATENCY = self.top.LATENCY
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "leds": Out(5),
            "receiving": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.top = top = self.top
        m.submodules.link = link = self.link
        m.submodules.uart_rx = rx = UARTRx(self.cycles_per_bit)
        m.submodules.uart_tx = tx = UARTTx(self.cycles_per_bit)

        rx_sync = Signal(2, init=0b11, reset_less=True)
        m.d.sync += rx_sync.eq((rx_sync << 1) | self.rx)
        m.d.comb += [
            rx.rx.eq(rx_sync[1]),
            link.rx_data.eq(rx.data), link.rx_valid.eq(rx.valid), link.rx_error.eq(rx.error),
            link.rx_busy.eq(rx.busy),
            tx.data.eq(link.tx_data), tx.valid.eq(link.tx_valid), link.tx_ready.eq(tx.ready),
            self.tx.eq(tx.tx),
            self.receiving.eq(link.receiving),
            self.busy.eq(link.busy | ~tx.ready),
        ]
        wiring.connect(m, link.axil, top.axil)
        # a register-only deployment: no stream input, every ladder taken
        m.d.comb += [top.i.valid.eq(0), top.o.ready.eq(1)]

        heartbeat = Signal(self.heartbeat_bit + 1)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        flashes = []
        for event in (link.frames, link.rejected):
            timer = Signal(range(self.flash_cycles + 1))
            with m.If(event):
                m.d.sync += timer.eq(self.flash_cycles)
            with m.Elif(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            flashes.append(timer != 0)
        leds = Signal(5)
        m.d.sync += leds.eq(Cat(heartbeat[-1], top.armed, top.killed, flashes[0], flashes[1]))
        m.d.comb += self.leds.eq(leds)
        return m


class BoardTop(wiring.Component):
    """The board's top level (elaborated by the board's platform; see the module docstring)."""

    def __init__(self, clock: BoardClock = BOARD_CLOCK, max_levels: int = 8, price_bits: int = 31) -> None:
        clock.check()
        self.clock = clock
        self.core = BoardCore(clock.cycles_per_bit, max_levels, price_bits,
                              heartbeat_bit=max(1, round(clock.design_hz).bit_length() - 1),
                              flash_cycles=round(clock.design_hz / 20), clock=clock)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        pll = self.clock.pll
        clk12 = platform.request("clk12", 0)
        button = platform.request("rst", 0)
        uart = platform.request("uart", 0)
        leds = [platform.request("led", i) for i in range(8)]

        m.domains.sync = ClockDomain("sync")
        locked = Signal()
        mhz = f"{self.clock.design_hz / 1e6:g}"
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{self.clock.oscillator_hz / 1e6:g}",
            a_FREQUENCY_PIN_CLKOP=mhz,
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=pll.clki_div, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=pll.clkop_div,
            p_CLKOP_CPHASE=pll.clkop_div - 1, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=pll.clkfb_div,
            i_RST=0, i_STDBY=0, i_CLKI=clk12.i, o_CLKOP=ClockSignal("sync"), i_CLKFB=ClockSignal("sync"),
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked,
        )
        # nextpnr derives the design clock's constraint from the oscillator's (the board's
        # platform constrains the clk12 pin) through the EHXPLLL's dividers

        # reset: the pushbutton or no lock, synchronised to the design clock (released
        # synchronously, two flip-flops after the cause goes)
        m.domains.por = ClockDomain("por", reset_less=True)
        m.d.comb += ClockSignal("por").eq(ClockSignal("sync"))
        hold = Signal(2, init=0b11)
        m.d.por += hold.eq(Cat(~locked | button.i, hold[0]))
        m.d.comb += ResetSignal("sync").eq(hold[1])

        m.submodules.core = core = self.core
        m.d.comb += [core.rx.eq(uart.rx.i), uart.tx.o.eq(core.tx)]
        for i in range(5):
            m.d.comb += leds[i].o.eq(core.leds[i])
        m.d.comb += [leds[5].o.eq(0), leds[6].o.eq(0), leds[7].o.eq(locked)]
        return m
