"""A matching exchange for one strategy's orders: the source of truth for what rests.

The strategy only believes; this exchange knows. It keeps every resting order with its
queue position, executes them against the market's prints and book (price-time
priority, partial fills), answers with acks, rejects, fills and cancel confirmations
after configurable latencies of book time, and charges fees and pays maker rebates
exactly (``Fraction`` money, per lot). Every message in and out is logged with its send
and arrival times, so a session's report can be recomputed from the log alone.

Queue model (docs/market.md): the market's displayed size is everyone else's; an order
joins the back of it at its price (behind ``hidden_queue_qty`` others at a price behind
the best, where nothing is displayed; in front of everyone at a price better than the
best). A print at the order's price consumes the others ahead first, then the orders in
arrival order; a print or a book through the price fills the order completely. The
market does not react to the strategy's orders (no market impact).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

from nanoquote.host.strategy.orders import CancelOrder, NewOrder, Side
from nanoquote.sim.market import BookEvent, MarketEvent, TradeEvent

__all__ = ["ExchangeConfig", "ExchangeMessage", "RestingView", "Exchange", "REJECT_REASONS"]

#: Why a new order is refused, checked in this order.
REJECT_REASONS = ("duplicate-id", "bad-quantity", "bad-price", "off-grid", "post-only")


def _money(name: str, value: object) -> Fraction:
    """Money per lot, exact: an int, a Fraction or a decimal string (never a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, Fraction, str)):
        raise ValueError(f"ExchangeConfig.{name} must be an int, Fraction or decimal string, got {value!r}")
    try:
        money = Fraction(value)
    except ValueError:
        raise ValueError(f"ExchangeConfig.{name}: {value!r} is not a number") from None
    if money < 0:
        raise ValueError(f"ExchangeConfig.{name} must not be negative, got {value!r}")
    return money


@dataclass(frozen=True)
class ExchangeConfig:
    """Tick, latencies (ns of book time), queue depth behind the best, fees per lot."""

    tick: int = 25
    #: Strategy to exchange, for new orders and cancels alike.
    entry_latency_ns: int = 200_000
    #: Exchange to strategy, per kind of answer.
    ack_latency_ns: int = 100_000
    fill_latency_ns: int = 100_000
    cancel_latency_ns: int = 100_000
    #: Others assumed ahead of an order resting at a price behind the best (not displayed).
    hidden_queue_qty: int = 20
    #: Charged on every fill, per lot (money).
    fee_per_lot: Fraction | int | str = Fraction(1, 10)
    #: Credited on every maker fill, per lot; every fill here is a maker fill (post-only).
    maker_rebate_per_lot: Fraction | int | str = Fraction(1, 4)

    def __post_init__(self) -> None:
        for name in ("tick", "entry_latency_ns", "ack_latency_ns", "fill_latency_ns",
                     "cancel_latency_ns", "hidden_queue_qty"):
            value = getattr(self, name)
            low = 1 if name == "tick" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"ExchangeConfig.{name} must be an integer >= {low}, got {value!r}")
        object.__setattr__(self, "fee_per_lot", _money("fee_per_lot", self.fee_per_lot))
        object.__setattr__(self, "maker_rebate_per_lot", _money("maker_rebate_per_lot", self.maker_rebate_per_lot))


@dataclass(frozen=True, slots=True)
class ExchangeMessage:
    """One message in (``new``, ``cancel``) or out (``ack``, ``reject``, ``fill``,
    ``cancel``, ``cancel-reject``): sent at ``sent_ns``, arriving at ``arrive_ns``.

    A fill carries its side, price, quantity, the fee charged and the rebate paid (the
    net fee the strategy sees is ``fee - rebate``); a reject or cancel reject its reason.
    """

    direction: str  # "in" (strategy to exchange) or "out"
    kind: str
    order_id: int
    sent_ns: int
    arrive_ns: int
    side: Side | None = None
    price: int | None = None
    qty: int | None = None
    fee: Fraction = Fraction(0)
    rebate: Fraction = Fraction(0)
    reason: str | None = None

    @property
    def net_fee(self) -> Fraction:
        return self.fee - self.rebate


@dataclass(frozen=True, slots=True)
class RestingView:
    """A resting order as the exchange holds it; ``ahead``: others in front of it."""

    id: int
    side: Side
    price: int
    remaining: int
    ahead: int


@dataclass(slots=True)
class _Resting:
    id: int
    side: Side
    price: int
    remaining: int
    ahead: int
    seq: int


