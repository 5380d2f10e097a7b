"""Validated value domains shared by the golden model, the gateware and the driver.

Every limit of docs/spec.md §1 lives here once, so the config validator, the market-data
validator, the hardware build parameters and the register map cannot disagree.
"""

from __future__ import annotations

__all__ = [
    "PRICE_BITS",
    "PRICE_MAX",
    "DEFAULT_MAX_LEVELS",
    "MAX_LEVELS_LIMIT",
    "TICK_VALUE_MAX",
    "FEE_MAX",
    "SKEW_ONE",
    "POSITION_MAX",
    "TS_MAX",
    "DomainError",
    "check_int",
]

#: Width of a price in the default hardware build; prices are 1 .. 2**PRICE_BITS - 1.
PRICE_BITS = 31
PRICE_MAX = (1 << PRICE_BITS) - 1
#: Build-time maximum of ``num_levels`` in the default build.
DEFAULT_MAX_LEVELS = 8
#: The most levels per side a register map can hold (16-bit posted masks, 16 price words).
MAX_LEVELS_LIMIT = 16
#: Money per tick per lot, and the size of one fee: bounded so that P&L stays finite
#: (a position's value is at most ``2**31 * 2**15 * TICK_VALUE_MAX``, far below float range).
TICK_VALUE_MAX = 1e6
FEE_MAX = 1e9
#: The quantized skew factor is ``round(f * SKEW_ONE)``; 1.0 is representable.
SKEW_ONE = 1 << 16
#: Positions and inventory limits are signed 16-bit quantities.
POSITION_MAX = (1 << 15) - 1
#: Timestamps are non-negative signed 64-bit nanoseconds.
TS_MAX = (1 << 63) - 1


class DomainError(ValueError):
    """A value outside its validated domain; the message names what, the value and why."""


def check_int(what: str, value: object, low: int, high: int) -> int:
    """Return ``value`` if it is an ``int`` (not a bool) in ``[low, high]``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise DomainError(f"{what} must be an integer in {low}..{high}, got {value!r}")
    if not low <= value <= high:
        raise DomainError(f"{what} must be in {low}..{high}, got {value}")
    return value
