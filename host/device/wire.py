"""The loopback wire protocol between a register-bus client and a device server.

Fixed-size little-endian frames, one request then one answer:

* request ``op:u8 seq:u32 addr:u32 data:u32 strb:u8`` (:data:`REQUEST`, 14 bytes): op
  :data:`OP_READ` (0), :data:`OP_WRITE` (1), :data:`OP_CLOSE` (2: the server ends; not
  answered), :data:`OP_IDLE` (3: run ``data`` clock cycles, at most
  :data:`MAX_IDLE_CYCLES`) or :data:`OP_HELLO` (4: the first frame of every connection);
* answer ``resp:u8 seq:u32 data:u32`` (:data:`RESPONSE`, 9 bytes): ``resp`` is the AXI
  response code (:class:`nanoquote.host.device.bus.Resp`) or, to a hello only,
  :data:`RESP_BUSY` / :data:`RESP_REFUSED`; ``seq`` echoes the request's; ``data`` is the
  read value (0 otherwise).

``seq`` is the client's request number: an answer whose ``seq`` is not that of the
request just sent is never taken for its answer. The hello carries the server's token in
``addr`` (bits 0..31) and ``data`` (bits 32..63) and :data:`PROTOCOL_VERSION` in ``strb``;
it is answered ``OKAY`` (``data``: the server's protocol version), :data:`RESP_BUSY` (the
server serves another client) or :data:`RESP_REFUSED` (wrong token or protocol version;
``data``: the server's protocol version), and a refused connection is closed.

:class:`~nanoquote.host.device.bus.SocketBus` is the client; the servers (the simulators
and the in-process bus server under ``nanoquote.sim.servers``) answer it.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import NamedTuple

__all__ = [
    "REQUEST", "RESPONSE", "PROTOCOL_VERSION", "OP_READ", "OP_WRITE", "OP_CLOSE", "OP_IDLE",
    "OP_HELLO", "RESP_BUSY", "RESP_REFUSED", "MAX_IDLE_CYCLES", "TOKEN_BITS", "SEND_FLAGS",
    "Request", "Response", "encode_request", "decode_request", "encode_response",
    "decode_response", "encode_hello", "hello_token", "recv_exact", "recv_request",
    "recv_response",
]

REQUEST = struct.Struct("<BIIIB")
RESPONSE = struct.Struct("<BII")
#: Version 2: the request id (``seq``) and the hello; version 1 had neither.
PROTOCOL_VERSION = 2
OP_READ, OP_WRITE, OP_CLOSE, OP_IDLE, OP_HELLO = 0, 1, 2, 3, 4
#: Hello answers beyond the AXI codes (0..3).
RESP_BUSY, RESP_REFUSED = 0x10, 0x11
#: The most clock cycles one ``OP_IDLE`` may ask for, so no request keeps a server busy for
#: long (seconds of Amaranth simulation; docs/performance.md has the simulators' rates).
MAX_IDLE_CYCLES = 100_000
TOKEN_BITS = 64
#: ``send`` flags: a peer that has gone raises ``BrokenPipeError``, never ``SIGPIPE``
#: (a simulator embedding Python may not ignore that signal).
SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)


class Request(NamedTuple):
    op: int
    seq: int
    address: int
    value: int
    strobe: int


class Response(NamedTuple):
    resp: int
    seq: int
    data: int


def encode_request(op: int, seq: int = 0, address: int = 0, value: int = 0, strobe: int = 0) -> bytes:
    return REQUEST.pack(op, seq, address, value, strobe)


def decode_request(data: bytes) -> Request:
    return Request(*REQUEST.unpack(data))


def encode_response(resp: int, seq: int = 0, data: int = 0) -> bytes:
    return RESPONSE.pack(int(resp), seq, data)


def decode_response(data: bytes) -> Response:
    return Response(*RESPONSE.unpack(data))


def encode_hello(seq: int, token: int) -> bytes:
    """The first frame of a connection, presenting ``token`` (0..2**64-1)."""
    if not 0 <= token < 1 << TOKEN_BITS:
        raise ValueError(f"the token must be a {TOKEN_BITS}-bit value")
    return encode_request(OP_HELLO, seq, token & 0xFFFFFFFF, token >> 32, PROTOCOL_VERSION)


def hello_token(request: Request) -> int:
    """The token a hello presents."""
    return request.value << 32 | request.address


def recv_exact(conn: socket.socket, size: int, timeout: float | None = None) -> bytes | None:
    """``size`` bytes from ``conn``, or ``None`` if the peer closes the connection first.

    With ``timeout``, the whole of it must arrive within that many seconds (else
    ``TimeoutError``); without, each ``recv`` keeps the socket's own timeout.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    data = b""
    while len(data) < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(data)} of {size} bytes in {timeout} s")
            conn.settimeout(remaining)
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def recv_request(conn: socket.socket, timeout: float | None = None) -> Request | None:
    """The next request, or ``None`` when the client has closed the connection."""
    data = recv_exact(conn, REQUEST.size, timeout)
    return None if data is None else decode_request(data)


def recv_response(conn: socket.socket, timeout: float | None = None) -> Response | None:
    """The next answer, or ``None`` when the server has closed the connection."""
    data = recv_exact(conn, RESPONSE.size, timeout)
    return None if data is None else decode_response(data)
