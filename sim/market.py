"""A seeded top-of-book market for an ES-like future, in book time (docs/market.md).

The strategy needs a market that behaves like one: spreads of one to four ticks, a mid
that wanders, trends and jumps, and trade prints that eat the displayed size they hit.
Everything is drawn from one ``random.Random(seed)``, so a seed is a session: the same
seed gives the same events, byte for byte, which the sample CSV and the tests rely on.

The stream is pairs: an optional :class:`TradeEvent` followed by the :class:`BookEvent`
it left behind, both at the same ``ts_ns``. A buy-aggressor print is at the ask and
consumes its displayed size; when it takes the whole level the ask moves up a tick (a
sweep may go on to the next level as a second pair). Sells hit the bid symmetrically.
Prices are integer raw units on the tick grid (ES: 25 raw = 0.25 pt).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from nanoquote.host.strategy.orders import Side

__all__ = ["BookEvent", "TradeEvent", "MarketEvent", "Regime", "MarketConfig", "iter_market",
           "generate_market"]


@dataclass(frozen=True, slots=True)
class BookEvent:
    """Top of book: best prices (raw units) and the displayed size at each."""

    ts_ns: int
    bid: int
    ask: int
    bid_qty: int
    ask_qty: int


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """A trade print; ``side`` is the aggressor's (buy: lifted the ask, sell: hit the bid)."""

    ts_ns: int
    price: int
    qty: int
    side: Side


MarketEvent = BookEvent | TradeEvent


class Regime(StrEnum):
    """How the mid moves; the market switches between regimes at seeded times."""

    RANDOM_WALK = "random-walk"
    TREND_UP = "trend-up"
    TREND_DOWN = "trend-down"
    JUMPY = "jumpy"


#: Per regime: probability that a move (and a trade's aggressor) goes up, and of a jump.
_REGIME_DRIFT: dict[Regime, tuple[float, float]] = {
    Regime.RANDOM_WALK: (0.5, 0.0),
    Regime.TREND_UP: (0.7, 0.0),
    Regime.TREND_DOWN: (0.3, 0.0),
    Regime.JUMPY: (0.5, 0.08),
}

#: Spread in ticks and its weight: mostly one tick, as in ES.
_SPREADS = ((1, 2, 3, 4), (0.6, 0.25, 0.1, 0.05))


