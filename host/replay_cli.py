"""``nanoquote replay``: the public JSON Lines interface of the strategy."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import ConfigError, MarketMakerConfig
from .market_maker import MarketMakerStrategy
from .replay import ReplayError, parse_events, resolve_config, run_replay

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("events", type=Path, help="JSON Lines event file ('-' for stdin)")
    parser.add_argument("--policy", choices=["legacy", "exchange"], help="override quote_policy")
    parser.add_argument("--config", type=Path, help="TOML file with MarketMakerConfig fields")
    parser.add_argument("--state", action="store_true", help="emit a state record after every event")


def golden_strategy(config: MarketMakerConfig) -> MarketMakerStrategy:
    return MarketMakerStrategy("replay", 1, config)


def run(args: argparse.Namespace) -> int:
    try:
        base = MarketMakerConfig.from_toml(args.config) if args.config else None
        if str(args.events) == "-":
            lines = sys.stdin.read().splitlines()
        else:
            try:
                lines = args.events.read_text().splitlines()
            except OSError as exc:
                raise ReplayError(f"cannot read {str(args.events)!r}: {exc.strerror}") from None
        events = parse_events(lines)
        config = resolve_config(events, base, quote_policy=args.policy)
    except (ReplayError, ConfigError) as exc:
        print(f"nanoquote replay: error: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    for record in run_replay(events, golden_strategy, config, with_state=args.state):
        out.write(json.dumps(record, separators=(",", ":")) + "\n")
    return 0
