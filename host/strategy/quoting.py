"""Golden quote calculation (docs/spec.md §3-§5): the plain exact-integer statement of the datapath.

This module is the reference the pipeline and the bit-accurate model are checked
against, so it follows docs/spec.md's formulas literally: each rational is kept exactly as
an integer numerator over one common denominator, and no step is reformulated. It holds no state: the refresh clock, order tracking
and risk limits live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.domain import PRICE_MAX

__all__ = ["BookUpdate", "Ladder", "book_mid", "calculate_quotes", "gate_levels", "build_ladder"]


@dataclass(slots=True)
class BookUpdate:
    """A top-of-book update; a missing side is ``None``."""

    ts: int
    best_bid: int | None
    best_ask: int | None

    @property
    def has_both_sides(self) -> bool:
        return self.best_bid is not None and self.best_ask is not None

    @property
    def crossed(self) -> bool:
        """Crossed or locked: ``best_bid >= best_ask`` (only with both sides)."""
        bid, ask = self.best_bid, self.best_ask
        return bid is not None and ask is not None and bid >= ask


def book_mid(config: MarketMakerConfig, book: BookUpdate) -> int | None:
    """Floored mid the policy quotes around, or ``None`` when it must not quote (docs/spec.md §3)."""
    bid, ask = book.best_bid, book.best_ask
    if bid is None or ask is None or (bid >= ask and not config.is_legacy):
        return None
    return (bid + ask) // 2


def _clamped_position(config: MarketMakerConfig, position: int) -> int:
    m = config.max_inventory
    return max(-m, min(m, position))


def _skew_denominator(config: MarketMakerConfig) -> int:
    """``D = M * 65536``: the skew is ``s * q * (...) / D``."""
    return config.max_inventory * 65536


def _legacy_top(config: MarketMakerConfig, mid: int, position: int) -> tuple[int, int]:
    b, t = config.base_spread_ticks, config.tick_size
    if config.max_inventory == 0:
        skew_ticks = 0
    else:
        # trunc(s * q * B / D), toward zero: floor of the magnitude, then the sign.
        s = _clamped_position(config, position)
        magnitude = abs(s) * config.skew_q * b // _skew_denominator(config)
        skew_ticks = -magnitude if s < 0 else magnitude
    half = (b * t) // 2  # b*t >= 0, so floor == trunc
    return mid - half - skew_ticks * t, mid + half - skew_ticks * t


def _exchange_top(config: MarketMakerConfig, best_bid: int, best_ask: int, position: int) -> tuple[int, int]:
    """docs/spec.md §4.2 exchange policy, every rational held as ``numerator / den`` with den = 2*D."""
    b, t, e = config.base_spread_ticks, config.tick_size, config.min_edge_ticks
    d = _skew_denominator(config) or 1  # M == 0: no skew; any denominator will do
    den = 2 * d
    mid = (best_bid + best_ask) * d  # m = P/2 = P*D / 2D
    skew = 0 if config.max_inventory == 0 else 2 * _clamped_position(config, position) * config.skew_q * b * t
    r = mid - skew  # reservation price r = m - s*q*B*T/D
    half_spread = b * t * d  # B*T/2
    grid = t * den  # one tick, over den
    bid0 = t * ((r - half_spread) // grid)  # T * floor((r - B*T/2) / T)
    ask0 = t * -((-(r + half_spread)) // grid)  # T * ceil((r + B*T/2) / T)
    bid0 = min(bid0, t * ((mid - e * grid) // grid))  # minimum edge from the exact mid
    ask0 = max(ask0, t * -((-(mid + e * grid)) // grid))
    # Post-only: never at or through the opposite best.
    bid0 = min(bid0, t * ((best_ask - 1) // t))
    ask0 = max(ask0, t * (best_bid // t + 1))
    return bid0, ask0


def calculate_quotes(
    config: MarketMakerConfig, book: BookUpdate, position: int
) -> tuple[int, int] | None:
    """Level-0 bid and ask prices, or ``None`` when there is no quotable mid (docs/spec.md §4)."""
    mid = book_mid(config, book)
    if mid is None:
        return None
    if config.is_legacy:
        return _legacy_top(config, mid, position)
    return _exchange_top(config, book.best_bid, book.best_ask, position)  # type: ignore[arg-type]


def gate_levels(
    config: MarketMakerConfig, position: int, live_bid_qty: int, live_ask_qty: int
) -> tuple[int, int]:
    """How many levels each side may post under the policy's position limit (docs/spec.md §5)."""
    n, m = config.num_levels, config.max_inventory
    if m == 0:
        return 0, 0
    if config.is_legacy:
        return (n if position < m else 0), (n if position > -m else 0)
    size = config.order_size
    bid_levels = max(0, min(n, (m - position - live_bid_qty) // size))
    ask_levels = max(0, min(n, (m + position - live_ask_qty) // size))
    return bid_levels, ask_levels


@dataclass(slots=True)
class Ladder:
    """The ladder for one update: per level, the price to post or ``None`` (not posted).

    ``bid_count``/``ask_count`` are the gated level counts; a level below the count whose
    price falls outside ``1..PRICE_MAX`` is not posted and counted in ``out_of_domain``.
    ``mid`` is ``None`` when the policy found nothing to quote around.
    """

    mid: int | None
    crossed: bool
    bids: tuple[int | None, ...]
    asks: tuple[int | None, ...]
    bid_count: int
    ask_count: int
    out_of_domain: int

    @property
    def posted_bids(self) -> list[tuple[int, int]]:
        return [(i, p) for i, p in enumerate(self.bids) if p is not None]

    @property
    def posted_asks(self) -> list[tuple[int, int]]:
        return [(i, p) for i, p in enumerate(self.asks) if p is not None]


def build_ladder(
    config: MarketMakerConfig,
    book: BookUpdate,
    position: int,
    live_bid_qty: int = 0,
    live_ask_qty: int = 0,
    price_max: int = PRICE_MAX,
) -> Ladder:
    """Full N-level ladder with gating and the price-domain rule applied (docs/spec.md §4-§5)."""
    n, t = config.num_levels, config.tick_size
    top = calculate_quotes(config, book, position)
    if top is None:
        empty = (None,) * n
        return Ladder(None, book.crossed, empty, empty, 0, 0, 0)
    bid_count, ask_count = gate_levels(config, position, live_bid_qty, live_ask_qty)
    bid0, ask0 = top
    bids = [None] * n
    asks = [None] * n
    out_of_domain = 0
    for i in range(bid_count):
        price = bid0 - i * t
        if 1 <= price <= price_max:
            bids[i] = price
        else:
            out_of_domain += 1
    for i in range(ask_count):
        price = ask0 + i * t
        if 1 <= price <= price_max:
            asks[i] = price
        else:
            out_of_domain += 1
    return Ladder(book_mid(config, book), book.crossed, tuple(bids), tuple(asks), bid_count, ask_count, out_of_domain)
