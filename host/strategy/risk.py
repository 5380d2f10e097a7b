"""Pre-trade risk limits of docs/spec.md §8, software side (the hardware gate mirrors it).

The kill switch lives in the strategy (it must cancel orders); this module holds the
limits that filter a ladder: price collar, maximum order quantity and the quote-update
throttle. Every blocked level or refresh is counted, never silently dropped.
"""

from __future__ import annotations

from collections import Counter

from nanoquote.host.strategy.config import MarketMakerConfig

__all__ = ["RiskGate", "THROTTLE_WINDOW_NS"]

#: The throttle counts refreshes in fixed one-second windows of book time.
THROTTLE_WINDOW_NS = 1_000_000_000


class RiskGate:
    """Filters ladders; ``blocked`` counts ``collar``, ``size`` and ``throttle`` events."""

    def __init__(self, config: MarketMakerConfig) -> None:
        self.config = config
        self.blocked: Counter[str] = Counter()
        self._window_start: int | None = None
        self._window_count = 0
        self._size_blocked = config.max_order_qty is not None and config.order_size > config.max_order_qty
        # Collar on doubled prices so the exact (half-integer) mid stays an integer.
        self._doubled_collar = None if config.collar_ticks is None else 2 * config.collar_ticks * config.tick_size

    def allow_refresh(self, ts: int) -> bool:
        """Throttle: at most N refreshes per window; a window opens at the first refresh
        at or after the previous window's end (book time, so replays are deterministic)."""
        limit = self.config.max_quote_updates_per_sec
        if limit is None:
            return True
        if self._window_start is None or not 0 <= ts - self._window_start < THROTTLE_WINDOW_NS:
            self._window_start, self._window_count = ts, 0
        if self._window_count >= limit:
            self.blocked["throttle"] += 1
            return False
        self._window_count += 1
        return True

    def allow_level(self, price: int, doubled_mid: int) -> bool:
        """Collar (``|price - mid| <= collar_ticks * T`` with the exact mid) and size."""
        if self._size_blocked:
            self.blocked["size"] += 1
            return False
        return self.allow_collar(price, doubled_mid)

    def allow_collar(self, price: int, doubled_mid: int) -> bool:
        """The collar alone (the size limit was applied where the ladder was computed)."""
        if self._doubled_collar is not None and abs(2 * price - doubled_mid) > self._doubled_collar:
            self.blocked["collar"] += 1
            return False
        return True

    def applied_size_limit(self, blocked: bool, levels: int) -> None:
        """A device applied the size limit to a refresh's ``levels`` posted levels: count
        them if it blocked them. It must have decided as this gate would."""
        if blocked != self._size_blocked:
            raise ValueError(f"the device's size limit {'blocked' if blocked else 'passed'} a ladder "
                             f"this configuration {'blocks' if self._size_blocked else 'passes'}")
        if blocked:
            self.blocked["size"] += levels
