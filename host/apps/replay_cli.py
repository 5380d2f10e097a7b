"""``nanoquote replay``: the public JSON Lines interface of the strategy."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from nanoquote.host.apps.replay import ReplayError, parse_events, resolve_config, run_replay
from nanoquote.host.strategy.config import ConfigError, MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("events", type=Path, help="JSON Lines event file ('-' for stdin)")
    parser.add_argument("--policy", choices=["legacy", "exchange"], help="override quote_policy")
    parser.add_argument("--config", type=Path, help="TOML file with MarketMakerConfig fields")
    parser.add_argument("--state", action="store_true", help="emit a state record after every event")
    parser.add_argument("--backend", choices=["golden", "model", "amaranth", "verilator"], default="golden",
                        help="where ladders are computed: the golden model (default), the software "
                             "device, or the RTL in a simulator")


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
    if args.backend == "golden":
        _write(run_replay(events, golden_strategy, config, with_state=args.state))
        return 0
    from nanoquote.host.device.offload import offloaded_strategy
    from nanoquote.sim.device_backends import open_bus

    with open_bus(args.backend, max_levels=config.max_levels) as bus:
        _write(run_replay(events, lambda c: offloaded_strategy(c, bus), config, with_state=args.state))
    return 0


def _write(records: Iterable[dict]) -> None:
    out = sys.stdout
    for record in records:
        out.write(json.dumps(record, separators=(",", ":")) + "\n")
