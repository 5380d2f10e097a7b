"""A first-word-fall-through queue of ladders for the pipeline's output, built for timing.

Entries are flip-flops, not LUT RAM: Yosys would fold the register in front of a LUT
RAM's write port into the RAM, putting the last stage's adders in front of the RAM. The
write pointer and read pointer are one-hot registers. The entry at the write pointer is
free (the queue is one entry deeper than it is ever filled), so it takes ``w_data``
every cycle, clock-enabled by its pointer bit alone; ``push`` only moves the pointer.
The head is an AND-OR of the entries by the read pointer.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["OutputBuffer"]


class OutputBuffer(wiring.Component):
    """Holds up to ``capacity`` entries of ``width`` bits.

    Ports
    -----
    w_data : In
        The entry to append (read every cycle).
    push : In
        Append ``w_data`` this cycle. Never with ``capacity`` entries queued.
    pop : In
        Remove the head this cycle (ignored when empty).
    nonempty : Out
        At least one entry is queued (a register).
    head : Out
        The oldest entry (valid with ``nonempty``).
    """

    def __init__(self, width: int, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.width, self.capacity = width, capacity
        super().__init__({"w_data": In(width), "push": In(1), "pop": In(1),
                          "nonempty": Out(1), "head": Out(width)})

    def elaborate(self, platform: object) -> Module:  # noqa: ARG002
        m = Module()
        slots = self.capacity + 1  # one always free
        entries = [Signal(self.width, name=f"entry{k}", reset_less=True) for k in range(slots)]
        write_at = Signal(slots, init=1)
        read_at = Signal(slots, init=1)
        count = Signal(range(slots))
        pop = self.pop & self.nonempty
        for k, entry in enumerate(entries):
            with m.If(write_at[k]):
                m.d.sync += entry.eq(self.w_data)
        with m.If(self.push):
            m.d.sync += write_at.eq(Cat(write_at[-1], write_at[:-1]))
        with m.If(pop):
            m.d.sync += read_at.eq(Cat(read_at[-1], read_at[:-1]))
        count_next = (count + self.push - pop)[: len(count)]
        m.d.sync += [count.eq(count_next), self.nonempty.eq(count_next != 0)]
        head = 0
        for k, entry in enumerate(entries):
            head = head | (entry & read_at[k].replicate(self.width))
        m.d.comb += self.head.eq(head)
        return m
