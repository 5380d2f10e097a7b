"""Seeded sessions against a lying exchange and a failing device, checked at every step.

:class:`FaultyExchange` is the source of truth for what rests: it takes the strategy's
orders and cancels, executes trades, and answers with acks, fills, cancel confirmations
and rejects, delivered out of order. On top of legal behaviour it injects every fault a
host must survive (:data:`FAULT_KINDS`). :func:`run_session` plays one session through a
strategy (golden, or offloaded over the software device behind a :class:`FaultyBus`) and
checks after every step that

* the QuoteManager's side totals equal the sum of its orders' remaining quantities;
* every order resting at the exchange is tracked by the host (nothing is lost);
* in exchange policy, the true position (what the exchange executed) plus every order
  resting at the exchange stays within ``max_inventory`` on each side, up to how far the
  exchange's misreports ever made the host believe itself shorter (for buys) or longer
  (for sells) than it is: orders placed on that belief may rest on;

and at the end that after ``kill()`` and the exchange's answers nothing rests.

:func:`shrink` reduces a failing session to what it needs: the shortest prefix of steps
and the fewest fault kinds that still produce a violation.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from nanoquote.host.device.offload import offloaded_strategy
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.host.strategy.orders import Action, Fill, NewOrder, Side
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.sim.device.software_device import SoftwareDevice
from nanoquote.sim.faulty_bus import FaultyBus

__all__ = ["FAULT_KINDS", "FaultyExchange", "SessionReport", "run_session", "shrink", "ENGINES"]

#: Fault kinds and their probability per opportunity.
FAULT_KINDS: dict[str, float] = {
    "duplicate-message": 0.03,  # an ack or a cancel confirmation delivered twice
    "unknown-id": 0.01,  # an ack or fill for an id never sent
    "reordered": 0.3,  # messages of different orders overtake each other; a fill its order's ack
    "overfill": 0.02,  # a fill of more than the order had left
    "reject-of-acked": 0.02,  # a "reject" of an order the exchange acked (it keeps resting)
    "spurious-cancel-reject": 0.05,  # a cancel refused although the order rests
    "lost-cancel-confirmation": 0.05,  # a cancel done, its confirmation never sent
    "wrong-side-fill": 0.01,  # a fill reported on the other side than the order's
    "device-fault": 0.002,  # per register access (offloaded engine): lost requests, lost answers, SLVERR
}
# Cancels racing fills need no injection: a cancel that reaches the exchange after the
# order was filled is answered with a cancel reject, as a real exchange does. Fills are
# not duplicated: without an execution id a repeated fill cannot be told from a second one.



@dataclass(slots=True)
class Resting:
    side: Side
    price: int
    remaining: int


@dataclass
class FaultyExchange:
    """What rests (``resting``) and the messages on their way to the host (``outbox``)."""

    rng: random.Random
    tick: int
    faults: dict[str, float] = field(default_factory=lambda: dict(FAULT_KINDS))
    resting: dict[int, Resting] = field(default_factory=dict)
    outbox: list[tuple] = field(default_factory=list)
    #: Signed lots the exchange really executed for the host (its true position).
    true_position: int = 0
    injected: Counter[str] = field(default_factory=Counter)

    def _fault(self, kind: str) -> bool:
        if self.rng.random() < self.faults.get(kind, 0.0):
            self.injected[kind] += 1
            return True
        return False

    def receive(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, NewOrder):
                self.resting[action.id] = Resting(action.side, action.price, action.qty)
                self.outbox.append(("ack", action.id))
            elif action.id in self.resting:  # a cancel of a resting order
                if self._fault("spurious-cancel-reject"):
                    self.outbox.append(("cancel_reject", action.id, False))
                    continue
                del self.resting[action.id]
                if not self._fault("lost-cancel-confirmation"):
                    self.outbox.append(("cancel", action.id))
            else:  # filled or cancelled already: the cancel lost the race
                self.outbox.append(("cancel_reject", action.id, True))

    def trade(self, mid: int) -> None:
        """A trade in the market executes one resting order near the mid, partly or fully."""
        near = [i for i, r in self.resting.items() if abs(r.price - mid) <= 3 * self.tick]
        if not near:
            return
        order_id = self.rng.choice(sorted(near))
        order = self.resting[order_id]
        qty = self.rng.randint(1, order.remaining)
        side, reported = order.side, qty
        if self._fault("overfill"):
            qty = order.remaining
            reported = qty + self.rng.randint(1, 5)
        if self._fault("wrong-side-fill"):
            side = Side.SELL if side is Side.BUY else Side.BUY
        self.true_position += order.side.sign * qty
        order.remaining -= qty
        if order.remaining == 0:
            del self.resting[order_id]
        self.outbox.append(("fill", order_id, side, order.price, reported))

    def lie(self, ghost: int) -> None:
        """Occasionally say something untrue about an order (``ghost``: an id never sent)."""
        if self._fault("unknown-id"):
            if self.rng.random() < 0.5:
                self.outbox.append(("ack", ghost))
            else:
                self.outbox.append(("fill", ghost, Side.BUY, 50000, 1))
        acked = sorted(self.resting)
        if acked and self._fault("reject-of-acked"):
            self.outbox.append(("reject", self.rng.choice(acked)))

    def deliver(self, strategy: MarketMakerStrategy) -> list[Action]:
        """Hand one message to the strategy; the actions it caused."""
        if not self.outbox:
            return []
        index = self.rng.randrange(min(3, len(self.outbox))) if self._fault("reordered") else 0
        # an order's own messages keep their order, except that a fill may pass its ack
        if index and self.outbox[index][0] != "fill" and any(
                m[1] == self.outbox[index][1] for m in self.outbox[:index]):
            index = 0
        message = self.outbox.pop(index)
        if message[0] in ("ack", "cancel") and self._fault("duplicate-message"):
            self.outbox.append(message)
        kind, order_id = message[0], message[1]
        if kind == "ack":
            strategy.on_order_ack(order_id)
        elif kind == "fill":
            _, _, side, price, qty = message
            strategy.on_fill(Fill(order_id, side, price, qty))
        elif kind == "cancel":
            strategy.on_order_cancel(order_id)
        elif kind == "reject":
            strategy.on_order_reject(order_id)
        else:
            strategy.on_cancel_reject(order_id, unknown_order=message[2])
        return strategy.take_actions()


@dataclass
class SessionReport:
    seed: int
    steps: int
    violations: list[str] = field(default_factory=list)
    #: The first step with a violation (``steps`` for one found only after the final kill).
    first_violation: int | None = None
    injected: Counter[str] = field(default_factory=Counter)
    anomalies: Counter[str] = field(default_factory=Counter)
    kills: int = 0


def _golden(config: MarketMakerConfig) -> tuple[MarketMakerStrategy, FaultyBus | None]:
    return MarketMakerStrategy("golden", 1, config), None


def _offloaded(config: MarketMakerConfig) -> tuple[MarketMakerStrategy, FaultyBus | None]:
    bus = FaultyBus(SoftwareDevice())
    strategy = offloaded_strategy(config, bus)
    return strategy, bus


#: Engine name -> factory of (strategy, its faulty bus or None).
ENGINES: dict[str, Callable[[MarketMakerConfig], tuple[MarketMakerStrategy, FaultyBus | None]]] = {
    "golden": _golden,
    "offloaded": _offloaded,
}


@dataclass
class _Belief:
    """How far the host ever believed itself shorter / longer than it is."""

    short: int = 0
    long: int = 0


def _check(strategy: MarketMakerStrategy, exchange: FaultyExchange, config: MarketMakerConfig,
           belief: _Belief) -> list[str]:
    qm = strategy.quote_manager
    bad = []
    for side, total in ((Side.BUY, qm.open_bid_qty), (Side.SELL, qm.open_ask_qty)):
        if total != sum(o.remaining for o in qm.orders(side)):
            bad.append(f"QuoteManager {side} total {total} is not the sum of its orders")
    lost = sorted(i for i in exchange.resting if i not in qm)
    if lost:
        bad.append(f"orders resting at the exchange but not tracked: {lost}")
    if not config.is_legacy:
        error = strategy.position - exchange.true_position
        belief.short, belief.long = max(belief.short, -error), max(belief.long, error)
        buys = sum(r.remaining for r in exchange.resting.values() if r.side is Side.BUY)
        sells = sum(r.remaining for r in exchange.resting.values() if r.side is Side.SELL)
        pos = exchange.true_position
        if pos + buys > config.max_inventory + belief.short or -pos + sells > config.max_inventory + belief.long:
            bad.append(f"worst case past the limit: true position {pos} (host {strategy.position}), "
                       f"resting buys {buys}, sells {sells}")
    return bad


def _settle(strategy: MarketMakerStrategy, exchange: FaultyExchange, limit: int = 1_000_000) -> None:
    """Deliver every message, sending what the strategy answers, until all is quiet."""
    for _ in range(limit):
        if not exchange.outbox:
            return
        exchange.receive(exchange.deliver(strategy))
    raise RuntimeError("the exchange and the strategy did not settle")


def run_session(engine: str, seed: int, steps: int = 2000, policy: str = "exchange",
                faults: dict[str, float] | None = None) -> SessionReport:
    """One seeded session (see the module docstring); the violations found.

    ``faults`` overrides :data:`FAULT_KINDS` (a kind at 0 is never injected).
    """
    faults = dict(FAULT_KINDS) if faults is None else faults
    rng = random.Random(seed)
    config = MarketMakerConfig(quote_policy=policy, max_inventory=rng.choice([10, 20, 50]),
                               order_size=rng.choice([1, 2, 5]), num_levels=rng.randint(1, 4),
                               refresh_interval_ns=rng.choice([0, 1000, 50_000]), cancel_timeout_ns=200_000,
                               max_quote_updates_per_sec=None, hard_position_limit=500)
    strategy, bus = ENGINES[engine](config)
    belief = _Belief()
    tick = config.tick_size
    exchange = FaultyExchange(rng, tick, faults)
    report = SessionReport(seed, steps)
    if bus is not None and faults.get("device-fault"):
        bus.rule = FaultyBus.random(rng, faults["device-fault"])
    strategy.arm()
    mid, ts = 50_000, 0
    for step in range(steps):
        roll = rng.random()
        if roll < 0.35:
            ts += rng.choice([1, 500, 5_000, 20_000])
            mid += tick * rng.choice([-2, -1, 0, 0, 1, 2, 40 * rng.choice([-1, 1]) if rng.random() < 0.02 else 0])
            spread = tick * rng.randint(1, 3)
            exchange.receive(strategy.on_market_data(BookUpdate(ts, mid - spread // 2, mid + spread - spread // 2)))
        elif roll < 0.75:
            exchange.receive(exchange.deliver(strategy))
        elif roll < 0.9:
            exchange.trade(mid)
        elif roll < 0.95:
            exchange.lie(10**9 + step)
        elif roll < 0.97:
            exchange.receive(strategy.kill())
            report.kills += 1
        elif strategy.killed:
            strategy.rearm()
        for problem in _check(strategy, exchange, config, belief):
            report.violations.append(f"seed {seed} step {step}: {problem}")
            if report.first_violation is None:
                report.first_violation = step
    # the kill takes everything down once the exchange has answered (faults stay on)
    if bus is not None:
        bus.rule = None
    exchange.receive(strategy.kill())
    _settle(strategy, exchange)
    if exchange.resting:
        report.violations.append(f"seed {seed}: after kill() and the exchange's answers "
                                 f"{sorted(exchange.resting)} still rest")
        if report.first_violation is None:
            report.first_violation = steps
    report.injected = exchange.injected + Counter({"device-fault": bus.faults} if bus is not None else {})
    report.anomalies = Counter(strategy.anomaly_counts)
    return report


def shrink(engine: str, seed: int, policy: str = "exchange", steps: int = 2000) -> tuple[int, list[str]] | None:
    """``(steps, fault kinds)``: the shortest failing prefix of a failing session and a
    minimal set of fault kinds it needs (each kind is switched off in turn and stays off
    while the session still fails); ``None`` if the session does not fail."""
    faults = dict(FAULT_KINDS)
    report = run_session(engine, seed, steps, policy, faults)
    if report.first_violation is None:
        return None
    steps = report.first_violation + 1
    for kind in list(faults):
        trial = {**faults, kind: 0.0}
        again = run_session(engine, seed, steps, policy, trial)
        if again.first_violation is not None:
            faults, steps = trial, again.first_violation + 1
    return steps, sorted(kind for kind, p in faults.items() if p)
