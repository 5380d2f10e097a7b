"""Open a register bus to a quote device by backend name.

``model``: the in-process software device (bit-accurate model); ``amaranth`` and
``verilator``: the RTL in a simulator process serving the loopback protocol;
``verilator-board``: the simulated board (the board core, UART host link included, under
Verilator behind a pseudo-terminal) over the serial link; ``serial:<port>?baud=N``: a board
on a serial port (``serial:///dev/ttyUSB1?baud=3000000``, docs/board.md). The same driver
code runs over each.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nanoquote.host.device.bus import RegisterBus
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy

__all__ = ["BACKENDS", "STRATEGY_BACKENDS", "BackendError", "open_bus", "open_strategy", "check_backend",
           "backend_type"]

BACKENDS = ("model", "amaranth", "verilator", "verilator-board")


class BackendError(RuntimeError):
    """A backend could not be started (its simulator failed to build or to launch)."""


@contextmanager
def open_bus(backend: str, max_levels: int = 8, *, waves: Path | None = None) -> Iterator[RegisterBus]:
    """A connected bus for the duration of the ``with`` block; the device is torn down after.

    ``waves``: the Verilator backend dumps every signal of the top to that file (``.fst``
    or ``.vcd``); the other backends have no waves and refuse it.
    """
    if waves is not None and backend != "verilator":
        raise ValueError(f"waves are written by the verilator backend only, not {backend!r}")
    if backend.startswith("serial:"):
        from nanoquote.host.device.bus import LinkError
        from nanoquote.host.device.serial_bus import SerialBus, parse_serial_url

        url = parse_serial_url(backend)
        try:
            bus = SerialBus(url.port, url.baud, url.timeout)
        except LinkError as exc:
            raise BackendError(str(exc)) from None
        try:
            yield bus
        finally:
            bus.close()
        return
    if backend == "verilator-board":
        from nanoquote.sim.servers.board_server import start_board_sim

        try:
            board = start_board_sim(max_levels=max_levels)
        except RuntimeError as exc:
            raise BackendError(f"the {backend} backend did not start: {exc}") from exc
        with board:
            bus = board.connect()
            try:
                yield bus
            finally:
                bus.close()
        return
    if backend == "model":
        from nanoquote.sim.device.software_device import SoftwareDevice

        yield SoftwareDevice(max_levels=max_levels)
        return
    if backend in ("amaranth", "verilator"):
        if backend == "amaranth":
            from nanoquote.sim.servers.amaranth_server import start_amaranth_server as start
        else:
            from nanoquote.sim.servers.verilator_server import start_verilator_server as start
        try:
            server = start(max_levels=max_levels, **({} if waves is None else {"waves": waves}))
        except RuntimeError as exc:  # a failed Verilator build, a server that exited early
            raise BackendError(f"the {backend} backend did not start: {exc}") from exc
        with server:
            bus = server.connect()
            try:
                yield bus
            finally:
                bus.close()
        return
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)} or serial:<port>")


#: Backends a strategy runs on: the golden strategy alone, or offloaded to a device.
STRATEGY_BACKENDS = ("golden", *BACKENDS)


@contextmanager
def open_strategy(backend: str, config: MarketMakerConfig, name: str, *,
                  waves: Path | None = None) -> Iterator[MarketMakerStrategy]:
    """The strategy of ``backend`` for the ``with`` block: ``golden`` is
    MarketMakerStrategy itself; a device backend offloads it to that device, which is
    torn down after."""
    if backend == "golden":
        if waves is not None:
            raise ValueError("waves are written by the verilator backend only, not 'golden'")
        yield MarketMakerStrategy(name, 1, config)
        return
    check_backend(backend)
    from nanoquote.host.device.offload import offloaded_strategy

    with open_bus(backend, max_levels=config.max_levels, waves=waves) as bus:
        yield offloaded_strategy(config, bus, name=name)


def check_backend(backend: str, names: tuple[str, ...] = BACKENDS) -> str:
    """``backend`` if it is one of ``names`` or a well-formed ``serial:`` URL, else a
    ``ValueError`` saying why."""
    if backend in names:
        return backend
    if backend.startswith("serial:"):
        from nanoquote.host.device.serial_bus import parse_serial_url

        parse_serial_url(backend)
        return backend
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(names)} or "
                     "serial:<port>?baud=<rate>")


def backend_type(names: tuple[str, ...]):
    """An argparse ``type`` accepting ``names`` and ``serial:`` URLs (one clear error otherwise)."""
    import argparse

    def parse(text: str) -> str:
        try:
            return check_backend(text, names)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse
