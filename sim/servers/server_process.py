"""What the simulator servers share: the request loop and the process handle.

A simulator server is a process that elaborates the device, listens on a loopback port
and answers the wire protocol of :mod:`nanoquote.host.device.bus` by performing each access as
a bus transaction on the simulated AXI4-Lite port. :func:`serve_requests` is the loop
(independent of the simulator: it awaits the ``read``/``write``/``idle`` coroutines it
is given, so both the Amaranth and the cocotb server use it); :class:`SimServer` is the
parent's handle on the process, from :func:`launch`.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

from nanoquote.host.device.bus import (
    OP_CLOSE,
    OP_IDLE,
    OP_READ,
    OP_WRITE,
    REQUEST,
    RESPONSE,
    Resp,
    SocketBus,
)
from nanoquote.sim.servers.bus_server import listen as loopback_listener
from nanoquote.sim.servers.bus_server import recv_exact

__all__ = ["PORT_MARKER", "SimServer", "launch", "serve_requests", "announce_port"]

#: The first line a server process prints on stdout: ``NANOQUOTE_PORT <port>``.
PORT_MARKER = "NANOQUOTE_PORT"

ReadFn = Callable[[int], Awaitable[tuple[int, int]]]
WriteFn = Callable[[int, int, int], Awaitable[int]]
IdleFn = Callable[[int], Awaitable[None]]


async def serve_requests(
    listener: socket.socket, read: ReadFn, write: WriteFn, idle: IdleFn, addr_width: int,
) -> None:
    """Accept connections and answer requests until a client sends ``OP_CLOSE``.

    The socket calls block the simulator, which is the point: simulated time stands
    still while the host thinks. A client that disconnects without ``OP_CLOSE`` leaves
    the server waiting for the next connection (until the listener's timeout).
    Addresses beyond the bus's ``addr_width`` answer DECERR (as an interconnect would)
    and a misaligned address SLVERR, without a bus transaction.
    """
    limit = 1 << addr_width
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(None)
        with conn:
            while (request := recv_exact(conn, REQUEST.size)) is not None:
                op, address, value, strobe = REQUEST.unpack(request)
                if op == OP_CLOSE:
                    return
                resp, data = int(Resp.OKAY), 0
                if op in (OP_READ, OP_WRITE) and address % 4:
                    resp = int(Resp.SLVERR)
                elif op in (OP_READ, OP_WRITE) and address >= limit:
                    resp = int(Resp.DECERR)
                elif op == OP_READ:
                    resp, data = await read(address)
                elif op == OP_WRITE:
                    resp = await write(address, value, strobe & 0xF)
                elif op == OP_IDLE:
                    await idle(value)
                else:
                    resp = int(Resp.SLVERR)
                conn.sendall(RESPONSE.pack(resp, data))


def announce_port(listener: socket.socket) -> None:
    """Print the port marker on stdout, then send stdout to stderr (the parent stops reading)."""
    print(f"{PORT_MARKER} {listener.getsockname()[1]}", flush=True)
    os.dup2(2, 1)


def listen(timeout: float | None = 600.0) -> socket.socket:
    """A loopback listener on a free port; ``accept`` gives up after ``timeout`` seconds."""
    listener = loopback_listener()
    listener.settimeout(timeout)
    return listener


class SimServer(NamedTuple):
    """A running simulator server: ``process, port = start_...()`` unpacks it.

    Use as a context manager, or call :meth:`stop`; :meth:`connect` opens a
    :class:`~nanoquote.host.device.bus.SocketBus` to it (one client at a time).
    """

    process: subprocess.Popen
    port: int

    def connect(self, timeout: float = 60.0) -> SocketBus:
        return SocketBus("127.0.0.1", self.port, timeout=timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Wait for the server to end (after a client's ``close``), else terminate it.

        The server runs in its own process group (the Verilator server's simulation is a
        grandchild), so terminating signals that group: no simulator outlives its handle.
        """
        proc = self.process
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGTERM)
            try:
                return proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                return proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)  # the group this handle's launch created
        except ProcessLookupError:
            pass

    def __enter__(self) -> SimServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(timeout=0 if exc[0] is not None else 10.0)


def launch(argv: Sequence[str], *, timeout: float = 300.0, env: dict[str, str] | None = None,
           cwd: str | None = None) -> SimServer:
    """Start ``argv`` (a server process) and wait for its port marker."""
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=env, cwd=cwd, text=True, bufsize=1, start_new_session=True)
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            SimServer(proc, 0).stop(timeout=0)
            raise TimeoutError(f"simulator server {argv!r} gave no port within {timeout} s")
        ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 1.0))
        if not ready:
            if proc.poll() is not None:
                raise RuntimeError(f"simulator server {argv!r} exited with {proc.returncode} before listening")
            continue
        line = proc.stdout.readline()
        if not line:
            proc.wait()
            raise RuntimeError(f"simulator server {argv!r} exited with {proc.returncode} before listening")
        if line.startswith(PORT_MARKER):
            return SimServer(proc, int(line.split()[1]))
        sys.stderr.write(line)  # anything a tool printed before the marker
