"""``nanoquote demo``: the golden strategy on a seeded synthetic market.

A random-walk top of book, an exchange that acks every order and fills a resting order
when the market trades through it (``nanoquote.sim.random_walk``), and a summary of
what the strategy did.
"""

from __future__ import annotations

import argparse

from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.sim.random_walk import WalkResult, play_market

from nanoquote.cli import count, write_stdout

__all__ = ["configure", "run", "run_demo"]


def run_demo(seed: int, updates: int, config: MarketMakerConfig) -> WalkResult:
    """The demo session on the golden strategy."""
    return play_market(MarketMakerStrategy("demo", 1, config), seed, updates)


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
