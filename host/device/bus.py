"""Register access below the driver: ``read32``/``write32``/``batch`` and the ways to reach a device.

Every backend (software model, mmap of a real device, simulators behind a loopback
socket) offers the same calls; the typed driver above never knows which it has. A
batch (:mod:`nanoquote.host.device.batch`) is performed natively by each: ``MmapBus``
with plain loads and stores, ``SocketBus`` in one round trip.

:class:`SocketBus` speaks the loopback wire protocol of :mod:`nanoquote.host.device.wire`;
its link faults are :class:`LinkError` subclasses (``OSError``), a silent server
:class:`BusTimeout`.
"""

from __future__ import annotations

import mmap
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, Protocol

from nanoquote.host.device.batch import BatchError, Operation, check_batch, run_batch
from nanoquote.host.device.responses import BusError, Resp
from nanoquote.host.device.wire import (
    MAX_IDLE_CYCLES,
    OP_CLOSE,
    OP_IDLE,
    OP_READ,
    OP_WRITE,
    PROTOCOL_VERSION,
    RESP_BUSY,
    RESP_MALFORMED,
    RESP_REFUSED,
    SEND_FLAGS,
    decode_results,
    encode_batch,
    encode_hello,
    encode_request,
    recv_exact,
    recv_response,
)

__all__ = ["Resp", "BusError", "BatchError", "BusTimeout", "LinkError", "ServerBusy", "LinkRefused",
           "BatchRefused", "RegisterBus", "MmapBus", "SocketBus"]


class BusTimeout(TimeoutError):
    """The device did not answer in time."""


class LinkError(ConnectionError):
    """The link to a device server failed: unreachable, closed, broken, or a bad answer."""


class ServerBusy(LinkError):
    """The server serves another client and refused this connection."""


class LinkRefused(LinkError):
    """The server refused this client's hello: wrong token or protocol version."""


class BatchRefused(LinkError):
    """The server refused a batch whole as malformed or oversized; nothing was performed."""


class RegisterBus(Protocol):
    """What the driver needs of a bus. ``batch`` is optional (:class:`Device
    <nanoquote.host.device.register_access.Device>` performs a batch one access at a time
    on a bus without it)."""

    def read32(self, address: int) -> int: ...

    def write32(self, address: int, value: int, strobe: int = 0xF) -> None: ...

    def batch(self, ops: list[Operation]) -> list[Any]: ...

    def close(self) -> None: ...


def _check_access(address: int, value: int = 0, strobe: int = 0xF) -> None:
    if address % 4 or not 0 <= address < 1 << 32:
        raise ValueError(f"register address must be a 4-byte aligned 32-bit value, got {address:#x}")
    if not 0 <= value < 1 << 32:
        raise ValueError(f"register value must fit 32 bits, got {value:#x}")
    if not 0 <= strobe <= 0xF:
        raise ValueError(f"byte strobe must be 0..15, got {strobe}")


