"""Seeded random trading sessions: a market, an exchange and the operator in one loop.

A session is generated closed-loop against the golden strategy (the exchange acks,
rejects, fills and cancels the orders that strategy sent) and recorded as replay
events. Any other engine fed the same events must produce the same actions, which is
how the offloaded strategy is compared with the golden one.
"""

from __future__ import annotations

import json
import random
from typing import Any

from nanoquote.host.apps.replay import Event, apply_event, parse_events
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.host.strategy.orders import CancelOrder, NewOrder

__all__ = ["generate_session", "session_events"]


def _book_event(rng: random.Random, ts: int, bid_ticks: int, tick: int) -> dict[str, Any]:
    spread = rng.choice((1, 1, 1, 2, 3))
    bid = bid_ticks * tick + (rng.randrange(tick) if rng.random() < 0.1 else 0)
    ask = bid_ticks * tick + spread * tick
    roll = rng.random()
    if roll < 0.03:
        return {"type": "book", "ts": ts, "bid": None, "ask": ask}
    if roll < 0.05:
        return {"type": "book", "ts": ts, "bid": bid, "ask": None}
    if roll < 0.08:
        return {"type": "book", "ts": ts, "bid": ask, "ask": bid}  # crossed or locked
    return {"type": "book", "ts": ts, "bid": bid, "ask": ask}


def generate_session(seed: int, config: MarketMakerConfig, steps: int) -> list[dict[str, Any]]:
    """Events of a random session: books, acks, rejects, fills, cancels, arm/kill."""
    rng = random.Random(seed)
    strategy = MarketMakerStrategy("session", 1, config)
    fields = {name: getattr(config, name) for name in MarketMakerConfig.field_names()
              if name != "max_levels"}
    fields["quote_policy"] = config.quote_policy.value
    events: list[dict[str, Any]] = [{"type": "config", **fields}]
    pending: list[int] = []  # sent, not yet acked or rejected
    cancelling: list[int] = []
    tick = config.tick_size
    bid_ticks = rng.randint(20, 4000)
    ts = rng.randint(0, 10**9)
    step_ns = max(1, config.refresh_interval_ns // 3)

    def feed(event: dict[str, Any]) -> None:
        events.append(event)
        parsed = parse_events([json.dumps(event)])[0]
        for action in apply_event(strategy, Event(len(events), parsed.kind, parsed.payload)):
            if isinstance(action, NewOrder):
                pending.append(action.id)
            elif isinstance(action, CancelOrder):
                cancelling.append(action.id)

    feed({"type": "arm"})
    for _ in range(steps):
        roll = rng.random()
        if roll < 0.45:
            ts += rng.randint(0, 2 * step_ns) if rng.random() > 0.02 else -rng.randint(0, step_ns)
            ts = max(ts, 0)
            bid_ticks = max(2, bid_ticks + rng.choice((-2, -1, -1, 0, 0, 1, 1, 2)))
            feed(_book_event(rng, ts, bid_ticks, tick))
        elif roll < 0.65 and pending:
            order_id = pending.pop(rng.randrange(len(pending)))
            feed({"type": "reject" if rng.random() < 0.1 else "ack", "id": order_id})
        elif roll < 0.75 and cancelling:
            feed({"type": "cancel", "id": cancelling.pop(rng.randrange(len(cancelling)))})
        elif roll < 0.93:
            live = strategy.quote_manager.orders()
            if live:
                order = rng.choice(live)
                qty = rng.randint(1, order.remaining)
                feed({"type": "fill", "id": order.id, "side": order.side.value, "price": order.price,
                      "qty": qty, "fee": round(rng.uniform(0, 1), 2), "ts": ts})
        elif roll < 0.95:
            # Anomalies the QuoteManager must report without corrupting anything.
            feed(rng.choice([{"type": "ack", "id": rng.randint(1, 10**6)},
                             {"type": "cancel", "id": rng.randint(1, 10**6)}]))
        elif roll < 0.96:
            feed({"type": "kill"})
        elif roll < 0.98:
            feed({"type": "rearm"})
        elif roll < 0.99:
            feed({"type": "disarm"})
        else:
            feed({"type": "arm"})
    return events


def session_events(seed: int, config: MarketMakerConfig, steps: int) -> list[Event]:
    """The session as parsed replay events."""
    return parse_events([json.dumps(e) for e in generate_session(seed, config, steps)])
