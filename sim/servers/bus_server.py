"""Serve any in-process ``RegisterBus`` on a loopback port with the wire protocol of
``nanoquote.host.device.bus``: the software device then runs in its own process, and a driver
reaches it exactly as it reaches a simulator or a remote device."""

from __future__ import annotations

import socket
from collections.abc import Callable

from nanoquote.host.device.bus import (
    OP_CLOSE,
    OP_IDLE,
    OP_READ,
    OP_WRITE,
    REQUEST,
    RESPONSE,
    BusError,
    RegisterBus,
    Resp,
)

__all__ = ["listen", "serve_connection", "recv_exact"]


def listen(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: any free port, see ``getsockname()``)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    return server


def recv_exact(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def serve_connection(conn: socket.socket, bus: RegisterBus, idle: Callable[[int], None] | None = None) -> None:
    """Answer requests on one connection until the client closes it."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while (request := recv_exact(conn, REQUEST.size)) is not None:
        op, address, value, strobe = REQUEST.unpack(request)
        if op == OP_CLOSE:
            break
        resp, data = Resp.OKAY, 0
        try:
            if op == OP_READ:
                data = bus.read32(address)
            elif op == OP_WRITE:
                bus.write32(address, value, strobe)
            elif op == OP_IDLE and idle is not None:
                idle(value)
        except BusError as exc:
            resp = exc.resp
        except ValueError:
            resp = Resp.SLVERR  # a malformed request (e.g. misaligned address)
        conn.sendall(RESPONSE.pack(resp, data))
    conn.close()
