"""An 8N1 UART: a receiver and a transmitter at a fixed number of clock cycles per bit.

:class:`UARTRx` takes a synchronised line (the caller puts the pin through two
flip-flops), waits for a start bit, checks it again half a bit later and samples the
eight data bits (least significant first) and the stop bit in their middles. A byte
whose stop bit is low is reported as a framing error instead. ``busy`` is high from the
start bit's edge to the middle of the stop bit, so a caller can time how long the line
has been quiet.

:class:`UARTTx` sends a start bit, the eight data bits and a stop bit for each byte it
takes on a valid/ready handshake (``ready`` is high when it is idle); the line idles
high.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx"]


def _check(cycles_per_bit: int) -> None:
    if cycles_per_bit < 4:
        raise ValueError(f"a UART needs at least 4 clock cycles per bit, got {cycles_per_bit}")


class UARTRx(wiring.Component):
    """``rx`` (synchronised, idle high) to bytes: ``data`` with a one-cycle ``valid``, or
    a one-cycle ``error`` (framing error)."""

    def __init__(self, cycles_per_bit: int) -> None:
        _check(cycles_per_bit)
        self.cycles_per_bit = cycles_per_bit
        super().__init__({"rx": In(1, init=1), "data": Out(8), "valid": Out(1), "error": Out(1),
                          "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        bit = self.cycles_per_bit
        timer = Signal(range(bit + 1))
        shift = Signal(8)
        count = Signal(range(9))
        m.d.sync += [self.valid.eq(0), self.error.eq(0)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~self.rx):
                    m.d.sync += timer.eq(bit // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.comb += self.busy.eq(1)
                with m.If(timer == 0):
                    with m.If(self.rx):
                        m.next = "IDLE"  # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(bit - 1), count.eq(0)]
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                m.d.comb += self.busy.eq(1)
                with m.If(timer == 0):
                    m.d.sync += [shift.eq((shift >> 1) | (self.rx << 7)), timer.eq(bit - 1),
                                 count.eq(count + 1)]
                    with m.If(count == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                m.d.comb += self.busy.eq(1)
                with m.If(timer == 0):
                    with m.If(self.rx):
                        m.d.sync += [self.data.eq(shift), self.valid.eq(1)]
                    with m.Else():
                        m.d.sync += self.error.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m


class UARTTx(wiring.Component):
    """Bytes to ``tx``: ``data`` is taken when ``valid`` and ``ready``."""

    def __init__(self, cycles_per_bit: int) -> None:
        _check(cycles_per_bit)
        self.cycles_per_bit = cycles_per_bit
        super().__init__({"data": In(8), "valid": In(1), "ready": Out(1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        bit = self.cycles_per_bit
        timer = Signal(range(bit))
        frame = Signal(10, init=0x3FF)  # stop, data, start; shifted out from bit 0
        left = Signal(range(11))
        m.d.comb += [self.ready.eq(left == 0), self.tx.eq(frame[0])]
        with m.If(left == 0):
            with m.If(self.valid):
                m.d.sync += [frame.eq((self.data << 1) | (1 << 9)), left.eq(10), timer.eq(bit - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [frame.eq((frame >> 1) | (1 << 9)), left.eq(left - 1), timer.eq(bit - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m
