"""What every device server shares: the request loop, the listener and the process handle.

A server listens on a loopback port (127.0.0.1 only) and answers the wire protocol of
:mod:`nanoquote.host.device.wire`. :func:`answer_requests` is the one request loop: it
awaits the ``read``/``write``/``idle`` coroutines it is given, so the Amaranth server
(whose coroutines advance simulated time), the Verilator server (whose coroutines ask
its C++ harness, which also performs whole batches: the ``batch`` argument) and the
in-process bus server (:mod:`nanoquote.sim.servers.bus_server`, whose coroutines never
suspend and run to completion under :func:`run_sync`) all use it. :func:`serve_requests` accepts
connections until a client sends ``OP_CLOSE``. :class:`SimServer` is the parent's handle
on a server process, from :func:`launch`.

One client at a time: while one is served, another is answered ``RESP_BUSY`` and closed.
A connection must open with a hello presenting the server's token (a random
:func:`new_token`, handed to the parent on the port-marker line); one that does not is
refused and closed. A client that stalls in the middle of a frame (or does not say hello)
for ``frame_timeout`` seconds, resets, vanishes with answers pending or sends garbage
loses its connection, never the server, which goes on to the next connection.
"""

from __future__ import annotations

import hmac
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from nanoquote.host.device.batch import (
    MAX_BATCH_OPS,
    BatchError,
    Operation,
    check_batch,
    perform_batch,
)
from nanoquote.host.device.bus import BusError, LinkError, Resp, SocketBus
from nanoquote.host.device.wire import (
    BATCH_OP,
    MAX_IDLE_CYCLES,
    OP_BATCH,
    OP_CLOSE,
    OP_HELLO,
    OP_IDLE,
    OP_READ,
    OP_WRITE,
    PROTOCOL_VERSION,
    RESP_BUSY,
    RESP_MALFORMED,
    RESP_REFUSED,
    SEND_FLAGS,
    TOKEN_BITS,
    Request,
    decode_batch,
    encode_batch_answer,
    encode_response,
    hello_token,
    recv_exact,
    recv_request,
)

__all__ = ["PORT_MARKER", "FRAME_TIMEOUT", "BatchFn", "ServerExited", "SimServer", "launch", "listen",
           "answer_requests", "serve_requests", "run_sync", "announce_port", "new_token"]

#: The first line a server process prints on stdout: ``NANOQUOTE_PORT <port> <token>``
#: (the token in hex; only the parent, which reads the pipe, learns it).
PORT_MARKER = "NANOQUOTE_PORT"
#: Seconds a client may take over one frame (and over its hello, from the accept).
FRAME_TIMEOUT = 10.0

ReadFn = Callable[[int], Awaitable[tuple[int, int]]]
WriteFn = Callable[[int, int, int], Awaitable[int]]
IdleFn = Callable[[int], Awaitable[None]]
#: Performs a whole checked batch: ``(resp, results)`` as :func:`_perform_batch` answers it.
BatchFn = Callable[[list[Operation]], Awaitable[tuple[int, list[Any]]]]
T = TypeVar("T")


class _Dropped(Exception):
    """The connection is given up (reset, broken pipe, stalled, refused)."""


def _log(message: str) -> None:
    print(f"nanoquote server: {message}", file=sys.stderr, flush=True)


def _send(conn: socket.socket, frame: bytes) -> None:
    try:
        conn.sendall(frame, SEND_FLAGS)
    except OSError as exc:
        raise _Dropped(f"the client went away ({exc})") from None


def _recv(conn: socket.socket, frame_timeout: float | None) -> Request | None:
    if frame_timeout is None:
        conn.settimeout(None)
    try:
        return recv_request(conn, frame_timeout)
    except TimeoutError:
        raise _Dropped(f"the client stalled for {frame_timeout} s in the middle of a frame") from None
    except OSError as exc:
        raise _Dropped(f"the connection broke ({exc})") from None


def _same_token(presented: int, token: int) -> bool:
    size = TOKEN_BITS // 8
    return hmac.compare_digest(presented.to_bytes(size, "little"), token.to_bytes(size, "little"))


