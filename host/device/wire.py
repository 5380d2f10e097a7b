"""The loopback wire protocol between a register-bus client and a device server.

Fixed-size little-endian frames, one request then one answer:

* request ``op:u8 seq:u32 addr:u32 data:u32 strb:u8`` (:data:`REQUEST`, 14 bytes): op
  :data:`OP_READ` (0), :data:`OP_WRITE` (1), :data:`OP_CLOSE` (2: the server ends; not
  answered), :data:`OP_IDLE` (3: run ``data`` clock cycles, at most
  :data:`MAX_IDLE_CYCLES`), :data:`OP_HELLO` (4: the first frame of every connection) or
  :data:`OP_BATCH` (5: ``data`` operation records follow, see below);
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

A batch (:mod:`nanoquote.host.device.batch`) travels in one round trip: the request's
header is followed by ``data`` records ``kind:u8 addr:u32 value:u32 arg:u16 cycles:u32``
(:data:`BATCH_OP`, 15 bytes; kind :data:`BATCH_READ`, :data:`BATCH_WRITE` (``value``,
strobe in ``arg``), :data:`BATCH_IDLE` (``cycles``) or :data:`BATCH_POLL` (mask in
``value``, limit in ``arg``, ``cycles`` between reads)), at most
:data:`~nanoquote.host.device.batch.MAX_BATCH_OPS`. Its answer's header is followed by
``data`` result words (u32; 0 for a write or an idle): ``resp`` OKAY, every operation
performed; an AXI error code, operation number ``data`` was answered with it (the
``data`` before it were performed, it and the rest not); :data:`RESP_MALFORMED`, the
batch was refused whole (nothing performed, no results follow).

:class:`~nanoquote.host.device.bus.SocketBus` is the client; the servers (the simulators
and the in-process bus server under ``nanoquote.sim.servers``) answer it.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from nanoquote.host.device.batch import MAX_IDLE_CYCLES, Idle, Operation, Poll, Read, Write

__all__ = [
    "REQUEST", "RESPONSE", "BATCH_OP", "PROTOCOL_VERSION", "OP_READ", "OP_WRITE", "OP_CLOSE", "OP_IDLE",
    "OP_HELLO", "OP_BATCH", "BATCH_READ", "BATCH_WRITE", "BATCH_IDLE", "BATCH_POLL", "RESP_BUSY",
    "RESP_REFUSED", "RESP_MALFORMED", "MAX_IDLE_CYCLES", "TOKEN_BITS", "SEND_FLAGS",
    "Request", "Response", "batch_records", "encode_request", "decode_request", "encode_response",
    "decode_response", "encode_hello", "hello_token", "recv_exact", "recv_request",
    "recv_response", "encode_batch", "decode_batch", "encode_batch_answer", "decode_results",
]

REQUEST = struct.Struct("<BIIIB")
RESPONSE = struct.Struct("<BII")
BATCH_OP = struct.Struct("<BIIHI")
#: Version 3: the batch; version 2 added the request id (``seq``) and the hello.
PROTOCOL_VERSION = 3
OP_READ, OP_WRITE, OP_CLOSE, OP_IDLE, OP_HELLO, OP_BATCH = 0, 1, 2, 3, 4, 5
BATCH_READ, BATCH_WRITE, BATCH_IDLE, BATCH_POLL = 0, 1, 2, 3
#: Hello answers beyond the AXI codes (0..3), and a batch refused whole.
RESP_BUSY, RESP_REFUSED, RESP_MALFORMED = 0x10, 0x11, 0x12
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


def batch_records(ops: Sequence[Operation], record: struct.Struct) -> bytes:
    """One ``(kind, address, value or mask, strobe or limit, cycles)`` record per operation,
    packed with ``record`` (the wire's ``BATCH_OP``, or a simulator harness's layout)."""
    out = []
    for op in ops:
        if isinstance(op, Read):
            out.append(record.pack(BATCH_READ, op.address, 0, 0, 0))
        elif isinstance(op, Write):
            out.append(record.pack(BATCH_WRITE, op.address, op.value, op.strobe, 0))
        elif isinstance(op, Idle):
            out.append(record.pack(BATCH_IDLE, 0, 0, 0, op.cycles))
        else:
            out.append(record.pack(BATCH_POLL, op.address, op.mask, op.limit, op.cycles))
    return b"".join(out)


def encode_batch(seq: int, ops: Sequence[Operation]) -> bytes:
    """An ``OP_BATCH`` frame: the header, then one record per operation (checked by the caller)."""
    return encode_request(OP_BATCH, seq, 0, len(ops)) + batch_records(ops, BATCH_OP)


def decode_batch(body: bytes) -> list[Operation]:
    """The operations of a batch's records; ``ValueError`` for an unknown kind."""
    ops: list[Operation] = []
    for index, (kind, address, value, arg, cycles) in enumerate(BATCH_OP.iter_unpack(body)):
        if kind == BATCH_READ:
            ops.append(Read(address))
        elif kind == BATCH_WRITE:
            ops.append(Write(address, value, arg))
        elif kind == BATCH_IDLE:
            ops.append(Idle(cycles))
        elif kind == BATCH_POLL:
            ops.append(Poll(address, value, arg, cycles))
        else:
            raise ValueError(f"operation {index} of the batch has unknown kind {kind}")
    return ops


def encode_batch_answer(resp: int, seq: int, results: Sequence[Any]) -> bytes:
    """A batch's answer: the header (``data``: how many results follow), then the results."""
    words = [r or 0 for r in results]
    return encode_response(resp, seq, len(words)) + struct.pack(f"<{len(words)}I", *words)


def decode_results(ops: Sequence[Operation], words: bytes) -> list[Any]:
    """The results of the first operations of ``ops`` from an answer's result words."""
    values = struct.unpack(f"<{len(words) // 4}I", words)
    return [v if isinstance(op, (Read, Poll)) else None for op, v in zip(ops, values, strict=False)]
