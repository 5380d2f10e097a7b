"""``nanoquote replay``: the public JSON Lines interface of the strategy (docs/replay.md).

Two streaming passes: every line is validated before the first one runs, and memory does
not grow with the file. Standard input and other unseekable sources (a pipe, ``<(zcat
...)``) are copied to a temporary file during the first pass and replayed from it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, BinaryIO

from nanoquote.host.apps.replay import (
    ReplayError,
    anomaly_summary,
    dumps_record,
    iter_events,
    replay_records,
    resolve_config,
    scan_events,
)
from nanoquote.host.device.bus import BusError, BusTimeout, LinkError
from nanoquote.host.device.register_access import DeviceError
from nanoquote.host.strategy.config import ConfigError, MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.sim.device_backends import STRATEGY_BACKENDS, BackendError, backend_type

from nanoquote.cli import STDOUT, describe_os_error

__all__ = ["configure", "run", "golden_strategy"]

PROG = "nanoquote replay"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("events", help="JSON Lines event file ('-' for stdin)")
    parser.add_argument("--policy", choices=["legacy", "exchange"], help="override quote_policy")
    parser.add_argument("--config", help="TOML file with MarketMakerConfig fields")
    parser.add_argument("--state", action="store_true", help="emit a state record after every event")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when there was any anomaly (after writing all output)")
    parser.add_argument("--backend", type=backend_type(STRATEGY_BACKENDS), default="golden",
                        metavar="{" + ",".join(STRATEGY_BACKENDS) + "} | serial:PORT?baud=N",
                        help="where ladders are computed: the golden model (default), the software "
                             "device, the RTL in a simulator, the simulated board, or a board on a serial "
                             "port (serial:///dev/ttyUSB1?baud=3000000)")


def golden_strategy(config: MarketMakerConfig) -> MarketMakerStrategy:
    return MarketMakerStrategy("replay", 1, config)


def _error(message: object) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _tee(lines: Iterable[bytes | str], spool: IO[bytes]) -> Iterator[bytes | str]:
    """The lines, each also appended to ``spool`` (as UTF-8 when it is text)."""
    for line in lines:
        spool.write(line if isinstance(line, bytes) else line.encode("utf-8"))
        yield line


def _validated_source(events: str, stack: contextlib.ExitStack) -> tuple[BinaryIO, list]:
    """Pass 1: validate every line. Returns a binary file positioned at the first line,
    to be read again, and what :func:`scan_events` keeps (the config event)."""
    if events == "-":
        source = getattr(sys.stdin, "buffer", sys.stdin)  # a text stream in in-process tests
    else:
        source = stack.enter_context(open(events, "rb"))
    if source.seekable():  # a file, or stdin redirected from one
        start = source.tell()
        head = scan_events(source)
        source.seek(start)
        return source, head
    spool = stack.enter_context(tempfile.TemporaryFile(prefix="nanoquote-replay-"))
    head = scan_events(_tee(source, spool))
    spool.seek(0)
    return spool, head


def run(args: argparse.Namespace) -> int:
    name = "<stdin>" if args.events == "-" else args.events
    try:
        base = MarketMakerConfig.from_toml(args.config) if args.config else None
    except ConfigError as exc:
        return _error(exc)
    with contextlib.ExitStack() as stack:
        try:
            source, head = _validated_source(args.events, stack)
        except OSError as exc:
            return _error(f"cannot read {describe_os_error(exc, name)}")
        except ReplayError as exc:
            return _error(f"{name}: {exc}")
        try:
            config = resolve_config(head, base, quote_policy=args.policy)
        except ReplayError as exc:
            return _error(f"{name}: {exc}")
        try:
            if args.backend == "golden":
                strategy = golden_strategy(config)
                _write(replay_records(iter_events(_reading(source)), strategy, with_state=args.state))
            else:
                from nanoquote.host.device.offload import offloaded_strategy
                from nanoquote.sim.device_backends import open_bus

                with open_bus(args.backend, max_levels=config.max_levels) as bus:
                    strategy = offloaded_strategy(config, bus)
                    _write(replay_records(iter_events(_reading(source)), strategy, with_state=args.state))
        except ReplayError as exc:  # a non-finite number in a record, or the file changed
            return _error(f"{name}: {exc}")
        except (ConfigError, DeviceError, BackendError) as exc:  # no backend, or it refuses the config
            return _error(f"{args.backend} backend: {exc}")
        except (LinkError, BusTimeout, BusError) as exc:  # the link failed mid-replay (a dead board)
            return _error(f"{args.backend} backend: {exc}")
        except _WriteError as exc:
            return _error(f"cannot write {describe_os_error(exc.error, STDOUT)}")
        except _ReadError as exc:  # reading the events again
            return _error(f"cannot read {describe_os_error(exc.error, name)}")
    summary = anomaly_summary(strategy.anomaly_counts)
    if summary is not None:
        print(f"{PROG}: {summary}", file=sys.stderr)
    return 1 if args.strict and summary is not None else 0


class _StreamError(Exception):
    """An I/O failure of the replay's own streams (not of a device backend)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _ReadError(_StreamError):
    """Reading the events failed in the second pass."""


class _WriteError(_StreamError):
    """Writing the output failed."""


def _reading(lines: Iterable[bytes | str]) -> Iterator[bytes | str]:
    """The lines; a failure to read one is a ``_ReadError`` (not a device's OSError)."""
    it = iter(lines)
    while True:
        try:
            line = next(it)
        except StopIteration:
            return
        except OSError as exc:
            raise _ReadError(exc) from exc
        yield line


def _write(records: Iterable[dict]) -> None:
    write = sys.stdout.write
    for record in records:
        line = dumps_record(record) + "\n"
        try:
            write(line)
        except BrokenPipeError:
            raise  # nanoquote.cli ends quietly
        except OSError as exc:
            raise _WriteError(exc) from exc