def _greet(conn: socket.socket, token: int | None, frame_timeout: float | None) -> bool:
    """Read the hello; answer OKAY, or refuse it (and ``False``)."""
    hello = _recv(conn, frame_timeout)
    if hello is None:
        return False
    if hello.op != OP_HELLO:
        why = f"its first frame is op {hello.op}, not a hello"
    elif hello.strobe != PROTOCOL_VERSION:
        why = f"it speaks wire protocol {hello.strobe}"
    elif token is not None and not _same_token(hello_token(hello), token):
        why = "wrong or missing token"
    else:
        _send(conn, encode_response(Resp.OKAY, hello.seq, PROTOCOL_VERSION))
        return True
    _send(conn, encode_response(RESP_REFUSED, hello.seq, PROTOCOL_VERSION))
    _log(f"refused a client: {why}")
    return False


def _refuse_busy(listener: socket.socket, frame_timeout: float | None) -> None:
    """Accept the waiting connection, answer its hello ``RESP_BUSY`` and close it."""
    timeout = listener.gettimeout()
    listener.setblocking(False)
    try:
        conn, _ = listener.accept()
    except (BlockingIOError, ConnectionError):
        return  # it went away before we got to it
    finally:
        listener.settimeout(timeout)
    with conn:
        try:
            hello = recv_request(conn, min(frame_timeout or 1.0, 1.0))
            conn.sendall(encode_response(RESP_BUSY, 0 if hello is None else hello.seq, PROTOCOL_VERSION),
                         SEND_FLAGS)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    _log("refused a second client: busy")


def _next_request(conn: socket.socket, listener: socket.socket | None,
                  frame_timeout: float | None) -> Request | None:
    """The next request on ``conn`` (``None``: closed); other clients meanwhile are refused."""
    while True:
        try:  # wait for the frame's first byte as long as the client likes (it may think)
            readable, _, _ = select.select([conn] if listener is None else [conn, listener], [], [])
        except (OSError, ValueError) as exc:
            raise _Dropped(f"cannot wait on the connection ({exc})") from None
        if conn in readable:  # first: a client that reconnects has closed its old link
            return _recv(conn, frame_timeout)
        _refuse_busy(listener, frame_timeout)


def _recv_batch(conn: socket.socket, request: Request, frame_timeout: float | None) -> list[Operation] | None:
    """The operations of an ``OP_BATCH`` request, or ``None`` (answered malformed) if they
    are not well formed; an oversized one drops the connection (its records are not read)."""
    if request.value > MAX_BATCH_OPS:
        _send(conn, encode_batch_answer(RESP_MALFORMED, request.seq, []))
        raise _Dropped(f"a batch of {request.value} operations (at most {MAX_BATCH_OPS})")
    try:
        body = recv_exact(conn, request.value * BATCH_OP.size, frame_timeout)
    except TimeoutError:
        raise _Dropped(f"the client stalled for {frame_timeout} s in the middle of a batch") from None
    except OSError as exc:
        raise _Dropped(f"the connection broke ({exc})") from None
    if body is None:
        raise _Dropped("the client closed the connection in the middle of a batch")
    try:
        ops = decode_batch(body)
        check_batch(ops)
    except ValueError as exc:
        _log(f"refused a malformed batch: {exc}")
        _send(conn, encode_batch_answer(RESP_MALFORMED, request.seq, []))
        return None
    return ops


async def _perform_batch(ops: list[Operation], read: ReadFn, write: WriteFn, idle: IdleFn,
                         limit: int | None) -> tuple[int, list[Any]]:
    """``(resp, results)`` of a checked batch: OKAY and every result, or the failing
    operation's response and the results before it. Each access is answered as the
    same request alone would be (an address beyond the bus: DECERR without an access)."""

    async def checked_read(address: int) -> tuple[int, int]:
        if limit is not None and address >= limit:
            return int(Resp.DECERR), 0
        try:
            return await read(address)
        except BusError as exc:
            return int(exc.resp), 0
        except ValueError:
            return int(Resp.SLVERR), 0

    async def checked_write(address: int, value: int, strobe: int) -> int:
        if limit is not None and address >= limit:
            return int(Resp.DECERR)
        try:
            return await write(address, value, strobe)
        except BusError as exc:
            return int(exc.resp)
        except ValueError:
            return int(Resp.SLVERR)

    try:
        return int(Resp.OKAY), await perform_batch(ops, checked_read, checked_write, idle)
    except BatchError as exc:
        return int(exc.resp), exc.results


async def answer_requests(conn: socket.socket, read: ReadFn, write: WriteFn, idle: IdleFn,
                          addr_width: int | None = None, *, token: int | None = None,
                          listener: socket.socket | None = None,
                          frame_timeout: float | None = FRAME_TIMEOUT, batch: BatchFn | None = None) -> bool:
    """Answer the requests on ``conn``; ``True`` when the client sent ``OP_CLOSE``,
    ``False`` when the connection ended otherwise.

    The first frame must be a hello with ``token`` (``None``: any token), else the
    connection is refused. ``read(address) -> (resp, data)``, ``write(address, value,
    strobe) -> resp`` and ``idle(cycles)`` perform the accesses; every answer echoes its
    request's ``seq``. A misaligned address answers SLVERR and, with ``addr_width``, an
    address beyond the bus DECERR (as an interconnect would), both without an access. An
    access that raises :class:`~nanoquote.host.device.bus.BusError` answers its response
    code, one that raises ``ValueError`` (a malformed request) SLVERR; an unknown op, a
    second hello and an idle beyond ``MAX_IDLE_CYCLES`` answer SLVERR. Only the strobe's
    four low bits are passed on.

    An ``OP_BATCH`` is checked whole before any of it is performed (a malformed one is
    answered ``RESP_MALFORMED``; one of more than ``MAX_BATCH_OPS`` operations also
    loses its connection, its records unread), then performed through the same
    ``read``/``write``/``idle`` up to the first error response, or handed whole to
    ``batch`` (a server whose device performs batches itself: one step per batch, not
    per access; it must answer as that loop would, an address beyond the bus included).

    With ``listener``, a client that connects meanwhile is answered busy and closed. A
    connection that breaks, stalls ``frame_timeout`` seconds within a frame (or before
    its hello) or is refused ends with ``False`` (and a line on stderr), never an error.
    """
    limit = None if addr_width is None else 1 << addr_width
    try:
        if not _greet(conn, token, frame_timeout):
            return False
        while (request := _next_request(conn, listener, frame_timeout)) is not None:
            op, seq, address, value, strobe = request
            if op == OP_CLOSE:
                return True
            if op == OP_BATCH:
                ops = _recv_batch(conn, request, frame_timeout)
                if ops is not None:
                    resp, results = await (batch(ops) if batch is not None
                                           else _perform_batch(ops, read, write, idle, limit))
                    _send(conn, encode_batch_answer(resp, seq, results))
                continue
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
                elif op == OP_IDLE and value <= MAX_IDLE_CYCLES:
                    await idle(value)
                else:
                    resp = int(Resp.SLVERR)
            except BusError as exc:
                resp, data = int(exc.resp), 0
            except ValueError:
                resp, data = int(Resp.SLVERR), 0
            _send(conn, encode_response(resp, seq, data))
    except _Dropped as exc:
        _log(f"dropped a client: {exc}")
    return False