@dataclass(frozen=True)
class MarketConfig:
    """Parameters of the market process; the defaults look like a quiet ES session."""

    tick: int = 25
    start_bid: int = 500_000  # 5000.00 at two decimals
    start_ts_ns: int = 0
    mean_gap_ns: int = 20_000_000  # between steps, exponentially distributed
    trade_share: float = 0.35  # of steps that print a trade
    move_share: float = 0.3  # of the other steps that move the book's prices
    regime_switch: float = 0.01  # per step
    mean_level_qty: int = 25  # displayed size of a fresh level
    mean_trade_qty: int = 6
    sweep_continue: float = 0.4  # a print that took a level goes on to the next one
    max_jump_ticks: int = 12

    def __post_init__(self) -> None:
        for name in ("tick", "start_bid", "mean_gap_ns", "mean_level_qty", "mean_trade_qty",
                     "max_jump_ticks"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"MarketConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.start_bid % self.tick:
            raise ValueError(f"MarketConfig.start_bid {self.start_bid} is not a multiple of the tick {self.tick}")
        for name in ("trade_share", "move_share", "regime_switch", "sweep_continue"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"MarketConfig.{name} must be a probability, got {getattr(self, name)!r}")


class _Book:
    """The market's state in ticks; only :func:`iter_market` touches it."""

    def __init__(self, rng: random.Random, config: MarketConfig) -> None:
        self.rng, self.config = rng, config
        self.bid = config.start_bid // config.tick
        self.spread = 1
        self.bid_qty, self.ask_qty = self.fresh_qty(), self.fresh_qty()

    @property
    def ask(self) -> int:
        return self.bid + self.spread

    def fresh_qty(self) -> int:
        return 1 + int(self.rng.expovariate(1 / self.config.mean_level_qty))

    def event(self, ts: int) -> BookEvent:
        t = self.config.tick
        return BookEvent(ts, self.bid * t, self.ask * t, self.bid_qty, self.ask_qty)

    def shift(self, ticks: int) -> None:
        """Move both sides (fresh sizes): the mid moved ``ticks``; never below one tick."""
        ticks = max(ticks, 1 - self.bid)
        if ticks:
            self.bid += ticks
            self.bid_qty, self.ask_qty = self.fresh_qty(), self.fresh_qty()

    def respread(self) -> None:
        """New spread, keeping one side where it is."""
        new = self.rng.choices(*_SPREADS)[0]
        if self.rng.random() < 0.5:  # the bid stays, the ask moves
            if new != self.spread:
                self.ask_qty = self.fresh_qty()
        else:
            self.bid = max(1, self.ask - new)
            if new != self.spread:
                self.bid_qty = self.fresh_qty()
        self.spread = self.ask - self.bid

    def tighten(self) -> None:
        """A new order inside the spread: one side improves by a tick."""
        if self.rng.random() < 0.5:
            self.bid += 1
            self.bid_qty = self.fresh_qty()
        else:
            self.ask_qty = self.fresh_qty()
        self.spread -= 1

    def resize(self) -> None:
        """Others join or leave the displayed queues."""
        self.bid_qty = max(1, self.bid_qty + self.rng.randint(-6, 6))
        self.ask_qty = max(1, self.ask_qty + self.rng.randint(-6, 6))

    def take(self, side: Side, qty: int) -> tuple[int, bool]:
        """An aggressor takes up to ``qty`` at the touch: (qty printed, level taken)."""
        if side is Side.BUY:
            printed = min(qty, self.ask_qty)
            self.ask_qty -= printed
            if self.ask_qty == 0:  # level taken: the ask moves up, bids may follow
                self.spread += 1
                self.ask_qty = self.fresh_qty()
                if self.spread > 4 or (self.spread > 1 and self.rng.random() < 0.5):
                    self.bid += 1
                    self.spread -= 1
                    self.bid_qty = self.fresh_qty()
                return printed, True
            return printed, False
        printed = min(qty, self.bid_qty)
        self.bid_qty -= printed
        if self.bid_qty == 0 and self.bid > 1:  # level taken: the bid moves down, asks may follow
            self.bid -= 1
            self.spread += 1
            self.bid_qty = self.fresh_qty()
            if self.spread > 4 or (self.spread > 1 and self.rng.random() < 0.5):
                self.spread -= 1
                self.ask_qty = self.fresh_qty()
            return printed, True
        self.bid_qty = max(self.bid_qty, 1)
        return printed, False


def iter_market(seed: int, config: MarketConfig | None = None) -> Iterator[BookEvent | TradeEvent]:
    """The endless event stream of a seed: a first book, then (trade?, book) pairs."""
    config = config or MarketConfig()
    rng = random.Random(seed)
    book = _Book(rng, config)
    regime = Regime.RANDOM_WALK
    ts = config.start_ts_ns
    yield book.event(ts)
    while True:
        ts += 1 + int(rng.expovariate(1 / config.mean_gap_ns))
        if rng.random() < config.regime_switch:
            regime = rng.choice([r for r in Regime if r is not regime])
        up, jump = _REGIME_DRIFT[regime]
        if rng.random() < config.trade_share:
            side = Side.BUY if rng.random() < up else Side.SELL
            qty = 1 + int(rng.expovariate(1 / config.mean_trade_qty))
            for _ in range(4):  # a sweep takes at most four levels
                price = book.ask * config.tick if side is Side.BUY else book.bid * config.tick
                printed, taken = book.take(side, qty)
                yield TradeEvent(ts, price, printed, side)
                yield book.event(ts)
                qty -= printed
                if not (taken and qty and rng.random() < config.sweep_continue):
                    break
            continue
        if book.spread > 1 and rng.random() < 0.6:
            book.tighten()
        elif rng.random() < config.move_share:
            direction = 1 if rng.random() < up else -1
            size = rng.randint(3, config.max_jump_ticks) if rng.random() < jump else 1
            book.shift(direction * size)
        elif rng.random() < 0.3:
            book.respread()
        else:
            book.resize()
        yield book.event(ts)


def generate_market(seed: int, books: int, config: MarketConfig | None = None) -> list[MarketEvent]:
    """The first ``books`` book events of a seed's stream, with the trades between them."""
    events: list[MarketEvent] = []
    seen = 0
    for event in iter_market(seed, config):
        if isinstance(event, BookEvent):
            if seen == books:
                break
            seen += 1
        events.append(event)
    if events and isinstance(events[-1], TradeEvent):
        events.pop()  # its book is past the end: a trade ends with the book it left
    return events

