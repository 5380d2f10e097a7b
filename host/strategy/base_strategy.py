"""BaseStrategy: position and P&L bookkeeping shared by every strategy (docs/spec.md §7).

Prices are integer raw units; the average entry price is an exact ``Fraction`` so that
realized P&L is exact. Money is ``raw difference / tick_size * tick_value`` per lot.
"""

from __future__ import annotations

from fractions import Fraction

from nanoquote.host.strategy.orders import Fill, Side

__all__ = ["BaseStrategy"]


class BaseStrategy:
    """Net position, average-cost entry, realized/unrealized P&L, fees and counts."""

    def __init__(self, name: str, instrument_id: int, tick_size: int, tick_value: float) -> None:
        self.name = name
        self.instrument_id = instrument_id
        self.tick_size = tick_size
        self.tick_value = tick_value
        self.position = 0
        self.avg_entry: Fraction | None = None
        self._realized_raw = Fraction(0)  # sum of (exit - entry) * signed lots, raw units
        self.fees = 0.0
        self.fill_count = 0
        self.round_trips = 0
        self.mark: int | None = None
        self.ready = False

    # -- events ---------------------------------------------------------------------------

    def apply_fill(self, fill: Fill) -> None:
        """Move position and P&L by an execution, whoever's order it was."""
        signed_qty = Side(fill.side).sign * fill.qty
        self.fill_count += 1
        self.fees += fill.fee
        old = self.position
        new = old + signed_qty
        if old == 0 or (old > 0) == (signed_qty > 0):
            # Opening or adding: new average cost.
            prior = self.avg_entry if self.avg_entry is not None else Fraction(0)
            self.avg_entry = (prior * abs(old) + fill.price * abs(signed_qty)) / abs(new)
        else:
            closed = min(abs(old), abs(signed_qty))
            direction = 1 if old > 0 else -1
            self._realized_raw += (fill.price - self.avg_entry) * closed * direction
            if new == 0:
                self.avg_entry = None
                self.round_trips += 1
            elif (new > 0) != (old > 0):
                self.avg_entry = Fraction(fill.price)
                self.round_trips += 1
        self.position = new

    def update_mark(self, mid: int | None) -> None:
        """Mark open inventory to the mid; with no mid the last mark stays."""
        if mid is not None:
            self.mark = mid

    # -- money ----------------------------------------------------------------------------

    def _money(self, raw: Fraction) -> float:
        return float(raw / self.tick_size * Fraction(self.tick_value))

    @property
    def realized_pnl(self) -> float:
        """Closed-trade P&L in money, net of fees."""
        return self._money(self._realized_raw) - self.fees

    @property
    def unrealized_pnl(self) -> float:
        """Open inventory marked to the last mid (0 with no position or no mark)."""
        if self.position == 0 or self.mark is None or self.avg_entry is None:
            return 0.0
        return self._money((self.mark - self.avg_entry) * self.position)

    @property
    def total_pnl(self) -> float:
        return self.realized_pnl + self.unrealized_pnl