async def serve_requests(listener: socket.socket, read: ReadFn, write: WriteFn, idle: IdleFn,
                         addr_width: int | None = None, *, token: int | None = None,
                         frame_timeout: float | None = FRAME_TIMEOUT, batch: BatchFn | None = None) -> None:
    """Accept connections and answer them (:func:`answer_requests`) until ``OP_CLOSE``.

    The socket calls block the simulator, which is the point: simulated time stands
    still while the host thinks. A client that disconnects without ``OP_CLOSE`` (or
    loses its connection) leaves the server waiting for the next connection, until the
    listener's timeout (``TimeoutError``).
    """
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            raise
        except ConnectionError:
            continue  # the client went away before the accept
        with conn:
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.settimeout(None)
            except OSError:
                continue
            if await answer_requests(conn, read, write, idle, addr_width, token=token, listener=listener,
                                     frame_timeout=frame_timeout, batch=batch):
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
    """A listening socket on 127.0.0.1, loopback only (port 0: any free port, see
    ``getsockname()``); ``accept`` gives up after ``timeout`` seconds (``None``: never)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(4)  # room for the clients that are refused busy
    server.settimeout(timeout)
    return server


def new_token() -> int:
    """A random, non-zero token for a server's hello (``SocketBus`` without one sends 0)."""
    return secrets.randbits(TOKEN_BITS) or 1


def announce_port(listener: socket.socket, token: int | None = None) -> None:
    """Print the port marker (with the token) on stdout, then send stdout to stderr (the
    parent stops reading, and nothing else printed can reach it)."""
    marker = f"{PORT_MARKER} {listener.getsockname()[1]}"
    print(marker if token is None else f"{marker} {token:016x}", flush=True)
    os.dup2(2, 1)


def _exit_status(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name} (exit status {code})"
        except ValueError:
            pass
    return f"exited with status {code}"


class ServerExited(LinkError, RuntimeError):
    """A server process has ended: before it listened, or in the middle of a session."""

    def __init__(self, name: str, code: int, when: str = "") -> None:
        super().__init__(f"{name} {_exit_status(code)}{when}")
        self.name, self.code = name, code


@dataclass
class SimServer:
    """A running simulator server: ``process, port = start_...()`` unpacks it.

    Use as a context manager, or call :meth:`stop`; :meth:`connect` opens a
    :class:`~nanoquote.host.device.bus.SocketBus` to it with its ``token`` (one client at
    a time: another is refused busy).
    """

    process: subprocess.Popen
    port: int
    name: str = "simulator server"
    token: int | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.process, self.port))

    def connect(self, timeout: float = 60.0) -> SocketBus:
        """A bus to this server; its link faults name the server (and its exit status)."""
        self.check()
        return SocketBus("127.0.0.1", self.port, timeout=timeout, token=self.token, name=self.name,
                         check_server=self.check)

    def check(self, grace: float = 0.0) -> None:
        """Raise :class:`ServerExited` if the process has ended (waiting up to ``grace`` s)."""
        code = self.process.poll()
        if code is None and grace > 0:
            try:
                code = self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                return
        if code is not None:
            raise ServerExited(self.name, code, "; its link is gone (its output is above)")

    def stop(self, timeout: float = 10.0) -> int | None:
        """Wait for the server to end (after a client's ``close``), else terminate it.

        The server runs in its own process group, so terminating signals that group: no
        simulator outlives its handle. Returns the exit status.
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


def launch(argv: Sequence[str], *, name: str | None = None, timeout: float = 300.0,
           env: dict[str, str] | None = None, cwd: str | Path | None = None) -> SimServer:
    """Start ``argv`` (a server process) and wait for its port marker.

    ``name`` says which server it is in errors (default: the command); the marker's
    token goes to the :class:`SimServer`'s ``token``. A server that ends before it
    listens raises :class:`ServerExited` naming it and its exit status; one that stays
    silent is stopped and raises ``TimeoutError``.
    """
    name = name or f"simulator server {' '.join(argv)!r}"
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=env, cwd=cwd, text=True, bufsize=1, start_new_session=True)
    server = SimServer(proc, 0, name)
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
            raise ServerExited(name, -1 if code is None else code, " before listening (its output is above)")
        if line is None:
            continue
        if line.startswith(PORT_MARKER):
            fields = line.split()
            try:
                server.port = int(fields[1])
                server.token = int(fields[2], 16) if len(fields) > 2 else None
            except (IndexError, ValueError):
                server.stop(timeout=0)
                raise RuntimeError(f"{name} printed a malformed port marker {line.strip()!r}") from None
            return server
        sys.stderr.write(line)  # anything a tool printed before the marker
