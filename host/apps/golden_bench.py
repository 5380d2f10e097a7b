"""Cost of the golden strategy per book event that refreshes, on a realistic loop.

Every update is due for a refresh (interval 0), the market steps by a tick so each
refresh changes part of the ladder, and an exchange acks every order and confirms every
cancel before the next update, so the order book stays at its steady-state size.
"""

from __future__ import annotations

import time

from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.host.strategy.orders import CancelOrder, NewOrder
from nanoquote.host.strategy.quoting import BookUpdate

__all__ = ["golden_cost_per_refresh_us"]


def golden_cost_per_refresh_us(policy: str = "exchange", events: int = 20_000) -> float:
    """Microseconds per ``on_market_data`` call that refreshes (median of 3 runs)."""
    config = MarketMakerConfig(quote_policy=policy, refresh_interval_ns=0,
                               max_quote_updates_per_sec=None)
    books = [BookUpdate(i, 50000 + 25 * (i % 4), 50025 + 25 * (i % 4)) for i in range(events)]
    runs = []
    for _ in range(3):
        strategy = MarketMakerStrategy("bench", 1, config)
        strategy.arm()
        elapsed = 0.0
        for book in books:
            start = time.perf_counter()
            actions = strategy.on_market_data(book)
            elapsed += time.perf_counter() - start
            for action in actions:
                if isinstance(action, NewOrder):
                    strategy.on_order_ack(action.id)
                elif isinstance(action, CancelOrder):
                    strategy.on_order_cancel(action.id)
            if policy == "legacy":
                strategy.quote_manager.clear()  # legacy never cancels: keep the book small
        runs.append(elapsed / events * 1e6)
    return sorted(runs)[1]
