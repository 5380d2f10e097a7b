"""QuoteManager: the lifecycle of every order the strategy has sent (docs/spec.md §7).

Events from the exchange can be late, duplicated or wrong. Each handler returns an
``EventResult``; anything other than ``OK`` is counted in ``error_counts`` and leaves
the order book exactly as it was (an overfill still removes the order it fills).

An order stays tracked until the exchange confirms it gone (a fill to zero, a cancel
confirmation, or a reject of an order the exchange never accepted), so ``orders()`` is
at every moment the set of orders that may be live at the exchange. Each order remembers
whether it was ever acked or filled: a "reject" after either contradicts the exchange's
own earlier word and is refused (the order is kept).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter

from nanoquote.host.strategy.orders import OrderState, Side

__all__ = ["EventResult", "TrackedOrder", "QuoteManager"]


class EventResult(StrEnum):
    OK = "ok"
    UNKNOWN_ID = "unknown-id"
    DUPLICATE = "duplicate"
    FINISHED = "finished-order"
    OVERFILL = "overfill"
    WRONG_SIDE = "wrong-side"
    INVALID_STATE = "invalid-state"
    INVALID_QUANTITY = "invalid-quantity"
    REJECT_OF_LIVE_ORDER = "reject-of-live-order"


@dataclass(slots=True)
class TrackedOrder:
    id: int
    side: Side
    price: int
    remaining: int
    state: OrderState
    #: Listing key: best price first (highest bid, lowest ask), then oldest id.
    priority: tuple[int, int] = (0, 0)
    #: The exchange acknowledged it at some point (or filled it: a fill implies an ack).
    acked: bool = False
    filled: bool = False
    #: Book time of the last cancel request, and whether its timeout was reported.
    cancel_sent_ts: int | None = None
    cancel_overdue: bool = False

    def __post_init__(self) -> None:
        self.priority = (-self.price if self.side is Side.BUY else self.price, self.id)


_PRIORITY = attrgetter("priority")


class QuoteManager:
    """Tracks live orders (pending-ack, open, pending-cancel) with O(1) side totals."""

    def __init__(self) -> None:
        self._orders: dict[int, TrackedOrder] = {}
        self._by_side: dict[Side, dict[int, TrackedOrder]] = {Side.BUY: {}, Side.SELL: {}}
        self._next_id = 1
        self._allocated: set[int] = set()
        self._live_qty = {Side.BUY: 0, Side.SELL: 0}
        self._pending_cancel: dict[int, TrackedOrder] = {}
        self.error_counts: Counter[EventResult] = Counter()

    # -- ids ------------------------------------------------------------------------------

    def next_order_id(self) -> int:
        """Allocate the next id: 1, 2, 3, ... never reused, not even after ``clear``."""
        order_id = self._next_id
        self._next_id += 1
        self._allocated.add(order_id)
        return order_id

    def _classify_missing(self, order_id: int) -> EventResult:
        return EventResult.FINISHED if 1 <= order_id < self._next_id else EventResult.UNKNOWN_ID

    def _report(self, result: EventResult) -> EventResult:
        if result is not EventResult.OK:
            self.error_counts[result] += 1
        return result

    @property
    def error_count(self) -> int:
        return sum(self.error_counts.values())

    # -- lifecycle ------------------------------------------------------------------------

    def on_order_submit(self, order_id: int, side: Side, price: int, qty: int) -> EventResult:
        reused = order_id < self._next_id and order_id not in self._allocated
        if order_id in self._orders or reused:
            return self._report(EventResult.DUPLICATE)
        if qty < 1:
            return self._report(EventResult.INVALID_QUANTITY)
        self._allocated.discard(order_id)
        if order_id >= self._next_id:
            self._next_id = order_id + 1
        side = Side(side)
        order = TrackedOrder(order_id, side, price, qty, OrderState.PENDING_ACK)
        self._orders[order_id] = order
        self._by_side[side][order_id] = order
        self._live_qty[side] += qty
        return EventResult.OK

    def on_order_ack(self, order_id: int) -> EventResult:
        order = self._orders.get(order_id)
        if order is None:
            return self._report(self._classify_missing(order_id))
        if order.acked:
            return self._report(EventResult.DUPLICATE)
        order.acked = True
        if order.state is OrderState.PENDING_ACK:
            order.state = OrderState.OPEN
        # An ack for an order we already asked to cancel leaves it pending-cancel.
        return EventResult.OK

    def on_order_reject(self, order_id: int) -> EventResult:
        order = self._orders.get(order_id)
        if order is None:
            return self._report(self._classify_missing(order_id))
        if order.acked or order.filled:
            # The exchange already accepted it; a reject now contradicts that: keep it.
            return self._report(EventResult.REJECT_OF_LIVE_ORDER)
        self._remove(order)
        return EventResult.OK

    def on_cancel_reject(self, order_id: int) -> EventResult:
        """The exchange refused a cancel: the order is live, open again (a new cancel may follow)."""
        order = self._orders.get(order_id)
        if order is None:
            return self._report(self._classify_missing(order_id))
        if order.state is not OrderState.PENDING_CANCEL:
            return self._report(EventResult.INVALID_STATE)
        order.state = OrderState.OPEN
        order.acked = True
        order.cancel_sent_ts, order.cancel_overdue = None, False
        del self._pending_cancel[order.id]
        return EventResult.OK

    def on_fill(self, order_id: int, qty: int, side: Side | None = None) -> EventResult:
        """Reduce the order's remaining quantity; the order leaves the book at zero."""
        if qty < 1:
            return self._report(EventResult.INVALID_QUANTITY)
        order = self._orders.get(order_id)
        if order is None:
            return self._report(self._classify_missing(order_id))
        if side is not None and side is not order.side and Side(side) is not order.side:
            return self._report(EventResult.WRONG_SIDE)
        if qty > order.remaining:
            self._remove(order)
            return self._report(EventResult.OVERFILL)
        order.filled = True
        if order.state is OrderState.PENDING_ACK:
            order.state = OrderState.OPEN  # a fill implies the exchange has it
        order.remaining -= qty
        self._live_qty[order.side] -= qty
        if order.remaining == 0:
            self._remove(order)
        return EventResult.OK

    def on_cancel(self, order_id: int) -> EventResult:
        """The exchange confirms a cancel (requested or unsolicited): the order is gone."""
        order = self._orders.get(order_id)
        if order is None:
            return self._report(self._classify_missing(order_id))
        self._remove(order)
        return EventResult.OK

    def request_cancel(self, order_id: int, ts: int | None = None) -> EventResult:
        """Mark a live order pending-cancel as its cancel is sent (at book time ``ts``).

        Sending a cancel again for an order already pending-cancel is allowed (a kill
        re-sends every cancel not yet confirmed); its timeout runs from the first send,
        so a cancel that is never confirmed is reported however often it is sent.
        """
        order = self._orders.get(order_id)
        if order is None:
            return self._report(self._classify_missing(order_id))
        order.state = OrderState.PENDING_CANCEL
        if order.cancel_sent_ts is None:
            order.cancel_sent_ts = ts
        self._pending_cancel[order.id] = order
        return EventResult.OK

    def overdue_cancels(self, now: int, timeout: int) -> list[TrackedOrder]:
        """Pending-cancel orders whose cancel went out more than ``timeout`` ago, each once."""
        for order in self._pending_cancel.values():
            if order.cancel_sent_ts is None:  # sent before any book time was known: starts now
                order.cancel_sent_ts = now
        due = [o for o in self._pending_cancel.values()
               if not o.cancel_overdue and now - o.cancel_sent_ts > timeout]  # type: ignore[operator]
        for order in due:
            order.cancel_overdue = True
        return sorted(due, key=self.listing_key)

    def clear(self) -> None:
        """Forget every order (e.g. after a session reset); ids keep counting up."""
        self._orders.clear()
        self._by_side = {Side.BUY: {}, Side.SELL: {}}
        self._live_qty = {Side.BUY: 0, Side.SELL: 0}
        self._pending_cancel.clear()

    def _remove(self, order: TrackedOrder) -> None:
        del self._orders[order.id]
        del self._by_side[order.side][order.id]
        self._pending_cancel.pop(order.id, None)
        self._live_qty[order.side] -= order.remaining

    # -- queries --------------------------------------------------------------------------

    def get(self, order_id: int) -> TrackedOrder | None:
        return self._orders.get(order_id)

    def live_qty(self, side: Side) -> int:
        """Remaining quantity of every live order on a side (any state), in O(1)."""
        return self._live_qty[Side(side)]

    @property
    def open_bid_qty(self) -> int:
        return self._live_qty[Side.BUY]

    @property
    def open_ask_qty(self) -> int:
        return self._live_qty[Side.SELL]

    def orders(self, side: Side | None = None) -> list[TrackedOrder]:
        """Live orders by side (bids first), then price priority, then id."""
        if side is None:
            return self.orders(Side.BUY) + self.orders(Side.SELL)
        return sorted(self._by_side[Side(side)].values(), key=_PRIORITY)

    def iter_side(self, side: Side) -> Iterable[TrackedOrder]:
        """Live orders of one side in no particular order (cheaper than ``orders``)."""
        return self._by_side[side].values()

    @staticmethod
    def listing_key(order: TrackedOrder) -> tuple[bool, tuple[int, int]]:
        """The listing order of ``orders()`` for any mix of sides."""
        return (order.side is Side.SELL, order.priority)

    @property
    def bid_orders(self) -> list[TrackedOrder]:
        return self.orders(Side.BUY)

    @property
    def ask_orders(self) -> list[TrackedOrder]:
        return self.orders(Side.SELL)

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders
