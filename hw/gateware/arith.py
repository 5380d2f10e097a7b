"""Small arithmetic building blocks that keep the ECP5 mapping predictable.

Every multiply runs in an 18x18 MULT18X18D (``dsp.RegisteredMultiplier``), so wider
products are split into limbs explicitly; counts use table lookups and balanced trees
where a Python ``sum`` would make a slow chain of adders.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Value
from nanoquote.hw.contract.widths import LIMB

__all__ = ["limbs", "popcount"]


def limbs(value: Value) -> list[tuple[Value, int]]:
    """``value`` cut into ``(limb, bit_offset)`` pieces of at most 18 bits, LSB first."""
    value = Value.cast(value)
    return [(value[i : i + LIMB], i) for i in range(0, len(value), LIMB)]


def popcount(bits: Value) -> Value:
    """Number of set bits of ``bits``: a table lookup per 4 bits (one LUT level), then a
    balanced adder tree of the partial counts."""
    flat = list(Value.cast(bits))
    terms: list[Value] = []
    for k in range(0, len(flat), 4):
        chunk = Cat(*flat[k : k + 4])
        table = Array(Const(bin(v).count("1"), 3) for v in range(1 << len(chunk)))
        terms.append(table[chunk])
    while len(terms) > 1:
        pairs = [terms[k] + terms[k + 1] for k in range(0, len(terms) - 1, 2)]
        terms = pairs + terms[len(pairs) * 2 :]
    return terms[0] if terms else Value.cast(0)
