"""``nanoquote demo``: the strategy on a backend, against the market and exchange simulators.

The market (seeded, ``nanoquote.sim.market``, or recorded, ``--market FILE.csv``) and the
exchange (``nanoquote.sim.exchange``) are played through the strategy by
``nanoquote.sim.trading_session``; the strategy computes its ladders on the chosen
backend: the Verilator-simulated top level by default (the host driver and the
QuoteManager against the RTL), the software device, the top in ``amaranth.sim``, or the
golden strategy alone. A progress bar runs meanwhile; at the end a summary table, and
the report (:mod:`nanoquote.host.apps.demo_report`) in ``--out``. The simulators' own
output goes to ``simulator.log`` there unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nanoquote.host.strategy.config import ConfigError, MarketMakerConfig
from nanoquote.sim.device_backends import STRATEGY_BACKENDS, backend_type, open_strategy
from nanoquote.sim.exchange import ExchangeConfig
from nanoquote.sim.market import BookEvent, MarketConfig, MarketEvent, generate_market
from nanoquote.sim.trading_session import SessionLog, run_trading_session, summarize

from nanoquote.cli import count, write_stdout

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["BACKENDS", "DEFAULT_EVENTS", "DemoRun", "configure", "demo_market", "run", "run_demo"]

PROG = "nanoquote demo"
#: Where ladders are computed; the first is the default.
#: The choices of ``--backend``, the default (the simulated hardware) first.
BACKENDS = ("verilator", *(b for b in STRATEGY_BACKENDS if b != "verilator"))
#: Book events of a simulated market by default: about 100 s of book time, a session
#: that runs in well under a minute over Verilator (docs/market.md, "The demo").
DEFAULT_EVENTS = 5000
#: The simulator's output, in ``--out``, unless ``--verbose``.
SIMULATOR_LOG = "simulator.log"


@dataclass
class DemoRun:
    """One demo session: its inputs, the session log, the summary and the device's counters."""

    backend: str
    config: MarketMakerConfig
    exchange_config: ExchangeConfig
    seed: int | None
    market: str
    log: SessionLog
    summary: dict[str, Any]
    #: ``QuoteDriver.counters()`` after the session; ``None`` on the golden backend.
    counters: dict[str, int] | None = None
    #: Wall time of the whole run, and of starting the device (a build on a cold cache).
    wall_s: float = 0.0
    start_s: float = 0.0


def demo_market(config: MarketMakerConfig, seed: int, events: int) -> list[MarketEvent]:
    """The seeded simulated market on the strategy's tick grid (``events`` book events)."""
    tick = config.tick_size
    market = MarketConfig(tick=tick, start_bid=max(tick, MarketConfig.start_bid // tick * tick))
    return generate_market(seed, events, market)


def _books(events: Iterable[MarketEvent]) -> int:
    return sum(isinstance(e, BookEvent) for e in events)


def _with_progress(events: Iterable[MarketEvent], advance: Callable[[], None]) -> Iterator[MarketEvent]:
    for event in events:
        yield event
        if isinstance(event, BookEvent):
            advance()


@contextlib.contextmanager
def _simulator_output(log_path: Path | None) -> Iterator[None]:
    """Standard error to ``log_path`` for the block, both file descriptor 2 (which a
    simulator process inherits) and ``sys.stderr`` (where a server's launcher copies what
    the simulator printed before it listened); ``None`` leaves it alone."""
    if log_path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log_path, "a", encoding="utf-8", errors="replace", buffering=1) as log:
            os.dup2(log.fileno(), 2)
            with contextlib.redirect_stderr(log):
                yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def run_demo(backend: str, config: MarketMakerConfig, events: list[MarketEvent], *, seed: int | None = None,
             market: str = "simulator", progress: Callable[[], None] | None = None,
             started: Callable[[], None] | None = None, simulator_log: Path | None = None,
             waves: Path | None = None) -> DemoRun:
    """Play ``events`` through the strategy on ``backend`` and the exchange simulator.

    ``started`` is called once the device is up (built, launched, configured),
    ``progress`` after every book event; ``simulator_log`` takes the simulator's
    standard error while its device lives (``None``: the terminal's); ``waves``: the
    Verilator backend dumps every signal of the top there (``.fst`` or ``.vcd``).
    """
    exchange_config = ExchangeConfig(tick=config.tick_size)
    start = time.perf_counter()
    counters = None
    with _simulator_output(simulator_log), open_strategy(backend, config, "demo", waves=waves) as strategy:
        start_s = time.perf_counter() - start
        if started is not None:
            started()
        stream = events if progress is None else _with_progress(events, progress)
        log = run_trading_session(strategy, stream, exchange_config)
        driver = getattr(strategy.engine, "driver", None)
        if driver is not None:
            counters = driver.counters()
    wall = time.perf_counter() - start
    return DemoRun(backend, config, exchange_config, seed, market, log, summarize(log, config), counters,
                   wall, start_s)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", type=backend_type(BACKENDS), default=BACKENDS[0],
                        metavar="{" + ",".join(BACKENDS) + "} | serial:PORT?baud=N",
                        help="where ladders are computed: the Verilator-simulated top level (default), "
                             "the software device, the top in amaranth.sim, the golden strategy alone, "
                             "the simulated board over its serial link, or a board on a serial port "
                             "(serial:///dev/ttyUSB1?baud=3000000, docs/board.md)")
    parser.add_argument("--policy", choices=["legacy", "exchange"],
                        help="override quote_policy (default: the config's, else exchange)")
    parser.add_argument("--events", type=count,
                        help=f"book events to play (default {DEFAULT_EVENTS}; with --market, the whole file)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated market (default 1)")
    parser.add_argument("--config", help="TOML file with MarketMakerConfig fields")
    parser.add_argument("--market", help="recorded market data (CSV, docs/market.md) instead of the simulator")
    parser.add_argument("--out", default="build/demo", help="report directory (default build/demo)")
    parser.add_argument("--waves", type=Path, metavar="FILE",
                        help="with --backend verilator: dump every signal of the top level to FILE "
                             "(.fst, or .vcd), from reset to the end of the session")
    parser.add_argument("--verbose", action="store_true",
                        help=f"let the simulators' own output through (else it goes to {SIMULATOR_LOG} in --out)")


