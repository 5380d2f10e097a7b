"""MarketMakerStrategy: the golden market-making strategy (docs/spec.md §3-§8).

The event loop here is the same whichever ``QuoteEngine`` computes the ladder: it
validates the event, marks P&L, runs the cancel rules, asks the engine, passes the
ladder through the risk gate and turns it into orders against the QuoteManager.

Order state is never lost (docs/spec.md §7.5): an order is pending-cancel only once its
cancel is in the actions returned to the caller; when the engine (a device) fails in
the middle of an update, the strategy still returns what it had decided, latches its
kill switch and returns a cancel for every order not confirmed gone. Events the strategy
survives but that should not happen are recorded as :class:`Anomaly` values
(:meth:`take_anomalies`, :attr:`anomaly_counts`); actions caused by an exchange event
(the kill after a fill past the hard position limit, a cancel sent again after a cancel
reject while killed) wait in :meth:`take_actions`.
"""

from __future__ import annotations

import math
from collections import Counter

from nanoquote.host.strategy.anomalies import Anomaly, AnomalyKind
from nanoquote.host.strategy.base_strategy import BaseStrategy
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.domain import (
    FEE_MAX,
    POSITION_MAX,
    PRICE_MAX,
    TS_MAX,
    DomainError,
    check_int,
)
from nanoquote.host.strategy.engine import GoldenQuoteEngine, QuoteEngine
from nanoquote.host.strategy.orders import Action, CancelOrder, Fill, NewOrder, OrderState, Side
from nanoquote.host.strategy.quote_manager import EventResult, QuoteManager
from nanoquote.host.strategy.quoting import BookUpdate, Ladder, book_mid, calculate_quotes
from nanoquote.host.strategy.risk import RiskGate

__all__ = ["EventError", "KillSwitchLatched", "MarketMakerStrategy", "validate_book", "validate_fill"]


class EventError(DomainError):
    """A malformed market-data or execution event; nothing was changed."""


class KillSwitchLatched(RuntimeError):
    """``arm()`` after a kill: only ``rearm()`` clears the latch."""


def validate_book(book: BookUpdate) -> BookUpdate:
    ts, bid, ask = book.ts, book.best_bid, book.best_ask
    if (
        type(ts) is int and 0 <= ts <= TS_MAX
        and (bid is None or (type(bid) is int and 1 <= bid <= PRICE_MAX))
        and (ask is None or (type(ask) is int and 1 <= ask <= PRICE_MAX))
    ):
        return book  # the common case, without building error messages
    try:
        check_int("book ts", book.ts, 0, TS_MAX)
        for name, price in (("best_bid", book.best_bid), ("best_ask", book.best_ask)):
            if price is not None:
                check_int(f"book {name}", price, 1, PRICE_MAX)
    except DomainError as exc:
        raise EventError(str(exc)) from None
    return book


def validate_fill(fill: Fill) -> Fill:
    try:
        check_int("fill id", fill.id, 1, (1 << 64) - 1)
        check_int("fill price", fill.price, 1, PRICE_MAX)
        check_int("fill qty", fill.qty, 1, (1 << 31) - 1)
        check_int("fill ts", fill.ts, 0, TS_MAX)
        Side(fill.side)
    except (DomainError, ValueError) as exc:
        raise EventError(str(exc)) from None
    if isinstance(fill.fee, bool) or not isinstance(fill.fee, (int, float)) or not math.isfinite(fill.fee) \
            or abs(fill.fee) > FEE_MAX:
        raise EventError(f"fill fee must be a finite number in -{FEE_MAX:g}..{FEE_MAX:g}, got {fill.fee!r}")
    return fill


#: What a failing quote device raises from the kill and re-arm hooks: bus errors and
#: timeouts (``OSError``), a device that misbehaves (``RuntimeError`` such as ``DeviceError``).
DEVICE_FAULTS = (OSError, RuntimeError)

#: QuoteManager results that are anomalies, by the kind they are reported as.
_RESULT_KINDS = {
    EventResult.UNKNOWN_ID: AnomalyKind.UNKNOWN_ID,
    EventResult.DUPLICATE: AnomalyKind.DUPLICATE,
    EventResult.FINISHED: AnomalyKind.FINISHED_ORDER,
    EventResult.OVERFILL: AnomalyKind.OVERFILL,
    EventResult.WRONG_SIDE: AnomalyKind.WRONG_SIDE,
    EventResult.INVALID_STATE: AnomalyKind.INVALID_STATE,
    EventResult.INVALID_QUANTITY: AnomalyKind.INVALID_QUANTITY,
    EventResult.REJECT_OF_LIVE_ORDER: AnomalyKind.REJECT_OF_LIVE_ORDER,
}


