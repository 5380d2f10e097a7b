"""The random-walk market of ``nanoquote sweep``: a seeded top of book and a naive exchange.

Kept deliberately simple and fixed, so that sweep results stay comparable across
versions: the exchange acks every order, confirms every cancel and fills a resting order
completely when the market trades through it, with a flat fee. ``nanoquote demo`` uses
the full market and exchange simulators instead (docs/market.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.host.strategy.orders import Action, CancelOrder, Fill, NewOrder, Side
from nanoquote.host.strategy.quoting import BookUpdate

__all__ = ["WalkResult", "play_market"]


@dataclass
class WalkResult:
    """What the strategy did over one random-walk session."""

    updates: int = 0
    orders: int = 0
    cancels: int = 0
    fills: int = 0
    #: The largest |position| after any fill.
    max_abs_position: int = 0
    strategy: MarketMakerStrategy | None = field(default=None, repr=False)


class _Exchange:
    """Acks orders, confirms cancels, fills resting orders the market trades through."""

    def __init__(self) -> None:
        self.resting: dict[int, NewOrder] = {}

    def handle(self, strategy: MarketMakerStrategy, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, NewOrder):
                self.resting[action.id] = action
                strategy.on_order_ack(action.id)
            elif isinstance(action, CancelOrder) and self.resting.pop(action.id, None):
                strategy.on_order_cancel(action.id)

    def match(self, book: BookUpdate) -> list[Fill]:
        fills = []
        for order in list(self.resting.values()):
            if (order.side is Side.BUY and book.best_ask <= order.price) or (
                order.side is Side.SELL and book.best_bid >= order.price
            ):
                fills.append(Fill(order.id, order.side, order.price, order.qty, 0.25, book.ts))
                del self.resting[order.id]
        return fills


def play_market(strategy: MarketMakerStrategy, seed: int, updates: int) -> WalkResult:
    """Arm ``strategy`` and play ``updates`` book updates of the seeded market through it.

    Any strategy works (golden, or offloaded to a device): the market and the exchange
    depend only on ``seed`` and the orders the strategy sends, so two strategies that
    decide alike see the same session.
    """
    rng = random.Random(seed)
    strategy.arm()
    exchange = _Exchange()
    result = WalkResult(strategy=strategy)
    t = strategy.config.tick_size
    bid_ticks = 2000
    ts = 0
    for _ in range(updates):
        ts += rng.randint(1_000_000, 50_000_000)
        bid_ticks += rng.choice((-1, 0, 0, 1))
        spread = rng.choice((1, 1, 1, 2))
        book = BookUpdate(ts, bid_ticks * t, (bid_ticks + spread) * t)
        for fill in exchange.match(book):
            strategy.on_fill(fill)
            result.fills += 1
            result.max_abs_position = max(result.max_abs_position, abs(strategy.position))
        actions = strategy.on_market_data(book)
        result.updates += 1
        result.orders += sum(isinstance(a, NewOrder) for a in actions)
        result.cancels += sum(isinstance(a, CancelOrder) for a in actions)
        exchange.handle(strategy, actions)
    return result
