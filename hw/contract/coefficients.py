"""Host-side coefficients of the quote pipeline, from plain integers.

The pipeline never divides by a configuration value at update rate: the host hands it
two fixed-point constants, a reciprocal of ``2*T`` and the skew coefficient, and the
pipeline's coefficient stage derives the rest. This module computes them with exact
integer arithmetic and packs a configuration into the values of the pipeline's ``cfg``
port. It imports nothing from ``nanoquote.host`` (the gateware must not depend on the
host), but :meth:`PipelineParams.from_config` accepts any object with the fields of
``MarketMakerConfig``.

Exactness (docs/datapath.md):

* Reciprocal. ``P = best_bid + best_ask < 2**(price_bits+1)`` and ``d = 2*T`` is in
  ``2 .. 131070 < 2**17``. With ``m = ceil(2**s / d)`` and ``m*d = 2**s + err``,
  ``0 <= err < d``: ``P*m / 2**s = P/d + P*err / (d * 2**s)``, and ``P*err <
  2**(price_bits+1) * 2**17 = 2**s`` for ``s = price_bits + 18`` (49 in the default
  build), so the excess is below ``1/d`` and ``floor(P*m / 2**s) = floor(P/d)``. ``m`` is
  at most ``2**(s-1)`` (reached at ``T = 1``), i.e. ``s`` bits: 49, not 48.
* Skew. ``C = ceil(c * 2**47)`` with ``c = q*B/D`` (legacy) or ``2*T*q*B/D`` (exchange),
  ``D = M*65536 < 2**31``, ``c < 2**25`` so ``C`` fits in 72 bits. For ``a <= M < 2**15``,
  ``t = a*C``: ``t / 2**47 = a*c + a*eps / 2**47`` with ``a*eps/2**47 < 2**-32``; ``a*c``
  has denominator at most ``D < 2**31``, so its fractional part is 0 or at least
  ``2**-31``, hence ``floor(t / 2**47) = floor(a*c)`` and ``t mod 2**47 < 2**15`` exactly
  when ``a*c`` is an integer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "SKEW_ONE",
    "SKEW_COEF_SHIFT",
    "SKEW_COEF_BITS",
    "TICK_BITS",
    "BASE_SPREAD_BITS",
    "MIN_EDGE_BITS",
    "MAX_INVENTORY_BITS",
    "ORDER_SIZE_BITS",
    "REFRESH_INTERVAL_BITS",
    "POSITION_BITS",
    "LIVE_QTY_BITS",
    "TS_BITS",
    "DEFAULT_PRICE_BITS",
    "DEFAULT_MAX_LEVELS",
    "recip_shift",
    "recip_bits",
    "two_tick_reciprocal",
    "skew_coefficient",
    "PipelineParams",
    "CLOCK_HZ",
    "CYCLES_PER_US",
    "DEADMAN_US_BITS",
    "check_cycles_per_us",
    "clock_cycles_per_us",
    "deadman_cycles",
]

#: The quantized skew factor is ``q = round(f * SKEW_ONE)``, ``0 <= q <= SKEW_ONE``.
SKEW_ONE = 1 << 16
#: Fractional bits of the skew coefficient ``C = ceil(c * 2**47)``.
SKEW_COEF_SHIFT = 47
#: ``c < 2**25`` so ``C < 2**72``.
SKEW_COEF_BITS = 72
#: Field widths of the pipeline's configuration and feedback ports (docs/spec.md §1 domains).
TICK_BITS = 16
BASE_SPREAD_BITS = 8
MIN_EDGE_BITS = 8
MAX_INVENTORY_BITS = 15
ORDER_SIZE_BITS = 16
REFRESH_INTERVAL_BITS = 64
POSITION_BITS = 16
LIVE_QTY_BITS = 32
TS_BITS = 64
#: The build's clock (the timing gate's target) and the one conversion of device time:
#: the dead-man timeout is configured in microseconds and counted in cycles of the
#: design's clock, ``clock_cycles_per_us(clock_hz)`` a microsecond: 200 in this build
#: (the board's build has its own design clock, ``nanoquote.hw.gateware.board.BOARD_CLOCK``).
CLOCK_HZ = 200_000_000
#: Width of the dead-man timeout in microseconds (``1 .. 2**24 - 1``, about 16.7 s; 0: off).
DEADMAN_US_BITS = 24
#: Defaults of the hardware build (prices are 1 .. 2**31-1, 8 levels).
DEFAULT_PRICE_BITS = 31
DEFAULT_MAX_LEVELS = 8


def check_cycles_per_us(cycles_per_us: int) -> int:
    """``cycles_per_us`` if it is a positive integer (clock cycles a microsecond), else ValueError."""
    if isinstance(cycles_per_us, bool) or not isinstance(cycles_per_us, int) or cycles_per_us < 1:
        raise ValueError(f"cycles_per_us must be a positive integer (clock cycles a microsecond), "
                         f"got {cycles_per_us!r}")
    return cycles_per_us


def clock_cycles_per_us(clock_hz: float) -> int:
    """Cycles a microsecond of a ``clock_hz`` clock; a clock that is not a whole number of MHz
    is a ValueError (the dead-man timer counts whole cycles a microsecond: no rounding)."""
    if clock_hz <= 0 or clock_hz % 1_000_000:
        raise ValueError(f"a {clock_hz / 1e6:g} MHz clock is not a whole number of cycles a microsecond "
                         f"(the dead-man timer needs a positive whole number of MHz)")
    return check_cycles_per_us(int(clock_hz // 1_000_000))


#: Cycles a microsecond of the build clock (200): ``NanoquoteTop``'s default.
CYCLES_PER_US = clock_cycles_per_us(CLOCK_HZ)


def deadman_cycles(timeout_us: int, cycles_per_us: int = CYCLES_PER_US) -> int:
    """Clock cycles after a heartbeat at which the dead-man timer latches the kill switch, on a
    design clocked at ``cycles_per_us`` cycles a microsecond (default: the 200 MHz build's;
    the board's is ``BOARD_CLOCK.cycles_per_us``)."""
    return timeout_us * check_cycles_per_us(cycles_per_us)


def recip_shift(price_bits: int = DEFAULT_PRICE_BITS) -> int:
    """Fractional bits ``s`` of the ``2*T`` reciprocal: ``P < 2**(price_bits+1)``, ``2T < 2**17``."""
    return price_bits + 18


def recip_bits(price_bits: int = DEFAULT_PRICE_BITS) -> int:
    """Width of the reciprocal: ``ceil(2**s / 2) = 2**(s-1)`` at ``T = 1`` needs ``s`` bits."""
    return recip_shift(price_bits)


def two_tick_reciprocal(tick_size: int, price_bits: int = DEFAULT_PRICE_BITS) -> int:
    """``ceil(2**s / (2*T))``; ``s = 49`` in the default build (exact floor division, see above)."""
    if not 1 <= tick_size < 1 << TICK_BITS:
        raise ValueError(f"tick_size must be in 1..{(1 << TICK_BITS) - 1}, got {tick_size}")
    d = 2 * tick_size
    return -(-(1 << recip_shift(price_bits)) // d)


def skew_coefficient(
    policy_is_legacy: bool, skew_q: int, base_spread: int, tick_size: int, max_inventory: int
) -> int:
    """``C = ceil(c * 2**47)``; ``c = q*B/(M*65536)`` legacy, ``2*T*q*B/(M*65536)`` exchange.

    ``M == 0`` gives 0 (no skew: the pipeline then quotes nothing anyway).
    """
    if max_inventory == 0:
        return 0
    num = skew_q * base_spread * (1 if policy_is_legacy else 2 * tick_size)
    den = max_inventory * SKEW_ONE
    return -(-(num << SKEW_COEF_SHIFT) // den)


@dataclass(frozen=True, slots=True)
class PipelineParams:
    """The values of the pipeline's ``cfg`` port for one strategy configuration.

    Field names equal the fields of :func:`nanoquote.hw.gateware.layouts.pipeline_config_layout`, so
    ``layout.const(params.as_dict())`` packs them.
    """

    legacy: int
    tick: int
    two_tick_recip: int
    skew_coef: int
    base_spread: int
    min_edge: int
    max_inventory: int
    order_size: int
    num_levels: int
    refresh_interval: int
    #: the maximum order quantity of docs/spec.md §8, 0: off
    max_order_qty: int = 0

    @classmethod
    def from_fields(
        cls,
        *,
        legacy: bool,
        tick_size: int,
        skew_q: int,
        base_spread_ticks: int,
        min_edge_ticks: int,
        max_inventory: int,
        order_size: int,
        num_levels: int,
        refresh_interval_ns: int,
        price_bits: int = DEFAULT_PRICE_BITS,
        max_order_qty: int | None = None,
    ) -> PipelineParams:
        """Compute the coefficients from already validated plain integers."""
        return cls(
            legacy=int(bool(legacy)),
            tick=tick_size,
            two_tick_recip=two_tick_reciprocal(tick_size, price_bits),
            skew_coef=skew_coefficient(
                bool(legacy), skew_q, base_spread_ticks, tick_size, max_inventory
            ),
            base_spread=base_spread_ticks,
            min_edge=min_edge_ticks,
            max_inventory=max_inventory,
            order_size=order_size,
            num_levels=num_levels,
            refresh_interval=refresh_interval_ns,
            max_order_qty=max_order_qty or 0,
        )

    @classmethod
    def from_config(cls, config: Any, price_bits: int = DEFAULT_PRICE_BITS) -> PipelineParams:
        """From any object with ``MarketMakerConfig``'s fields (``skew_q``, ``is_legacy``, ...)."""
        return cls.from_fields(
            legacy=config.is_legacy,
            tick_size=config.tick_size,
            skew_q=config.skew_q,
            base_spread_ticks=config.base_spread_ticks,
            min_edge_ticks=config.min_edge_ticks,
            max_inventory=config.max_inventory,
            order_size=config.order_size,
            num_levels=config.num_levels,
            refresh_interval_ns=config.refresh_interval_ns,
            price_bits=price_bits,
            max_order_qty=config.max_order_qty,
        )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
