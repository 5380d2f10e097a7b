"""Order vocabulary shared by the strategy, the QuoteManager and the replay format."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Side", "OrderState", "NewOrder", "CancelOrder", "Action", "Fill"]


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buy, -1 for sell: the position change per lot."""
        return 1 if self is Side.BUY else -1


class OrderState(StrEnum):
    PENDING_ACK = "pending-ack"
    OPEN = "open"
    PENDING_CANCEL = "pending-cancel"


@dataclass(slots=True)
class NewOrder:
    """Submit a limit order."""

    id: int
    side: Side
    price: int
    qty: int


@dataclass(slots=True)
class CancelOrder:
    """Ask the exchange to cancel a resting order."""

    id: int


Action = NewOrder | CancelOrder


@dataclass(slots=True)
class Fill:
    """An execution reported by the exchange."""

    id: int
    side: Side
    price: int
    qty: int
    fee: float = 0.0
    ts: int = 0