class MarketMakerStrategy:
    """Multi-level, inventory-skewed market maker with explicit arming and a kill switch."""

    def __init__(
        self,
        name: str,
        instrument_id: int,
        config: MarketMakerConfig,
        tick_value: float | None = None,
        engine: QuoteEngine | None = None,
    ) -> None:
        if not isinstance(config, MarketMakerConfig):
            raise TypeError(f"config must be a MarketMakerConfig, got {type(config).__name__}")
        if tick_value is not None and tick_value != config.tick_value:
            config = config.replace(tick_value=tick_value)
        self._config = config
        self.base = BaseStrategy(name, instrument_id, config.tick_size, config.tick_value)
        self.quote_manager = QuoteManager()
        self.engine: QuoteEngine = engine if engine is not None else GoldenQuoteEngine(config)
        self.risk = RiskGate(config)
        self.killed = False
        self._fair_value: int | None = None
        #: Flags raised by market data: crossed books, refreshes, levels out of domain.
        self.counters: Counter[str] = Counter()
        #: Anomalies by kind since construction; the pending ones wait in take_anomalies().
        self.anomaly_counts: Counter[str] = Counter()
        self._anomalies: list[Anomaly] = []
        self._outbox: list[Action] = []
        self._now: int | None = None  # book time of the last market update
        self._engine_failed = False  # the engine failed; not asked again until rearm()
        if config.max_order_qty is not None and config.order_size > config.max_order_qty:
            self._anomaly(AnomalyKind.CONFIG_BLOCKS_QUOTING, None,
                          f"order_size {config.order_size} exceeds max_order_qty {config.max_order_qty}: "
                          "the size limit blocks every level")

    # -- accessors ------------------------------------------------------------------------

    @property
    def config(self) -> MarketMakerConfig:
        return self._config

    @property
    def quotes(self) -> QuoteManager:
        return self.quote_manager

    @property
    def fair_value(self) -> int | None:
        return self._fair_value

    @property
    def position(self) -> int:
        return self.base.position

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def is_ready(self) -> bool:
        return self.base.ready and not self.killed

    def possibly_live_orders(self) -> list[int]:
        """Ids of every order that may rest at the exchange: all not confirmed gone."""
        return [o.id for o in self.quote_manager.orders()]

    # -- anomalies and deferred actions ---------------------------------------------------

    def _anomaly(self, kind: AnomalyKind, order_id: int | None, detail: str) -> None:
        self._anomalies.append(Anomaly(kind, order_id, detail))
        self.anomaly_counts[kind.value] += 1

    def _check(self, result: EventResult, order_id: int, what: str) -> EventResult:
        kind = _RESULT_KINDS.get(result)
        if kind is not None:
            self._anomaly(kind, order_id, f"{what} of order {order_id}: {result.value}")
        return result

    def take_anomalies(self) -> list[Anomaly]:
        """The anomalies raised since the last call, oldest first."""
        taken, self._anomalies = self._anomalies, []
        return taken

    def take_actions(self) -> list[Action]:
        """Actions an exchange event caused (see the module docstring), oldest first."""
        taken, self._outbox = self._outbox, []
        return taken

    # -- operator controls ----------------------------------------------------------------

    def arm(self) -> None:
        """Allow quoting. Refused while the kill switch is latched."""
        if self.killed:
            raise KillSwitchLatched("kill switch is latched: call rearm() to clear it")
        self.base.ready = True

    def disarm(self) -> None:
        """Stop quoting; resting orders stay (use ``kill`` to pull them)."""
        self.base.ready = False

    def kill(self) -> list[Action]:
        """Latch the kill switch and cancel every order not confirmed gone.

        Orders already pending-cancel get their cancel again (a lost cancel is re-sent;
        a repeated one is harmless). A device that cannot be reached is reported, and
        the cancels are returned all the same.
        """
        self.killed = True
        self.base.ready = False
        hook = getattr(self.engine, "on_kill", None)
        if hook is not None:
            try:
                hook()  # a hardware engine latches its own kill switch too
            except DEVICE_FAULTS as exc:
                self._anomaly(AnomalyKind.DEVICE_FAULT, None, f"could not latch the device's kill switch: {exc}")
        return self.take_actions() + [self._cancel(o.id) for o in self.quote_manager.orders()]

    def rearm(self) -> None:
        """Clear the kill latch and arm again; a device that cannot be re-armed keeps the
        strategy killed (reported)."""
        hook = getattr(self.engine, "on_rearm", None)
        if hook is not None:
            try:
                hook()
            except DEVICE_FAULTS as exc:
                self._anomaly(AnomalyKind.DEVICE_FAULT, None, f"could not re-arm the device: {exc}")
                return
        self._engine_failed = False
        self.killed = False
        self.base.ready = True

    # -- quoting (docs/spec.md §4-§6) ---------------------------------------------------

    def calculate_quotes(self, book: BookUpdate) -> tuple[int, int] | None:
        """Level-0 (bid, ask) for the current position, or None without a quotable mid."""
        return calculate_quotes(self._config, validate_book(book), self.base.position)

    def should_refresh_quotes(self, now: int) -> bool:
        return self.engine.should_refresh(now)

    @property
    def last_quote_time(self) -> int | None:
        return self.engine.last_quote_time

    def generate_cancels(self, book: BookUpdate) -> list[Action]:
        """Cancel orders more than ``cancel_distance_ticks`` behind their side's best."""
        limit = self._config.cancel_distance_ticks * self._config.tick_size
        qm = self.quote_manager
        far = []
        if book.best_bid is not None:
            floor = book.best_bid - limit
            far += [o for o in qm.iter_side(Side.BUY) if o.price < floor]
        if book.best_ask is not None:
            ceiling = book.best_ask + limit
            far += [o for o in qm.iter_side(Side.SELL) if o.price > ceiling]
        live = [o for o in far if o.state is not OrderState.PENDING_CANCEL]
        return [self._cancel(o.id) for o in sorted(live, key=qm.listing_key)]

    def generate_quotes(self, book: BookUpdate, ladder: Ladder, size_blocked: bool | None = None) -> list[Action]:
        """Turn a refresh's ladder into orders (after the risk gate) and mark the time.

        ``size_blocked`` not ``None``: the engine applied the maximum order quantity itself
        (a device), and blocked every level or none; the gate counts what it blocked."""
        self._fair_value = ladder.mid
        self.counters["refreshes"] += 1
        self.counters["out_of_domain_levels"] += ladder.out_of_domain
        if not self.risk.allow_refresh(book.ts):
            return []
        doubled_mid = book.best_bid + book.best_ask  # type: ignore[operator]
        allow = self.risk.allow_level
        if size_blocked is not None:
            self.risk.applied_size_limit(size_blocked, ladder.bid_count + ladder.ask_count - ladder.out_of_domain)
            allow = self.risk.allow_collar
        wanted = (
            (Side.BUY, [p for p in ladder.bids if p is not None and allow(p, doubled_mid)]),
            (Side.SELL, [p for p in ladder.asks if p is not None and allow(p, doubled_mid)]),
        )
        if self._config.is_legacy:
            return [self._submit(side, price) for side, prices in wanted for price in prices]
        cancels: list[Action] = []
        submits: list[Action] = []
        for side, prices in wanted:
            kept, stale = self._match_resting(side, prices)
            cancels += [self._cancel(o.id) for o in stale]
            submits += [self._submit(side, p) for p in prices if p not in kept]
        return cancels + submits

    def _match_resting(self, side: Side, prices: list[int]) -> tuple[dict[int, object], list]:
        """Split a side's live orders into those the new ladder keeps (one per price, the
        oldest) and the stale rest, in listing order."""
        kept: dict[int, object] = {}
        stale = []
        for order in self.quote_manager.iter_side(side):
            if order.state is OrderState.PENDING_CANCEL:
                continue
            if order.price in prices:
                other = kept.get(order.price)
                if other is None:
                    kept[order.price] = order
                    continue
                if order.id < other.id:  # type: ignore[attr-defined]
                    kept[order.price], order = order, other
            stale.append(order)
        stale.sort(key=QuoteManager.listing_key)
        return kept, stale

    def _submit(self, side: Side, price: int) -> NewOrder:
        order_id = self.quote_manager.next_order_id()
        qty = self._config.order_size
        self.quote_manager.on_order_submit(order_id, side, price, qty)
        return NewOrder(order_id, side, price, qty)

    def _cancel(self, order_id: int) -> CancelOrder:
        self.quote_manager.request_cancel(order_id, self._now)
        return CancelOrder(order_id)

    def _device_fault(self, exc: BaseException, decided: list[Action]) -> list[Action]:
        """The engine failed mid-update: ``decided`` plus the kill's cancels (each order
        once); the anomaly says which orders may still be live. The engine is not asked
        again until :meth:`rearm`."""
        self._engine_failed = True
        self._anomaly(AnomalyKind.DEVICE_FAULT, None,
                      f"quote engine failed ({type(exc).__name__}: {exc}); killed; orders that may be "
                      f"live: {self.possibly_live_orders()}")
        sent = {a.id for a in decided if isinstance(a, CancelOrder)}
        return decided + [a for a in self.kill() if not (isinstance(a, CancelOrder) and a.id in sent)]

    # -- strategy callbacks ---------------------------------------------------------------

    def on_market_data(self, book: BookUpdate) -> list[Action]:
        """The actions for one book update (see the module docstring for device faults).

        While the position is outside the device's domain (only after a fill past the
        hard limit, which killed the strategy) no engine is asked for a ladder, so every
        engine behaves alike.
        """
        validate_book(book)
        self._now = book.ts
        mid = book_mid(self._config, book)
        self.base.update_mark(mid)
        if book.crossed:
            self.counters["crossed_books"] += 1
        actions: list[Action] = self.take_actions()
        if self._config.cancel_timeout_ns is not None:
            for order in self.quote_manager.overdue_cancels(book.ts, self._config.cancel_timeout_ns):
                self._anomaly(AnomalyKind.CANCEL_TIMEOUT, order.id,
                              f"cancel of order {order.id} sent at {order.cancel_sent_ts} not confirmed by "
                              f"{book.ts}")
        if not self._config.is_legacy:
            actions += self.generate_cancels(book)
        if abs(self.base.position) > POSITION_MAX or self._engine_failed:
            return actions
        try:
            decision = self.engine.quote(
                book,
                self.base.position,
                self.quote_manager.open_bid_qty,
                self.quote_manager.open_ask_qty,
                self.is_ready,
            )
        except Exception as exc:  # any failure of the engine: still emit what was decided
            return self._device_fault(exc, actions)
        if decision.refresh:
            actions += self.generate_quotes(book, decision.ladder, decision.size_blocked)
        return actions

    def on_fill(self, fill: Fill) -> EventResult:
        """Position and P&L always move; the QuoteManager reports unknown ids etc.

        A fill past the hard position limit latches the kill switch (its cancels wait in
        :meth:`take_actions`).
        """
        validate_fill(fill)
        side = Side(fill.side)
        order = self.quote_manager.get(fill.id)
        if order is not None and order.side is side:
            if not order.acked and not order.filled:
                self._anomaly(AnomalyKind.FILL_BEFORE_ACK, fill.id, f"fill of order {fill.id} before its ack")
            if fill.price != order.price:
                self._anomaly(AnomalyKind.WRONG_PRICE, fill.id,
                              f"fill of order {fill.id} at {fill.price}, the order's price is {order.price}")
        within = abs(self.base.position) <= self._config.hard_position_limit
        self.base.apply_fill(fill)
        result = self._check(self.quote_manager.on_fill(fill.id, fill.qty, side), fill.id, "fill")
        limit = self._config.hard_position_limit
        if within and abs(self.base.position) > limit:  # the fill that crosses the limit
            self._anomaly(AnomalyKind.POSITION_LIMIT, fill.id,
                          f"position {self.base.position} is past the hard limit {limit}; killed")
            self._outbox += self.kill()
        return result

    def on_order_ack(self, order_id: int) -> EventResult:
        return self._check(self.quote_manager.on_order_ack(order_id), order_id, "ack")

    def on_order_reject(self, order_id: int) -> EventResult:
        """A new order refused by the exchange. An order it had acked or filled is kept."""
        return self._check(self.quote_manager.on_order_reject(order_id), order_id, "reject")

    def on_order_cancel(self, order_id: int) -> EventResult:
        return self._check(self.quote_manager.on_cancel(order_id), order_id, "cancel confirmation")

    def on_cancel_reject(self, order_id: int, unknown_order: bool = False) -> EventResult:
        """The exchange refused a cancel.

        With ``unknown_order`` the exchange no longer has the order (it was filled or
        cancelled before the cancel arrived): the order is gone, as after a cancel
        confirmation; a fill still on its way moves the position all the same. Otherwise
        the order is live and open again; while killed its cancel is sent again (in
        :meth:`take_actions`).
        """
        if unknown_order:
            order = self.quote_manager.get(order_id)
            if order is not None and order.state is not OrderState.PENDING_CANCEL:
                return self._check(EventResult.INVALID_STATE, order_id, "cancel reject")  # kept
            result = self.quote_manager.on_cancel(order_id)
            if result is EventResult.FINISHED:
                return EventResult.OK  # the expected answer to a cancel sent again
            return self._check(result, order_id, "cancel reject")
        result = self._check(self.quote_manager.on_cancel_reject(order_id), order_id, "cancel reject")
        if result is EventResult.OK and self.killed:
            self._outbox.append(self._cancel(order_id))
        return result
