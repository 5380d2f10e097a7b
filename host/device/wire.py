"""The loopback wire protocol between a register-bus client and a device server.

One request, one response, little endian:

* request ``op:u8 addr:u32 data:u32 strb:u8``: op :data:`OP_READ` (0), :data:`OP_WRITE`
  (1), :data:`OP_CLOSE` (2: the server ends) or :data:`OP_IDLE` (3: run ``data`` clock
  cycles);
* response ``resp:u8 data:u32``: ``resp`` is the AXI response code
  (:class:`nanoquote.host.device.bus.Resp`), ``data`` the read value (0 otherwise).

:class:`~nanoquote.host.device.bus.SocketBus` is the client; the servers (the simulators
and the in-process bus server under ``nanoquote.sim.servers``) answer it.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

__all__ = [
    "REQUEST", "RESPONSE", "OP_READ", "OP_WRITE", "OP_CLOSE", "OP_IDLE", "Request",
    "encode_request", "decode_request", "encode_response", "decode_response",
    "recv_exact", "recv_request", "recv_response",
]

REQUEST = struct.Struct("<BIIB")
RESPONSE = struct.Struct("<BI")
OP_READ, OP_WRITE, OP_CLOSE, OP_IDLE = 0, 1, 2, 3


class Request(NamedTuple):
    op: int
    address: int
    value: int
    strobe: int


def encode_request(op: int, address: int = 0, value: int = 0, strobe: int = 0) -> bytes:
    return REQUEST.pack(op, address, value, strobe)


def decode_request(data: bytes) -> Request:
    return Request(*REQUEST.unpack(data))


def encode_response(resp: int, data: int = 0) -> bytes:
    return RESPONSE.pack(int(resp), data)


def decode_response(data: bytes) -> tuple[int, int]:
    """``(resp, data)`` of a response."""
    resp, value = RESPONSE.unpack(data)
    return resp, value


def recv_exact(conn: socket.socket, size: int) -> bytes | None:
    """``size`` bytes from ``conn``, or ``None`` if the peer closes the connection first."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def recv_request(conn: socket.socket) -> Request | None:
    """The next request, or ``None`` when the client has closed the connection."""
    data = recv_exact(conn, REQUEST.size)
    return None if data is None else decode_request(data)


def recv_response(conn: socket.socket) -> tuple[int, int] | None:
    """The next ``(resp, data)``, or ``None`` when the server has closed the connection."""
    data = recv_exact(conn, RESPONSE.size)
    return None if data is None else decode_response(data)
