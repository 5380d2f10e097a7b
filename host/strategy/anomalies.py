"""Anomalies: events the strategy survives but must report (docs/spec.md §7.5).

An exchange can be late, duplicate or contradict itself, and a device can fail in the
middle of an update. None of that may corrupt order state or pass silently: each such
event becomes one :class:`Anomaly`, counted by kind in the strategy and written as a
record by ``nanoquote replay``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["AnomalyKind", "Anomaly"]


class AnomalyKind(StrEnum):
    UNKNOWN_ID = "unknown-id"  # an event names an order this session never sent
    FINISHED_ORDER = "finished-order"  # an event for an order already gone (late ack, late fill, ...)
    DUPLICATE = "duplicate"  # a second ack, a reused id
    FILL_BEFORE_ACK = "fill-before-ack"  # a fill of an order not yet acked (it is then open)
    OVERFILL = "overfill"  # more filled than the order had left
    WRONG_SIDE = "wrong-side"  # a fill on the other side than the order's
    WRONG_PRICE = "wrong-price"  # a fill at a price the order never had
    INVALID_STATE = "invalid-state"  # an event that contradicts the order's state
    INVALID_QUANTITY = "invalid-quantity"  # a quantity below one lot
    REJECT_OF_LIVE_ORDER = "reject-of-live-order"  # a new-order reject after an ack or a fill: kept
    POSITION_LIMIT = "position-limit"  # a fill took the position past the hard limit: killed
    DEVICE_FAULT = "device-fault"  # the quote device failed mid-update: killed
    CANCEL_TIMEOUT = "cancel-timeout"  # a cancel not confirmed within the timeout (book time)
    CONFIG_BLOCKS_QUOTING = "config-blocks-quoting"  # a limit that blocks every level (order_size)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One reported anomaly: what, which order (if any) and a sentence for a human."""

    kind: AnomalyKind
    order_id: int | None
    detail: str
