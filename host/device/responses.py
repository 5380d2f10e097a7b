"""AXI4-Lite response codes and the error an error response raises, below every bus."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Resp", "BusError"]


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
