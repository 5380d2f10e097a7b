"""Register access below the driver: ``read32``/``write32`` and the ways to reach a device.

Every backend (software model, mmap of a real device, simulators behind a loopback
socket) offers the same two calls; the typed driver above never knows which it has.

:class:`SocketBus` speaks the loopback wire protocol of :mod:`nanoquote.host.device.wire`.
"""

from __future__ import annotations

import mmap
import os
import socket
from enum import IntEnum
from pathlib import Path
from typing import Protocol

from nanoquote.host.device.wire import (
    OP_CLOSE,
    OP_IDLE,
    OP_READ,
    OP_WRITE,
    encode_request,
    recv_response,
)

__all__ = ["Resp", "BusError", "BusTimeout", "RegisterBus", "MmapBus", "SocketBus"]


class Resp(IntEnum):
    """AXI4-Lite response codes."""

    OKAY = 0
    EXOKAY = 1
    SLVERR = 2
    DECERR = 3


class BusError(IOError):
    """A register access answered with an error response."""

    def __init__(self, op: str, address: int, resp: Resp) -> None:
        super().__init__(f"{op} of address {address:#06x} answered {resp.name}")
        self.op, self.address, self.resp = op, address, resp


class BusTimeout(TimeoutError):
    """The device did not answer in time."""


class RegisterBus(Protocol):
    def read32(self, address: int) -> int: ...

    def write32(self, address: int, value: int, strobe: int = 0xF) -> None: ...

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

    def close(self) -> None:
        self._view.release()
        self._map.close()
        os.close(self._fd)


class SocketBus:
    """A simulator serving register accesses on a loopback TCP port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.settimeout(timeout)

    def _transact(self, op: int, address: int, value: int, strobe: int) -> tuple[Resp, int]:
        try:
            self._sock.sendall(encode_request(op, address, value, strobe))
            response = recv_response(self._sock)
        except TimeoutError:
            raise BusTimeout(f"no answer for address {address:#06x}") from None
        if response is None:
            raise BusTimeout("the simulator closed the connection")
        resp, result = response
        return Resp(resp), result

    def read32(self, address: int) -> int:
        _check_access(address)
        resp, value = self._transact(OP_READ, address, 0, 0)
        if resp not in (Resp.OKAY, Resp.EXOKAY):
            raise BusError("read", address, resp)
        return value

    def write32(self, address: int, value: int, strobe: int = 0xF) -> None:
        _check_access(address, value, strobe)
        resp, _ = self._transact(OP_WRITE, address, value, strobe)
        if resp not in (Resp.OKAY, Resp.EXOKAY):
            raise BusError("write", address, resp)

    def idle(self, cycles: int) -> None:
        """Let the simulated clock run (the device has no notion of host time)."""
        self._transact(OP_IDLE, 0, cycles, 0)

    def close(self) -> None:
        try:
            self._sock.sendall(encode_request(OP_CLOSE))
        except OSError:
            pass
        self._sock.close()
