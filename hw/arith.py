"""Small arithmetic building blocks that keep the ECP5 mapping predictable.

Yosys maps each ``$mul`` whose operands fit 18x18 bits to one MULT18X18D, but it does not
use the DSP's internal registers, so a multiply must have a register stage to itself. The
helpers here split wider products into such limbs explicitly, and build balanced trees
where a Python ``sum`` would make a slow chain of adders.
"""

from __future__ import annotations

from amaranth.hdl import Mux, Value

from .widths import LIMB

__all__ = ["limbs", "limb_products", "popcount", "max_of"]


def limbs(value: Value) -> list[tuple[Value, int]]:
    """``value`` cut into ``(limb, bit_offset)`` pieces of at most 18 bits, LSB first."""
    value = Value.cast(value)
    return [(value[i : i + LIMB], i) for i in range(0, len(value), LIMB)]


def limb_products(a: Value, b: Value) -> list[tuple[Value, int]]:
    """All ``(a_i * b_j, offset)`` limb products: each maps to one 18x18 multiplier."""
    return [(x * y, i + j) for x, i in limbs(a) for y, j in limbs(b)]


def popcount(bits: Value) -> Value:
    """Number of set bits of ``bits``, as a balanced adder tree (depth ``log2(n)``)."""
    terms: list[Value] = list(Value.cast(bits))
    while len(terms) > 1:
        pairs = [terms[k] + terms[k + 1] for k in range(0, len(terms) - 1, 2)]
        terms = pairs + terms[len(pairs) * 2 :]
    return terms[0] if terms else Value.cast(0)


def max_of(a: Value, b: Value) -> Value:
    """``max(a, b)``, signed if either operand is."""
    return Mux(a > b, a, b)
