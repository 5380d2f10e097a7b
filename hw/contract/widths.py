"""Integer widths of the quote datapath, derived once from the build parameters.

The gateware (``pipeline``, ``coefficient_unit``) and the bit-accurate model
(``model``) both read their register widths from :class:`DatapathWidths`, so the two
cannot drift apart. The bounds behind each width are in docs/datapath.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nanoquote.hw.contract.coefficients import (
    DEFAULT_MAX_LEVELS,
    DEFAULT_PRICE_BITS,
    SKEW_COEF_BITS,
    TICK_BITS,
    recip_bits,
    recip_shift,
)

__all__ = ["LIMB", "DatapathWidths", "bits_for"]

#: Operand width of one ECP5 MULT18X18D: every multiply is split into limbs of this size.
LIMB = 18


def bits_for(value: int) -> int:
    """Bits of an unsigned field that holds ``0 .. value``."""
    return max(1, value.bit_length())


@dataclass(frozen=True)
class DatapathWidths:
    """Widths for a build with ``max_levels`` levels and ``price_bits``-bit prices."""

    max_levels: int = DEFAULT_MAX_LEVELS
    price_bits: int = DEFAULT_PRICE_BITS

    def __post_init__(self) -> None:
        # P and the normalized reciprocal must each fit two 18-bit limbs.
        if not 18 <= self.price_bits <= 34:
            raise ValueError(f"price_bits must be in 18..34, got {self.price_bits}")
        if not 1 <= self.max_levels <= 64:
            raise ValueError(f"max_levels must be in 1..64, got {self.max_levels}")

    # -- market side -----------------------------------------------------------------
    @property
    def price_max(self) -> int:
        return (1 << self.price_bits) - 1

    @property
    def sum_bits(self) -> int:
        """``P = bid + ask < 2**(price_bits+1)``."""
        return self.price_bits + 1

    # -- division by d = 2T (per update) ---------------------------------------------
    @property
    def recip_in_bits(self) -> int:
        """Width of the host's reciprocal ``ceil(2**(pb+18) / 2T)`` (49 by default)."""
        return recip_bits(self.price_bits)

    @property
    def recip_in_shift(self) -> int:
        return recip_shift(self.price_bits)

    @property
    def norm_recip_bits(self) -> int:
        """``m = ceil(2**(pb+1+l) / d)`` with ``2**(l-1) < d <= 2**l`` lies in ``[2**(pb+1), 2**(pb+2))``."""
        return self.price_bits + 2

    @property
    def scaled_bits(self) -> int:
        """``X = qP * 2**l = (S >> (pb+1))`` with the low ``l`` bits cleared, ``< 2**(pb+2)``."""
        return self.price_bits + 2

    @property
    def frac_bits(self) -> int:
        """``F = S mod 2**(pb+1+l)``, ``l <= 17``."""
        return self.price_bits + 18

    @property
    def frac_threshold_bits(self) -> int:
        """``k*m`` for ``k <= d``: ``d*m = 2**(pb+1+l) + err < 2**(pb+19)``."""
        return self.price_bits + 19

    @property
    def tprime_bits(self) -> int:
        """``T' = T << (17 - l) <= 2**16``."""
        return 17

    # -- constants of the per-level stage ----------------------------------------------
    @property
    def domain_bits(self) -> int:
        """Signed width of the price-domain windows on ``P`` (see ``coefficient_unit``).

        ``|bound| <= (Qm + 1) * d + |offset| * d + 66 * 2T``: at most ``2**(pb+1)`` plus
        ``2**28`` (offsets below ``2**11`` ticks or ``2**26`` raw units); headroom and a sign.
        """
        return max(self.price_bits, 28) + 6

    @property
    def bound_bits(self) -> int:
        """A window bound on ``P`` clamped to ``0 .. 2**sum_bits``."""
        return self.sum_bits + 1

    @property
    def step_bits(self) -> int:
        """``j * 2T`` for ``j <= max_levels + 1``: below ``66 * 2**17``."""
        return 24

    @property
    def bid_windows(self) -> int:
        """Bid levels with a constant and a window: the other candidate sits 1 level out."""
        return self.max_levels + 1

    @property
    def ask_windows(self) -> int:
        """Ask levels with a constant and a window: candidates sit up to 2 levels out."""
        return self.max_levels + 2

    @property
    def level_bits(self) -> int:
        """Width of a level count ``0 .. max_levels``."""
        return bits_for(self.max_levels)

    @property
    def ood_bits(self) -> int:
        """Width of the out-of-domain count ``0 .. 2*max_levels``."""
        return bits_for(2 * self.max_levels)

    # -- coefficient stage -------------------------------------------------------------
    tick_bits: ClassVar[int] = TICK_BITS
    skew_coef_bits: ClassVar[int] = SKEW_COEF_BITS
    #: ``z = floor(a*c)``: ``< 2**25`` in the validated domain (``|w| <= 2*B*T``).
    skew_int_bits: ClassVar[int] = 26
    #: Dividends ``Kb + 768T``, ``Ka + 768T`` are in ``[0, 1533*T] < 2**27``.
    div_bits: ClassVar[int] = 28
    #: Quotients are below ``1024`` (``1533*T < 1024 * 2T``).
    div_quot_bits: ClassVar[int] = 10
    #: ``768*T = 384 * 2T`` offset keeps the dividends non-negative.
    div_offset: ClassVar[int] = 384
    #: Offsets in ticks (exchange) or raw units (legacy): ``|.| < 2**26``.
    offset_bits: ClassVar[int] = 28
