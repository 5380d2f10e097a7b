"""Open a register bus to a quote device by backend name.

``model``: the in-process software device (bit-accurate model); ``amaranth`` and
``verilator``: the RTL in a simulator process serving the loopback protocol. The same
driver code runs over each.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nanoquote.host.device.bus import RegisterBus
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy

__all__ = ["BACKENDS", "STRATEGY_BACKENDS", "BackendError", "open_bus", "open_strategy"]

BACKENDS = ("model", "amaranth", "verilator")


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
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


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
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(STRATEGY_BACKENDS)}")
    from nanoquote.host.device.offload import offloaded_strategy

    with open_bus(backend, max_levels=config.max_levels, waves=waves) as bus:
        yield offloaded_strategy(config, bus, name=name)