class MmapBus:
    """A memory-mapped device file (PCIe BAR ``resource0``, ``/dev/uioN``) at ``offset``.

    Only whole 32-bit accesses are issued (a partial strobe does a read-modify-write,
    which is what a CPU does for a narrower store on most buses). A mapped device
    cannot answer an error: it raises nothing beyond what the kernel does.
    """

    def __init__(self, path: str | Path, size: int, offset: int = 0) -> None:
        page = mmap.ALLOCATIONGRANULARITY
        if offset % page:
            raise ValueError(f"mmap offset must be a multiple of {page}, got {offset:#x}")
        self._fd = os.open(path, os.O_RDWR | getattr(os, "O_SYNC", 0))
        try:
            self._map = mmap.mmap(self._fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                                  offset=offset)
        except Exception:
            os.close(self._fd)
            raise
        self._view = memoryview(self._map).cast("I")
        self.size = size

    def read32(self, address: int) -> int:
        _check_access(address)
        if address >= self.size:
            raise ValueError(f"address {address:#x} is outside the {self.size:#x}-byte mapping")
        return self._view[address // 4]

    def write32(self, address: int, value: int, strobe: int = 0xF) -> None:
        _check_access(address, value, strobe)
        if address >= self.size:
            raise ValueError(f"address {address:#x} is outside the {self.size:#x}-byte mapping")
        if strobe != 0xF:
            mask = sum(0xFF << (8 * i) for i in range(4) if strobe >> i & 1)
            value = (self._view[address // 4] & ~mask) | (value & mask)
        self._view[address // 4] = value

    def batch(self, ops: list[Operation]) -> list[Any]:
        """``ops`` as plain loads and stores (idles are no-ops: a real device's clock runs)."""
        check_batch(ops)
        return run_batch(ops, self.read32, self.write32)

    def close(self) -> None:
        self._view.release()
        self._map.close()
        os.close(self._fd)


class SocketBus:
    """A device server (a simulator, the bus server) reached over a loopback TCP port.

    Every request carries a sequence number that its answer must echo, so an answer is
    never taken for another request's. Each connection starts with a hello presenting
    ``token`` (the server's, from its port marker; :meth:`SimServer.connect
    <nanoquote.sim.servers.server_process.SimServer.connect>` passes it): a refused hello
    raises :class:`LinkRefused`, a server that serves another client :class:`ServerBusy`.

    A request not answered within ``timeout`` seconds raises :class:`BusTimeout` and
    closes the connection; so does any link fault (which raises :class:`LinkError`).
    The next access opens a new connection. :attr:`link_generation` changes whenever a
    connection is dropped, so a caller can tell that the device behind the link must be
    identified again (:meth:`Device.run <nanoquote.host.device.register_access.Device.run>`
    does). ``name`` names the server in errors; ``check_server(grace)``, called on a
    link fault, may raise a more telling error (e.g. that the server process exited),
    waiting up to ``grace`` seconds for it to end.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0, *,
                 token: int | None = None, name: str | None = None,
                 check_server: Callable[[float], None] | None = None) -> None:
        self.host, self.port, self._timeout, self.token = host, port, timeout, token
        self.name = name or f"the device server at {host}:{port}"
        self.link_generation = 0
        self._check_server = check_server
        self._sock: socket.socket | None = None
        self._greeted = False
        self._hello_seq = 0
        self._closed = False
        self._seq = 0
        self._open()  # its hello is sent now, its answer read with the first access

    @property
    def timeout(self) -> float:
        """Seconds to wait for an answer (settable; applies to the open connection too)."""
        return self._timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._timeout = value
        if self._sock is not None:
            self._sock.settimeout(value)

    # -- the link ---------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFFFFFF + 1  # 1 .. 2**32 - 1
        return self._seq

    def _diagnose(self, grace: float) -> None:
        if self._check_server is not None:
            self._check_server(grace)

    def _drop(self) -> None:
        """Close the connection (if any); the next access opens a new one."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self.link_generation += 1
        self._greeted = False

    def _lost(self, what: str) -> NoReturn:
        self._drop()
        self._diagnose(2.0)
        raise LinkError(f"{self.name}: {what}; the connection is closed")

    def _open(self) -> None:
        """Connect and send the hello (the server must have it within its frame timeout)."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            self._diagnose(2.0)
            raise LinkError(f"cannot reach {self.name}: {exc}") from exc
        self._sock, self._greeted, self._hello_seq = sock, False, self._next_seq()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.timeout)
            sock.sendall(encode_hello(self._hello_seq, self.token or 0), SEND_FLAGS)
        except OSError as exc:
            self._lost(f"the connection broke during the hello ({exc})")

    def _exchange(self, frame: bytes | None, what: str) -> tuple[int, int, int]:
        """Send ``frame`` (if any), return the answer ``(resp, seq, data)``; faults drop the link."""
        assert self._sock is not None
        try:
            if frame is not None:
                self._sock.sendall(frame, SEND_FLAGS)
            answer = recv_response(self._sock)
        except TimeoutError:
            self._drop()
            self._diagnose(0.0)
            raise BusTimeout(f"no answer for {what} from {self.name} within {self.timeout} s; "
                             "the connection is closed (the next access opens a new one)") from None
        except OSError as exc:
            self._lost(f"the connection broke during {what} ({exc})")
        if answer is None:
            self._lost(f"the server closed the connection during {what}")
        return answer

    def _link(self) -> socket.socket:
        """The connection, opened and greeted if need be."""
        if self._closed:
            raise LinkError(f"{self.name}: this bus is closed")
        if self._sock is None:
            self._open()
        if not self._greeted:
            resp, answered, data = self._exchange(None, "the hello")
            if resp == RESP_BUSY:
                self._drop()
                raise ServerBusy(f"{self.name} is busy: it serves another client and refused this one")
            if resp == RESP_REFUSED:
                self._drop()
                why = ("wrong or missing token" if data == PROTOCOL_VERSION
                       else f"it speaks wire protocol {data}, this client {PROTOCOL_VERSION}")
                raise LinkRefused(f"{self.name} refused the connection: {why}")
            if resp != Resp.OKAY or answered != self._hello_seq:
                self._drop()
                raise LinkError(f"{self.name} answered the hello with response {resp:#x} to request "
                                f"{answered} (expected OKAY to {self._hello_seq}): not a nanoquote "
                                "device server?")
            self._greeted = True
        assert self._sock is not None
        return self._sock

    def _transact(self, op: int, address: int, value: int, strobe: int, what: str) -> tuple[Resp, int]:
        self._link()
        seq = self._next_seq()
        resp, answered, data = self._exchange(encode_request(op, seq, address, value, strobe), what)
        if answered != seq or resp not in Resp._value2member_map_:
            self._drop()
            raise LinkError(f"{self.name} answered request {answered} with response {resp:#x} to {what} "
                            f"(request {seq}); the connection is closed")
        return Resp(resp), data

    # -- RegisterBus ------------------------------------------------------------------------

    def read32(self, address: int) -> int:
        _check_access(address)
        resp, value = self._transact(OP_READ, address, 0, 0, f"read of address {address:#06x}")
        if resp not in (Resp.OKAY, Resp.EXOKAY):
            raise BusError("read", address, resp)
        return value

    def write32(self, address: int, value: int, strobe: int = 0xF) -> None:
        _check_access(address, value, strobe)
        resp, _ = self._transact(OP_WRITE, address, value, strobe, f"write of address {address:#06x}")
        if resp not in (Resp.OKAY, Resp.EXOKAY):
            raise BusError("write", address, resp)

    def batch(self, ops: list[Operation]) -> list[Any]:
        """Perform ``ops`` in one round trip (an ``OP_BATCH`` frame); their results.

        A malformed batch raises ``ValueError`` before anything is sent. An operation
        answered with an error raises :class:`BatchError` naming it: those before it were
        performed, it and those after it not. A batch the server refuses whole raises
        :class:`BatchRefused` (nothing performed; the connection is closed). A batch not
        answered in time raises :class:`BusTimeout`: how much of it was performed is
        unknown, as for a single access.
        """
        check_batch(ops)
        if not ops:
            return []
        self._link()
        seq = self._next_seq()
        what = f"a batch of {len(ops)} operations"
        resp, answered, count = self._exchange(encode_batch(seq, ops), what)
        if answered != seq or not (resp in Resp._value2member_map_ or resp == RESP_MALFORMED) or (
                count > len(ops) or (resp == Resp.OKAY and count != len(ops))
                or (resp != Resp.OKAY and count >= len(ops))):
            self._drop()
            raise LinkError(f"{self.name} answered request {answered} with response {resp:#x} and "
                            f"{count} results to {what} (request {seq}); the connection is closed")
        if resp == RESP_MALFORMED:
            self._drop()
            raise BatchRefused(f"{self.name} refused {what} as malformed; nothing was performed "
                               "and the connection is closed")
        words = self._receive(4 * count, what) if count else b""
        results = decode_results(ops, words)
        if resp != Resp.OKAY:
            op = ops[count]
            raise BatchError(count, op, getattr(op, "address", 0), Resp(resp), results)
        return results

    def _receive(self, size: int, what: str) -> bytes:
        """The rest of an answer (its results); faults drop the link."""
        assert self._sock is not None
        try:
            data = recv_exact(self._sock, size)
        except TimeoutError:
            self._drop()
            raise BusTimeout(f"the answer to {what} from {self.name} stopped midway; the connection "
                             "is closed") from None
        except OSError as exc:
            self._lost(f"the connection broke during {what} ({exc})")
        if data is None:
            self._lost(f"the server closed the connection during {what}")
        return data

    def idle(self, cycles: int) -> None:
        """Let the simulated clock run (the device has no notion of host time).

        One request runs at most :data:`~nanoquote.host.device.wire.MAX_IDLE_CYCLES`
        cycles; more is refused (``ValueError``, nothing sent): a longer wait is the
        caller's loop, so no single request can keep the server busy for long.
        """
        if not 0 <= cycles <= MAX_IDLE_CYCLES:
            raise ValueError(f"idle cycles must be 0..{MAX_IDLE_CYCLES} per request, got {cycles}")
        resp, _ = self._transact(OP_IDLE, 0, cycles, 0, f"idle of {cycles} cycles")
        if resp not in (Resp.OKAY, Resp.EXOKAY):
            raise BusError("idle", 0, resp)

    def close(self) -> None:
        """Send ``OP_CLOSE`` (a simulator server then ends) and close the connection.

        After a dropped connection this opens one more to deliver the close; a server
        that cannot be reached is left alone.
        """
        if self._closed:
            return
        try:
            sock = self._link()
            sock.sendall(encode_request(OP_CLOSE, self._next_seq()), SEND_FLAGS)
        except OSError:
            pass
        finally:
            self._closed = True
            if self._sock is not None:
                self._sock.close()
                self._sock = None
