"""Quote engines: where a ladder is computed, behind one small interface.

The strategy's event loop asks an engine for a ``QuoteDecision`` and never cares
whether the golden Python model, a simulator or an FPGA produced it. The engine owns
the refresh clock because the hardware does too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.quoting import BookUpdate, Ladder, build_ladder
from nanoquote.host.strategy.refresh import RefreshClock

__all__ = ["QuoteDecision", "QuoteEngine", "GoldenQuoteEngine"]


@dataclass(slots=True)
class QuoteDecision:
    """The ladder for one update and whether the strategy must requote now.

    ``size_blocked`` is ``None`` when the engine leaves the maximum order quantity to the
    strategy's ``RiskGate`` (the golden engine); a device that enforces it itself says
    whether it blocked this ladder's levels (docs/spec.md §8).
    """

    ladder: Ladder
    refresh: bool
    size_blocked: bool | None = None


class QuoteEngine(Protocol):
    def quote(
        self, book: BookUpdate, position: int, live_bid_qty: int, live_ask_qty: int, armed: bool
    ) -> QuoteDecision: ...

    def should_refresh(self, now: int) -> bool: ...

    @property
    def last_quote_time(self) -> int | None: ...

    # Optional: ``on_kill()`` / ``on_rearm()``, called by the strategy's kill switch so an
    # engine with its own latch (the hardware) follows it.


class GoldenQuoteEngine:
    """The exact-integer reference engine (``nanoquote.host.strategy.quoting``)."""

    def __init__(self, config: MarketMakerConfig) -> None:
        self.config = config
        self.clock = RefreshClock(config.refresh_interval_ns, config.is_legacy)

    def quote(
        self, book: BookUpdate, position: int, live_bid_qty: int, live_ask_qty: int, armed: bool
    ) -> QuoteDecision:
        ladder = build_ladder(self.config, book, position, live_bid_qty, live_ask_qty)
        refresh = armed and ladder.mid is not None and self.clock.due(book.ts)
        if refresh:
            self.clock.mark(book.ts)
        return QuoteDecision(ladder, refresh)

    def should_refresh(self, now: int) -> bool:
        return self.clock.due(now)

    @property
    def last_quote_time(self) -> int | None:
        return self.clock.last_quote_time
