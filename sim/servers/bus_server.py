"""Serve any in-process ``RegisterBus`` on a loopback port with the wire protocol of
``nanoquote.host.device.wire``: the software device then runs in its own process, and a
driver reaches it exactly as it reaches a simulator or a remote device.

The requests are answered by the simulators' request loop
(:func:`nanoquote.sim.servers.server_process.answer_requests`): the bus's blocking calls
are wrapped as coroutines that never suspend, driven by
:func:`~nanoquote.sim.servers.server_process.run_sync`. :func:`serve_connection` answers
one connection, :func:`serve` a listener until ``OP_CLOSE`` (refusing a second client
while one is served, as the simulators do). ``token`` is the token a client's hello must
present (``None``: any).

``python -m nanoquote.sim.servers.bus_server [--max-levels N]`` serves the software
device (:class:`~nanoquote.sim.device.software_device.SoftwareDevice`) as a process the
way the simulators do: it prints ``NANOQUOTE_PORT <port> <token>`` and serves until
``OP_CLOSE``; :func:`start_bus_server` starts it and returns its
:class:`~nanoquote.sim.servers.server_process.SimServer`.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable, Sequence

from nanoquote.host.device.bus import RegisterBus, Resp
from nanoquote.sim.servers.server_process import (
    FRAME_TIMEOUT,
    SimServer,
    announce_port,
    answer_requests,
    launch,
    listen,
    new_token,
    run_sync,
    serve_requests,
)

__all__ = ["listen", "serve_connection", "serve", "start_bus_server", "main"]


def _accesses(bus: RegisterBus, idle: Callable[[int], None] | None):
    async def read(address: int) -> tuple[int, int]:
        return int(Resp.OKAY), bus.read32(address)

    async def write(address: int, value: int, strobe: int) -> int:
        bus.write32(address, value, strobe)
        return int(Resp.OKAY)

    async def run_idle(cycles: int) -> None:
        if idle is not None:
            idle(cycles)

    return read, write, run_idle


def serve_connection(conn: socket.socket, bus: RegisterBus, idle: Callable[[int], None] | None = None, *,
                     token: int | None = None, frame_timeout: float | None = FRAME_TIMEOUT) -> bool:
    """Answer requests on one connection until the client closes it (or sends ``OP_CLOSE``:
    then ``True``).

    ``idle(cycles)`` answers ``OP_IDLE`` (without it, the op does nothing).
    """
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return run_sync(answer_requests(conn, *_accesses(bus, idle), token=token, frame_timeout=frame_timeout))
    finally:
        conn.close()


def serve(listener: socket.socket, bus: RegisterBus, idle: Callable[[int], None] | None = None, *,
          token: int | None = None, frame_timeout: float | None = FRAME_TIMEOUT) -> None:
    """Accept and answer connections on ``listener`` until a client sends ``OP_CLOSE``."""
    run_sync(serve_requests(listener, *_accesses(bus, idle), token=token, frame_timeout=frame_timeout))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the software device on a loopback port.")
    parser.add_argument("--max-levels", type=int, default=8)
    parser.add_argument("--accept-timeout", type=float, default=600.0,
                        help="give up when no client connects for this many seconds")
    parser.add_argument("--frame-timeout", type=float, default=FRAME_TIMEOUT,
                        help="drop a client that stalls this many seconds within a frame")
    args = parser.parse_args(argv)
    from nanoquote.sim.device.software_device import SoftwareDevice

    device = SoftwareDevice(max_levels=args.max_levels)
    token = new_token()
    with listen(timeout=args.accept_timeout) as listener:
        announce_port(listener, token)
        serve(listener, device, token=token, frame_timeout=args.frame_timeout)
    return 0


def start_bus_server(max_levels: int = 8, *, frame_timeout: float = FRAME_TIMEOUT,
                     timeout: float = 60.0) -> SimServer:
    """Run the software device's server in a subprocess; returns its handle."""
    argv = [sys.executable, "-m", "nanoquote.sim.servers.bus_server", "--max-levels", str(max_levels),
            "--frame-timeout", str(frame_timeout)]
    return launch(argv, name="software device server (python -m nanoquote.sim.servers.bus_server)",
                  timeout=timeout)


if __name__ == "__main__":
    sys.exit(main())
