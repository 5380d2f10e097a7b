"""MarketMakerStrategy: the golden market-making strategy (docs/spec.md §3-§8).

The event loop here is the same whichever ``QuoteEngine`` computes the ladder: it
validates the event, marks P&L, runs the cancel rules, asks the engine, passes the
ladder through the risk gate and turns it into orders against the QuoteManager.
"""

from __future__ import annotations

import math
from collections import Counter

from nanoquote.host.strategy.base_strategy import BaseStrategy
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.domain import PRICE_MAX, TS_MAX, DomainError, check_int
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
    if isinstance(fill.fee, bool) or not isinstance(fill.fee, (int, float)) or not math.isfinite(fill.fee):
        raise EventError(f"fill fee must be a finite number, got {fill.fee!r}")
    return fill


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
        """Latch the kill switch and cancel every live order."""
        self.killed = True
        self.base.ready = False
        hook = getattr(self.engine, "on_kill", None)
        if hook is not None:
            hook()  # a hardware engine latches its own kill switch too
        return [self._cancel(o.id) for o in self.quote_manager.orders() if o.state is not OrderState.PENDING_CANCEL]

    def rearm(self) -> None:
        """Clear the kill latch and arm again."""
        self.killed = False
        self.base.ready = True
        hook = getattr(self.engine, "on_rearm", None)
        if hook is not None:
            hook()

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

    def generate_quotes(self, book: BookUpdate, ladder: Ladder) -> list[Action]:
        """Turn a refresh's ladder into orders (after the risk gate) and mark the time."""
        self._fair_value = ladder.mid
        self.counters["refreshes"] += 1
        self.counters["out_of_domain_levels"] += ladder.out_of_domain
        if not self.risk.allow_refresh(book.ts):
            return []
        doubled_mid = book.best_bid + book.best_ask  # type: ignore[operator]
        allow = self.risk.allow_level
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
        self.quote_manager.request_cancel(order_id)
        return CancelOrder(order_id)

    # -- strategy callbacks ---------------------------------------------------------------

    def on_market_data(self, book: BookUpdate) -> list[Action]:
        validate_book(book)
        mid = book_mid(self._config, book)
        self.base.update_mark(mid)
        if book.crossed:
            self.counters["crossed_books"] += 1
        actions: list[Action] = []
        if not self._config.is_legacy:
            actions += self.generate_cancels(book)
        decision = self.engine.quote(
            book,
            self.base.position,
            self.quote_manager.open_bid_qty,
            self.quote_manager.open_ask_qty,
            self.is_ready,
        )
        if decision.refresh:
            actions += self.generate_quotes(book, decision.ladder)
        return actions

    def on_fill(self, fill: Fill) -> EventResult:
        """Position and P&L always move; the QuoteManager reports unknown ids etc."""
        validate_fill(fill)
        self.base.apply_fill(fill)
        return self.quote_manager.on_fill(fill.id, fill.qty, Side(fill.side))

    def on_order_ack(self, order_id: int) -> EventResult:
        return self.quote_manager.on_order_ack(order_id)

    def on_order_reject(self, order_id: int) -> EventResult:
        return self.quote_manager.on_order_reject(order_id)

    def on_order_cancel(self, order_id: int) -> EventResult:
        return self.quote_manager.on_cancel(order_id)
