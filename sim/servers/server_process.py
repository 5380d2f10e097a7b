"""What every device server shares: the request loop, the listener and the process handle.

A server listens on a loopback port and answers the wire protocol of
:mod:`nanoquote.host.device.wire`. :func:`answer_requests` is the one request loop: it
awaits the ``read``/``write``/``idle`` coroutines it is given, so the Amaranth and the
cocotb servers (whose coroutines advance simulated time) and the in-process bus server
(:mod:`nanoquote.sim.servers.bus_server`, whose coroutines never suspend and run to
completion under :func:`run_sync`) all use it. :func:`serve_requests` accepts
connections until a client sends ``OP_CLOSE``. :class:`SimServer` is the parent's handle
on a server process, from :func:`launch`.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from nanoquote.host.device.bus import BusError, Resp, SocketBus
from nanoquote.host.device.wire import (
    OP_CLOSE,
    OP_IDLE,
    OP_READ,
    OP_WRITE,
    encode_response,
    recv_request,
)

__all__ = ["PORT_MARKER", "SimServer", "launch", "listen", "answer_requests", "serve_requests",
           "run_sync", "announce_port"]

#: The first line a server process prints on stdout: ``NANOQUOTE_PORT <port>``.
PORT_MARKER = "NANOQUOTE_PORT"

ReadFn = Callable[[int], Awaitable[tuple[int, int]]]
WriteFn = Callable[[int, int, int], Awaitable[int]]
IdleFn = Callable[[int], Awaitable[None]]
T = TypeVar("T")


async def answer_requests(conn: socket.socket, read: ReadFn, write: WriteFn, idle: IdleFn,
                          addr_width: int | None = None) -> bool:
    """Answer the requests on ``conn``; ``True`` when the client sent ``OP_CLOSE``,
    ``False`` when it closed the connection.

    ``read(address) -> (resp, data)``, ``write(address, value, strobe) -> resp`` and
    ``idle(cycles)`` perform the accesses. A misaligned address answers SLVERR and, with
    ``addr_width``, an address beyond the bus DECERR (as an interconnect would), both
    without an access. An access that raises :class:`~nanoquote.host.device.bus.BusError`
    answers its response code, one that raises ``ValueError`` (a malformed request)
    SLVERR; an unknown op answers SLVERR. Only the strobe's four low bits are passed on.
    """
    limit = None if addr_width is None else 1 << addr_width
    while (request := recv_request(conn)) is not None:
        op, address, value, strobe = request
        if op == OP_CLOSE:
            return True
        resp, data = int(Resp.OKAY), 0
        try:
            if op in (OP_READ, OP_WRITE) and address % 4:
                resp = int(Resp.SLVERR)
            elif op in (OP_READ, OP_WRITE) and limit is not None and address >= limit:
                resp = int(Resp.DECERR)
            elif op == OP_READ:
                resp, data = await read(address)
            elif op == OP_WRITE:
                resp = await write(address, value, strobe & 0xF)
            elif op == OP_IDLE:
                await idle(value)
            else:
                resp = int(Resp.SLVERR)
        except BusError as exc:
            resp, data = int(exc.resp), 0
        except ValueError:
            resp, data = int(Resp.SLVERR), 0
        conn.sendall(encode_response(resp, data))
    return False


async def serve_requests(listener: socket.socket, read: ReadFn, write: WriteFn, idle: IdleFn,
                         addr_width: int | None = None) -> None:
    """Accept connections and answer them (:func:`answer_requests`) until ``OP_CLOSE``.

    The socket calls block the simulator, which is the point: simulated time stands
    still while the host thinks. A client that disconnects without ``OP_CLOSE`` leaves
    the server waiting for the next connection (until the listener's timeout).
    """
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(None)
        with conn:
            if await answer_requests(conn, read, write, idle, addr_width):
                return


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that never waits on an event loop to completion; its result.

    A bare ``yield`` (``None``) is resumed at once; yielding anything else means the
    coroutine needs a real event loop, which is an error here.
    """
    try:
        while True:
            if coro.send(None) is not None:
                raise RuntimeError(f"{coro!r} waits on an event loop; run_sync cannot drive it")
    except StopIteration as stop:
        return stop.value
    finally:
        coro.close()


def listen(port: int = 0, timeout: float | None = None) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: any free port, see ``getsockname()``);
    ``accept`` gives up after ``timeout`` seconds (``None``: never)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    server.settimeout(timeout)
    return server


def announce_port(listener: socket.socket) -> None:
    """Print the port marker on stdout, then send stdout to stderr (the parent stops reading)."""
    print(f"{PORT_MARKER} {listener.getsockname()[1]}", flush=True)
    os.dup2(2, 1)


@dataclass
class SimServer:
    """A running simulator server: ``process, port = start_...()`` unpacks it.

    Use as a context manager, or call :meth:`stop`; :meth:`connect` opens a
    :class:`~nanoquote.host.device.bus.SocketBus` to it (one client at a time).
    ``results`` is the cocotb results file of a cocotb server (a failed test there makes
    :meth:`stop` return 1); ``run_dir`` is deleted by :meth:`stop`.
    """

    process: subprocess.Popen
    port: int
    name: str = "simulator server"
    results: Path | None = None
    run_dir: Path | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.process, self.port))

    def connect(self, timeout: float = 60.0) -> SocketBus:
        return SocketBus("127.0.0.1", self.port, timeout=timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Wait for the server to end (after a client's ``close``), else terminate it.

        The server runs in its own process group, so terminating signals that group: no
        simulator outlives its handle. Returns the exit status (1 if the server's cocotb
        test failed).
        """
        proc = self.process
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                code = proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
        try:
            if code == 0 and self.results is not None and _cocotb_failures(self.results):
                code = 1
        finally:
            if self.run_dir is not None:
                shutil.rmtree(self.run_dir, ignore_errors=True)
        return code

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)  # the group this handle's launch created
        except ProcessLookupError:
            pass

    def __enter__(self) -> SimServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(timeout=0 if exc[0] is not None else 10.0)


def _cocotb_failures(results: Path) -> int:
    """Failed tests in a cocotb results file (a missing or unreadable file counts as one)."""
    from cocotb_tools.check_results import get_results

    try:
        return get_results(results)[1]
    except RuntimeError:
        return 1


def launch(argv: Sequence[str], *, name: str | None = None, timeout: float = 300.0,
           env: dict[str, str] | None = None, cwd: str | Path | None = None,
           results: Path | None = None, run_dir: Path | None = None) -> SimServer:
    """Start ``argv`` (a server process) and wait for its port marker.

    ``name`` says which server it is in errors (default: the command); ``results`` and
    ``run_dir`` go to the :class:`SimServer`. A server that ends or stays silent before
    it listens is stopped and raises one error naming it.
    """
    name = name or f"simulator server {' '.join(argv)!r}"
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=env, cwd=cwd, text=True, bufsize=1, start_new_session=True)
    server = SimServer(proc, 0, name, results, run_dir)
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            server.stop(timeout=0)
            raise TimeoutError(f"{name} gave no port within {timeout} s")
        ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 1.0))
        line = proc.stdout.readline() if ready else None
        if line == "" or (line is None and proc.poll() is not None):
            code = server.stop(timeout=5)
            raise RuntimeError(f"{name} exited with status {code} before listening (its output is above)")
        if line is None:
            continue
        if line.startswith(PORT_MARKER):
            server.port = int(line.split()[1])
            return server
        sys.stderr.write(line)  # anything a tool printed before the marker
