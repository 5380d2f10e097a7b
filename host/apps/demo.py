"""``nanoquote demo``: the golden strategy on a seeded synthetic market.

A random-walk top of book, an exchange that acks every order and fills a resting order
when the market trades through it, and a summary of what the strategy did.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field

from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.host.strategy.orders import Action, CancelOrder, Fill, NewOrder, Side
from nanoquote.host.strategy.quoting import BookUpdate

from nanoquote.cli import count, write_stdout

__all__ = ["configure", "run", "DemoResult", "run_demo"]


@dataclass
class DemoResult:
    updates: int = 0
    orders: int = 0
    cancels: int = 0
    fills: int = 0
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


def run_demo(seed: int, updates: int, config: MarketMakerConfig) -> DemoResult:
    rng = random.Random(seed)
    strategy = MarketMakerStrategy("demo", 1, config)
    strategy.arm()
    exchange = _Exchange()
    result = DemoResult(strategy=strategy)
    t = config.tick_size
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
        actions = strategy.on_market_data(book)
        result.updates += 1
        result.orders += sum(isinstance(a, NewOrder) for a in actions)
        result.cancels += sum(isinstance(a, CancelOrder) for a in actions)
        exchange.handle(strategy, actions)
    return result


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--updates", type=count, default=5000, help="book updates to play (default 5000)")
    parser.add_argument("--policy", choices=["legacy", "exchange"], default="exchange")


def run(args: argparse.Namespace) -> int:
    config = MarketMakerConfig(quote_policy=args.policy)
    result = run_demo(args.seed, args.updates, config)
    s = result.strategy
    assert s is not None
    write_stdout("".join(line + "\n" for line in (
        f"nanoquote demo: policy={args.policy} seed={args.seed}",
        f"  book updates      {result.updates}",
        f"  orders / cancels  {result.orders} / {result.cancels}",
        f"  fills             {result.fills} (round trips {s.base.round_trips})",
        f"  final position    {s.position}",
        f"  realized P&L      {s.base.realized_pnl:.2f}",
        f"  unrealized P&L    {s.base.unrealized_pnl:.2f}",
        f"  live orders       {len(s.quote_manager)} (errors {s.quote_manager.error_count})",
        f"  risk blocks       {dict(s.risk.blocked) or 'none'}",
    )))
    return 0