def _error(message: object) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _load(args: argparse.Namespace) -> tuple[MarketMakerConfig, list[MarketEvent], str]:
    """The configuration and the market the arguments name (``ConfigError``,
    ``MarketDataError`` on a bad file)."""
    policy = {} if args.policy is None else {"quote_policy": args.policy}
    config = MarketMakerConfig.from_toml(args.config, **policy) if args.config else MarketMakerConfig(**policy)
    if args.market is None:
        return config, demo_market(config, args.seed, args.events or DEFAULT_EVENTS), "simulator"
    from nanoquote.sim.market_csv import read_csv

    events = read_csv(args.market, tick=config.tick_size)
    if args.events is not None:
        kept, books = [], 0
        for event in events:
            if isinstance(event, BookEvent):
                if books == args.events:
                    break
                books += 1
            kept.append(event)
        events = kept
    return config, events, args.market


def _console(file: TextIO, *, terminal: bool | None = None, width: int | None = None) -> Console:
    """A console without highlighting (numbers are not syntax)."""
    from rich.console import Console

    return Console(file=file, highlight=False, force_terminal=terminal, width=width)


def run(args: argparse.Namespace) -> int:
    from nanoquote.host.device.bus import BusError, BusTimeout, LinkError
    from nanoquote.host.device.register_access import DeviceError
    from nanoquote.sim.device_backends import BackendError
    from nanoquote.sim.market_csv import MarketDataError

    try:
        config, events, market = _load(args)
    except (ConfigError, MarketDataError) as exc:
        return _error(exc)
    if args.waves is not None:
        from nanoquote.sim.servers.verilator_server import wave_format

        if args.backend != "verilator":
            return _error(f"--waves needs --backend verilator (the {args.backend} backend has no waves)")
        try:
            wave_format(args.waves)
        except ValueError as exc:
            return _error(exc)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = None
    if not args.verbose and args.backend != "golden":
        log_path = out / SIMULATOR_LOG
        log_path.write_bytes(b"")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    terminal = _console(sys.stdout)  # the bar only on a terminal: no progress in a pipe or a file
    books = _books(events)
    seed = None if args.market else args.seed
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("book events"), TimeElapsedColumn(), console=terminal,
                      disable=not terminal.is_terminal) as bar:
            running = f"{args.backend} ({config.quote_policy})"
            starting = running if args.backend in ("golden", "model") else f"{args.backend}: starting"
            task = bar.add_task(starting, total=books)
            result = run_demo(args.backend, config, events, seed=seed, market=market,
                              progress=lambda: bar.advance(task),
                              started=lambda: bar.update(task, description=running), simulator_log=log_path,
                              waves=args.waves)
    except (ConfigError, DeviceError, BackendError) as exc:  # no backend, or it refuses the config
        return _error(f"{args.backend} backend: {exc}")
    except (LinkError, BusTimeout, BusError) as exc:  # the link failed mid-session (a dead board)
        return _error(f"{args.backend} backend: {exc}")
    from nanoquote.host.apps.demo_report import summary_table, write_report

    paths = write_report(result, out)
    text = io.StringIO()
    console = _console(text, terminal=terminal.is_terminal, width=terminal.width)
    console.print(summary_table(result))
    console.print(f"report: {paths['report']}" + (f" (simulator output: {log_path})" if log_path else ""),
                  soft_wrap=True)
    if args.waves is not None:
        console.print(f"waves: {args.waves}", soft_wrap=True)
    write_stdout(text.getvalue())
    return 0