@dataclass
class Exchange:
    """Matching, queues, latencies and fees for one strategy; see the module docstring."""

    config: ExchangeConfig = field(default_factory=ExchangeConfig)
    #: Every message in and out, in the order the exchange handled them.
    messages: list[ExchangeMessage] = field(default_factory=list)
    #: Signed lots executed for the strategy: its true position.
    true_position: int = 0
    book: BookEvent | None = None

    def __post_init__(self) -> None:
        self._resting: dict[int, _Resting] = {}
        self._seen: set[int] = set()
        self._seq = 0
        self.rejects: Counter[str] = Counter()

    # -- views ----------------------------------------------------------------------------

    def resting(self) -> tuple[RestingView, ...]:
        """What rests, bids then asks, each in price-time priority."""
        def key(o: _Resting) -> tuple[bool, int, int]:
            return (o.side is Side.SELL, -o.price if o.side is Side.BUY else o.price, o.seq)
        return tuple(RestingView(o.id, o.side, o.price, o.remaining, o.ahead)
                     for o in sorted(self._resting.values(), key=key))

    def resting_qty(self, side: Side) -> int:
        return sum(o.remaining for o in self._resting.values() if o.side is side)

    def arrival_ns(self, sent_ns: int) -> int:
        """When an order or cancel sent at ``sent_ns`` reaches the exchange."""
        return sent_ns + self.config.entry_latency_ns

    # -- strategy to exchange -------------------------------------------------------------

    def submit(self, order: NewOrder, sent_ns: int, now_ns: int) -> list[ExchangeMessage]:
        """A new order arrives at ``now_ns``: an ack (it rests) or a reject with its reason."""
        side = Side(order.side)
        self._log("in", "new", order.id, sent_ns, now_ns, side=side, price=order.price, qty=order.qty)
        reason = self._refusal(order, side)
        self._seen.add(order.id)
        if reason is not None:
            self.rejects[reason] += 1
            return [self._out("reject", order.id, now_ns, self.config.ack_latency_ns, reason=reason)]
        self._seq += 1
        self._resting[order.id] = _Resting(order.id, side, order.price, order.qty,
                                           self._ahead_at_entry(side, order.price), self._seq)
        return [self._out("ack", order.id, now_ns, self.config.ack_latency_ns)]

    def cancel(self, cancel: CancelOrder, sent_ns: int, now_ns: int) -> list[ExchangeMessage]:
        """A cancel arrives: the order goes, or it is no longer here ("unknown-order")."""
        self._log("in", "cancel", cancel.id, sent_ns, now_ns)
        if self._resting.pop(cancel.id, None) is not None:
            return [self._out("cancel", cancel.id, now_ns, self.config.cancel_latency_ns)]
        return [self._out("cancel-reject", cancel.id, now_ns, self.config.cancel_latency_ns,
                          reason="unknown-order")]

    def _refusal(self, order: NewOrder, side: Side) -> str | None:
        if order.id in self._seen:
            return "duplicate-id"
        if order.qty < 1:
            return "bad-quantity"
        if order.price < 1:
            return "bad-price"
        if order.price % self.config.tick:
            return "off-grid"
        if side is Side.BUY:
            asks = [o.price for o in self._resting.values() if o.side is Side.SELL]
            if self.book is not None:
                asks.append(self.book.ask)
            if asks and order.price >= min(asks):
                return "post-only"
        else:
            bids = [o.price for o in self._resting.values() if o.side is Side.BUY]
            if self.book is not None:
                bids.append(self.book.bid)
            if bids and order.price <= max(bids):
                return "post-only"
        return None

    def _ahead_at_entry(self, side: Side, price: int) -> int:
        """Others in front of a new order: the displayed size at the best, the hidden
        queue behind it, nobody at a better price (or before any book)."""
        book = self.book
        if book is None:
            return 0
        best, displayed = (book.bid, book.bid_qty) if side is Side.BUY else (book.ask, book.ask_qty)
        if price == best:
            return displayed
        behind = price < best if side is Side.BUY else price > best
        return self.config.hidden_queue_qty if behind else 0

    # -- the market -----------------------------------------------------------------------

    def on_market(self, event: MarketEvent) -> list[ExchangeMessage]:
        """A market event at its ``ts_ns``: the fills it causes (already in the log)."""
        if isinstance(event, TradeEvent):
            return self._on_trade(event)
        self.book = event
        fills = []
        for order in sorted(self._resting.values(), key=lambda o: o.seq):
            if order.side is Side.BUY:
                through, best, displayed = event.ask <= order.price, event.bid, event.bid_qty
                alone = order.price > best
            else:
                through, best, displayed = event.bid >= order.price, event.ask, event.ask_qty
                alone = order.price < best
            if through:  # the book crossed the order: it was taken at its price
                fills.append(self._fill(order, order.remaining, event.ts_ns))
            elif alone:  # better than everyone else: nobody ahead any more
                order.ahead = 0
            elif order.price == best:  # others left the queue; assume from behind first
                order.ahead = min(order.ahead, displayed)
        return fills

    def _on_trade(self, trade: TradeEvent) -> list[ExchangeMessage]:
        hit = Side.SELL if trade.side is Side.BUY else Side.BUY  # the passive side
        fills = []
        at_price = []
        for order in sorted(self._resting.values(), key=lambda o: o.seq):
            if order.side is not hit:
                continue
            if (hit is Side.SELL and order.price < trade.price) or (hit is Side.BUY and order.price > trade.price):
                fills.append(self._fill(order, order.remaining, trade.ts_ns))  # traded through
            elif order.price == trade.price:
                at_price.append(order)
        left, consumed = trade.qty, 0  # consumed: others in the queue the print took
        for order in at_price:  # time priority
            take = min(left, max(0, order.ahead - consumed))
            left -= take
            consumed += take
            order.ahead = max(0, order.ahead - consumed)
            qty = min(left, order.remaining)
            if qty:
                left -= qty
                fills.append(self._fill(order, qty, trade.ts_ns))
        return fills

    def _fill(self, order: _Resting, qty: int, now_ns: int) -> ExchangeMessage:
        order.remaining -= qty
        if order.remaining == 0:
            del self._resting[order.id]
        self.true_position += order.side.sign * qty
        return self._out("fill", order.id, now_ns, self.config.fill_latency_ns, side=order.side,
                         price=order.price, qty=qty, fee=qty * self.config.fee_per_lot,
                         rebate=qty * self.config.maker_rebate_per_lot)

    # -- log ------------------------------------------------------------------------------

    def _log(self, direction: str, kind: str, order_id: int, sent_ns: int, arrive_ns: int,
             **fields: object) -> ExchangeMessage:
        message = ExchangeMessage(direction, kind, order_id, sent_ns, arrive_ns, **fields)  # type: ignore[arg-type]
        self.messages.append(message)
        return message

    def _out(self, kind: str, order_id: int, now_ns: int, latency: int, **fields: object) -> ExchangeMessage:
        return self._log("out", kind, order_id, now_ns, now_ns + latency, **fields)
