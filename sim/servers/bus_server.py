"""Serve any in-process ``RegisterBus`` on a loopback port with the wire protocol of
``nanoquote.host.device.wire``: the software device then runs in its own process, and a
driver reaches it exactly as it reaches a simulator or a remote device.

The requests are answered by the simulators' request loop
(:func:`nanoquote.sim.servers.server_process.answer_requests`): the bus's blocking calls
are wrapped as coroutines that never suspend, driven by
:func:`~nanoquote.sim.servers.server_process.run_sync`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from nanoquote.host.device.bus import RegisterBus, Resp
from nanoquote.sim.servers.server_process import answer_requests, listen, run_sync

__all__ = ["listen", "serve_connection"]


def serve_connection(conn: socket.socket, bus: RegisterBus, idle: Callable[[int], None] | None = None) -> None:
    """Answer requests on one connection until the client closes it (or sends ``OP_CLOSE``).

    ``idle(cycles)`` answers ``OP_IDLE`` (without it, the op does nothing).
    """

    async def read(address: int) -> tuple[int, int]:
        return int(Resp.OKAY), bus.read32(address)

    async def write(address: int, value: int, strobe: int) -> int:
        bus.write32(address, value, strobe)
        return int(Resp.OKAY)

    async def run_idle(cycles: int) -> None:
        if idle is not None:
            idle(cycles)

    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        run_sync(answer_requests(conn, read, write, run_idle))
    finally:
        conn.close()
