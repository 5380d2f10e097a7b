"""A strategy trading against the simulated exchange, in book time, and the session's report.

:func:`run_trading_session` interleaves three streams by time: the market's events, the
strategy's orders and cancels on their way to the exchange, and the exchange's answers
on their way back. At equal times the messages already in flight go first, in the order
they were sent, then the next market event; so a session is a function of the strategy,
the events and the configuration, nothing else. It takes any ``MarketMakerStrategy``
(golden or offloaded): only the strategy's callbacks are used.

Every step is one :class:`SessionEntry` of the :class:`SessionLog`: what happened, the
book, the strategy's live orders, the executions, the actions the strategy sent, its
position and the exchange's truth. :func:`summarize` computes the report from that log
alone (docs/market.md defines every number).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.host.strategy.orders import Action, CancelOrder, Fill, NewOrder, Side
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.sim.exchange import Exchange, ExchangeConfig, ExchangeMessage, RestingView
from nanoquote.sim.market import MarketEvent, TradeEvent

__all__ = ["LiveOrder", "FillRecord", "SessionEntry", "SessionLog", "run_trading_session", "summarize"]

#: Messages delivered after the last market event before the session gives up settling.
_SETTLE_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class LiveOrder:
    """One order of the strategy's quoted ladder (its QuoteManager's live orders)."""

    id: int
    side: Side
    price: int
    remaining: int
    state: str


@dataclass(frozen=True, slots=True)
class FillRecord:
    """An execution at the exchange; ``level``: the ladder level the order was sent for
    (ticks behind the level-0 price of its refresh), ``None`` when not known."""

    ts_ns: int
    order_id: int
    side: Side
    price: int
    qty: int
    fee: Fraction
    rebate: Fraction
    level: int | None


@dataclass(frozen=True, slots=True)
class SessionEntry:
    """One step: a market event, a message arriving at the exchange, or one delivered to
    the strategy (``kind``: ``book``, ``trade``, ``new``, ``cancel-request``, ``ack``,
    ``reject``, ``fill``, ``cancel``, ``cancel-reject``), and the state after it."""

    ts_ns: int
    kind: str
    event: MarketEvent | ExchangeMessage
    best_bid: int | None
    best_ask: int | None
    ladder: tuple[LiveOrder, ...]
    fills: tuple[FillRecord, ...]
    sent: tuple[Action, ...]
    position: int
    true_position: int
    resting: tuple[RestingView, ...]


@dataclass
class SessionLog:
    entries: list[SessionEntry] = field(default_factory=list)
    #: The exchange's own log: every message in and out.
    messages: list[ExchangeMessage] = field(default_factory=list)
    exchange_config: ExchangeConfig = field(default_factory=ExchangeConfig)


def _ladder(strategy: MarketMakerStrategy) -> tuple[LiveOrder, ...]:
    return tuple(LiveOrder(o.id, o.side, o.price, o.remaining, o.state.value)
                 for o in strategy.quote_manager.orders())


def _levels(strategy: MarketMakerStrategy, book: BookUpdate, actions: list[Action]) -> dict[int, int]:
    """Ladder level of each new order of a refresh, from its level-0 price (docs/spec.md §4.4)."""
    news = [a for a in actions if isinstance(a, NewOrder)]
    if not news:
        return {}
    top = strategy.calculate_quotes(book)
    if top is None:
        return {}
    t = strategy.config.tick_size
    levels = {}
    for order in news:
        behind = top[0] - order.price if order.side is Side.BUY else order.price - top[1]
        if behind >= 0 and behind % t == 0:
            levels[order.id] = behind // t
    return levels


def run_trading_session(strategy: MarketMakerStrategy, market_events: Iterable[MarketEvent],
                        exchange_config: ExchangeConfig | None = None) -> SessionLog:
    """Play ``market_events`` (in time order, else ``ValueError``) through ``strategy`` and a
    fresh exchange.

    The strategy is armed first unless it is already armed (a killed one stays killed).
    The strategy sees each book at its time; trade prints reach only the exchange (the
    strategy has no trade callback). After the last market event the messages still in
    flight are delivered, so the log ends settled.
    """
    config = exchange_config or ExchangeConfig()
    exchange = Exchange(config)
    log = SessionLog(messages=exchange.messages, exchange_config=config)
    if not strategy.is_ready and not strategy.killed:
        strategy.arm()
    heap: list[tuple[int, int, ExchangeMessage | tuple[Action, int]]] = []
    seq = 0
    levels: dict[int, int] = {}

    def push(ts: int, item: ExchangeMessage | tuple[Action, int]) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (ts, seq, item))

    def send(actions: list[Action], now: int) -> tuple[Action, ...]:
        for action in actions:
            push(exchange.arrival_ns(now), (action, now))
        return tuple(actions)

    def answer(messages: list[ExchangeMessage]) -> None:
        for message in messages:
            push(message.arrive_ns, message)

    def record(ts: int, kind: str, event: MarketEvent | ExchangeMessage, fills: list[ExchangeMessage],
               sent: tuple[Action, ...]) -> None:
        book = exchange.book
        log.entries.append(SessionEntry(
            ts, kind, event, book.bid if book else None, book.ask if book else None, _ladder(strategy),
            tuple(FillRecord(m.sent_ns, m.order_id, m.side, m.price, m.qty, m.fee, m.rebate,  # type: ignore[arg-type]
                             levels.get(m.order_id)) for m in fills),
            sent, strategy.position, exchange.true_position, exchange.resting()))

    def step(ts: int, item: ExchangeMessage | tuple[Action, int]) -> None:
        if isinstance(item, tuple):  # an action reaches the exchange
            action, sent_ns = item
            if isinstance(action, NewOrder):
                out = exchange.submit(action, sent_ns, ts)
                answer(out)
                record(ts, "new", exchange.messages[-len(out) - 1], [], ())
            else:
                out = exchange.cancel(action, sent_ns, ts)
                answer(out)
                record(ts, "cancel-request", exchange.messages[-len(out) - 1], [], ())
            return
        message = item  # an answer reaches the strategy
        if message.kind == "ack":
            strategy.on_order_ack(message.order_id)
        elif message.kind == "reject":
            strategy.on_order_reject(message.order_id)
        elif message.kind == "fill":
            strategy.on_fill(Fill(message.order_id, message.side, message.price, message.qty,  # type: ignore[arg-type]
                                  float(message.net_fee), message.sent_ns))
        elif message.kind == "cancel":
            strategy.on_order_cancel(message.order_id)
        else:
            strategy.on_cancel_reject(message.order_id, unknown_order=message.reason == "unknown-order")
        record(ts, message.kind, message, [], send(strategy.take_actions(), ts))

    last_ts: int | None = None
    for event in market_events:
        if last_ts is not None and event.ts_ns < last_ts:
            raise ValueError(f"market event at {event.ts_ns} after one at {last_ts}: events must be in time order")
        last_ts = event.ts_ns
        while heap and heap[0][0] <= event.ts_ns:
            ts, _, item = heapq.heappop(heap)
            step(ts, item)
        fills = exchange.on_market(event)
        answer(fills)
        if isinstance(event, TradeEvent):
            record(event.ts_ns, "trade", event, fills, ())
            continue
        book = BookUpdate(event.ts_ns, event.bid, event.ask)
        actions = strategy.on_market_data(book)
        levels.update(_levels(strategy, book, actions))
        record(event.ts_ns, "book", event, fills, send(actions, event.ts_ns))
    for _ in range(_SETTLE_LIMIT):
        if not heap:
            break
        ts, _, item = heapq.heappop(heap)
        step(ts, item)
    else:
        raise RuntimeError("the strategy and the exchange did not settle after the last market event")
    return log


# -- the report ---------------------------------------------------------------------------


def _exact_mid(entry: SessionEntry) -> Fraction | None:
    if entry.best_bid is None or entry.best_ask is None:
        return None
    return Fraction(entry.best_bid + entry.best_ask, 2)


def summarize(log: SessionLog, config: MarketMakerConfig) -> dict[str, Any]:
    """The session's report, from the log alone; money is exact (``Fraction``).

    ``config`` is the strategy's (tick size, tick value, ``max_inventory``). Money is a raw
    price difference ``/ tick_size * tick_value`` per lot, as in the strategy. Executions
    are the exchange's (the truth), in log order; mids are exact, ``(bid + ask) / 2``
    of the exchange's book at the entry.

    * ``realized_pnl``: average-cost realized P&L before fees (docs/spec.md §7.3);
      ``unrealized_pnl``: the open position at the last book's exact mid against its
      average cost; ``fees`` charged, ``rebates`` paid, ``net_fees = fees - rebates``;
      ``total_pnl = realized + unrealized - net_fees``.
    * ``spread_captured = sum over fills of sign(side) * (mid_at_fill - price) * qty``
      (what each fill earned against the mid when it happened; negative when the market
      traded through the order); ``inventory_pnl = total_pnl + net_fees - spread_captured``
      (what holding the position earned as the mid moved). So
      ``total_pnl = spread_captured + inventory_pnl - net_fees``.
    * ``position_min``/``position_max``/``final_position``: the exchange's true position.
    * ``max_exposure``: the largest ``max(position + resting buys, -position + resting
      sells)`` over the entries (the exchange's position and resting orders), against
      ``max_inventory``.
    * ``orders``/``cancels``: actions the strategy sent; ``fills``, ``filled_qty`` and
      ``ordered_qty``; ``fill_ratio = filled_qty / ordered_qty``; ``rejects`` and
      ``cancel_rejects`` by reason (the exchange's answers).
    * ``quote_updates``: book events after which the strategy sent at least one action;
      ``quote_updates_per_sec``: that over the book time from the first to the last book.
    """
    money = Fraction(config.tick_value) / config.tick_size
    position, avg, realized_raw, spread_raw = 0, Fraction(0), Fraction(0), Fraction(0)
    fees = rebates = Fraction(0)
    fills = filled_qty = 0
    positions = [0]
    max_exposure = 0
    last_mid: Fraction | None = None
    books: list[int] = []
    quote_updates = 0
    for entry in log.entries:
        mid = _exact_mid(entry)
        if entry.kind == "book":
            books.append(entry.ts_ns)
            last_mid = mid if mid is not None else last_mid
            quote_updates += bool(entry.sent)
        for fill in entry.fills:
            signed = fill.side.sign * fill.qty
            fills += 1
            filled_qty += fill.qty
            fees += fill.fee
            rebates += fill.rebate
            if mid is not None:
                spread_raw += fill.side.sign * (mid - fill.price) * fill.qty
            new = position + signed
            if position == 0 or (position > 0) == (signed > 0):
                avg = (avg * abs(position) + fill.price * fill.qty) / abs(new)
            else:
                closed = min(abs(position), fill.qty)
                realized_raw += (fill.price - avg) * closed * (1 if position > 0 else -1)
                avg = Fraction(0) if new == 0 else (avg if (new > 0) == (position > 0) else Fraction(fill.price))
            position = new
            positions.append(position)
        buys = sum(r.remaining for r in entry.resting if r.side is Side.BUY)
        sells = sum(r.remaining for r in entry.resting if r.side is Side.SELL)
        max_exposure = max(max_exposure, entry.true_position + buys, -entry.true_position + sells)
    unrealized_raw = (last_mid - avg) * position if position and last_mid is not None else Fraction(0)
    realized, unrealized = realized_raw * money, unrealized_raw * money
    net_fees = fees - rebates
    total = realized + unrealized - net_fees
    spread = spread_raw * money
    orders = [a for e in log.entries for a in e.sent if isinstance(a, NewOrder)]
    cancels = sum(isinstance(a, CancelOrder) for e in log.entries for a in e.sent)
    ordered_qty = sum(a.qty for a in orders)
    out = [m for m in log.messages if m.direction == "out"]
    duration = books[-1] - books[0] if books else 0
    return {
        "book_events": len(books),
        "duration_ns": duration,
        "realized_pnl": realized,
        "unrealized_pnl": unrealized,
        "fees": fees,
        "rebates": rebates,
        "net_fees": net_fees,
        "total_pnl": total,
        "spread_captured": spread,
        "inventory_pnl": total + net_fees - spread,
        "position_min": min(positions),
        "position_max": max(positions),
        "final_position": position,
        "max_exposure": max_exposure,
        "max_inventory": config.max_inventory,
        "orders": len(orders),
        "cancels": cancels,
        "fills": fills,
        "filled_qty": filled_qty,
        "ordered_qty": ordered_qty,
        "fill_ratio": Fraction(filled_qty, ordered_qty) if ordered_qty else Fraction(0),
        "rejects": dict(Counter(m.reason for m in out if m.kind == "reject")),
        "cancel_rejects": dict(Counter(m.reason for m in out if m.kind == "cancel-reject")),
        "quote_updates": quote_updates,
        "quote_updates_per_sec": Fraction(quote_updates * 10**9, duration) if duration else Fraction(0),
    }
