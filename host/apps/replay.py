"""JSON Lines replay: events in, actions (and optionally state) out.

The whole file is parsed and validated before anything runs, so a malformed line is
reported once (line number and reason) and no strategy state or output is produced.

Input, one object per line (``type`` selects the event):
``config`` (first line only; MarketMakerConfig fields), ``arm``, ``disarm``, ``kill``,
``rearm``, ``book`` (ts, bid, ask), ``ack``/``reject``/``cancel`` (id), ``fill`` (id,
side, price, qty, fee, ts).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from nanoquote.host.strategy.config import ConfigError, MarketMakerConfig
from nanoquote.host.strategy.domain import DomainError
from nanoquote.host.strategy.market_maker import MarketMakerStrategy, validate_book, validate_fill
from nanoquote.host.strategy.orders import Action, CancelOrder, Fill, NewOrder, Side
from nanoquote.host.strategy.quoting import BookUpdate

__all__ = ["ReplayError", "Event", "parse_events", "run_replay", "action_record", "state_record"]


class ReplayError(ValueError):
    """A malformed event file; the message starts with the 1-based line number."""


@dataclass(frozen=True, slots=True)
class Event:
    line: int
    kind: str
    payload: Any = None


_ID_EVENTS = {"ack", "reject", "cancel"}
_CONTROL_EVENTS = {"arm", "disarm", "kill", "rearm"}


def _require(obj: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in obj:
        raise ValueError(f"{what} event needs field {key!r}")
    return obj[key]


def _int_field(obj: Mapping[str, Any], key: str, what: str, nullable: bool = False) -> int | None:
    value = _require(obj, key, what)
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} field {key!r} must be an integer, got {value!r}")
    return value


def _check_fields(obj: Mapping[str, Any], allowed: set[str], what: str) -> None:
    extra = sorted(set(obj) - allowed - {"type"})
    if extra:
        raise ValueError(f"{what} event has unknown field(s) {', '.join(map(repr, extra))}")


def _parse_one(obj: Any, line: int) -> Event:
    if not isinstance(obj, dict):
        raise ValueError("each line must be a JSON object")
    kind = obj.get("type")
    if kind == "config":
        if line != 1:
            raise ValueError("a config event is only allowed on the first line")
        fields = {k: v for k, v in obj.items() if k != "type"}
        return Event(line, kind, fields)
    if kind in _CONTROL_EVENTS:
        _check_fields(obj, set(), kind)
        return Event(line, kind)
    if kind == "book":
        _check_fields(obj, {"ts", "bid", "ask"}, kind)
        book = BookUpdate(
            _int_field(obj, "ts", kind),
            _int_field(obj, "bid", kind, nullable=True),
            _int_field(obj, "ask", kind, nullable=True),
        )
        return Event(line, kind, validate_book(book))
    if kind in _ID_EVENTS:
        _check_fields(obj, {"id"}, kind)
        order_id = _int_field(obj, "id", kind)
        if order_id < 1:  # type: ignore[operator]
            raise ValueError(f"{kind} id must be >= 1, got {order_id}")
        return Event(line, kind, order_id)
    if kind == "fill":
        _check_fields(obj, {"id", "side", "price", "qty", "fee", "ts"}, kind)
        side = _require(obj, "side", kind)
        if side not in ("buy", "sell"):
            raise ValueError(f"fill field 'side' must be \"buy\" or \"sell\", got {side!r}")
        fee = obj.get("fee", 0.0)
        if isinstance(fee, bool) or not isinstance(fee, (int, float)) or not math.isfinite(fee):
            raise ValueError(f"fill field 'fee' must be a finite number, got {fee!r}")
        fill = Fill(
            _int_field(obj, "id", kind),  # type: ignore[arg-type]
            Side(side),
            _int_field(obj, "price", kind),  # type: ignore[arg-type]
            _int_field(obj, "qty", kind),  # type: ignore[arg-type]
            float(fee),
            _int_field(obj, "ts", kind) if "ts" in obj else 0,  # type: ignore[arg-type]
        )
        return Event(line, kind, validate_fill(fill))
    raise ValueError(f"unknown event type {kind!r}")


def parse_events(lines: Iterable[str]) -> list[Event]:
    """Parse and validate every line; raise ``ReplayError`` at the first bad one."""
    events: list[Event] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            events.append(_parse_one(json.loads(text), number))
        except json.JSONDecodeError as exc:
            raise ReplayError(f"line {number}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        except (ValueError, DomainError) as exc:
            raise ReplayError(f"line {number}: {exc}") from None
    return events


def resolve_config(
    events: list[Event], base: MarketMakerConfig | None = None, **overrides: Any
) -> MarketMakerConfig:
    """Defaults, then the base (e.g. from TOML), then the file's config line, then overrides."""
    fields: dict[str, Any] = {}
    if base is not None:
        fields.update({name: getattr(base, name) for name in MarketMakerConfig.field_names()})
    if events and events[0].kind == "config":
        fields.update(events[0].payload)
        if "quote_policy" in events[0].payload and base is not None:
            # Risk defaults follow the policy named in the file, not the base's policy.
            for name in ("collar_ticks", "max_order_qty", "max_quote_updates_per_sec"):
                if name not in events[0].payload:
                    fields.pop(name, None)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return MarketMakerConfig.from_mapping(fields)
    except ConfigError as exc:
        line = events[0].line if events and events[0].kind == "config" else 0
        raise ReplayError(f"line {line}: {exc}") from None


def action_record(event: int, action: Action) -> dict[str, Any]:
    if isinstance(action, NewOrder):
        return {"event": event, "type": "order", "id": action.id, "side": action.side.value,
                "price": action.price, "qty": action.qty}
    assert isinstance(action, CancelOrder)
    return {"event": event, "type": "cancel", "id": action.id}


def state_record(event: int, strategy: MarketMakerStrategy) -> dict[str, Any]:
    qm = strategy.quote_manager
    return {
        "event": event,
        "type": "state",
        "position": strategy.position,
        "bid_ids": sorted(o.id for o in qm.bid_orders),
        "ask_ids": sorted(o.id for o in qm.ask_orders),
        "open_bid_qty": qm.open_bid_qty,
        "open_ask_qty": qm.open_ask_qty,
        "fair_value": strategy.fair_value,
        "realized_pnl": strategy.base.realized_pnl,
        "unrealized_pnl": strategy.base.unrealized_pnl,
    }


def apply_event(strategy: MarketMakerStrategy, event: Event) -> list[Action]:
    """Feed one parsed event to the strategy; return the actions it caused."""
    kind, payload = event.kind, event.payload
    if kind == "book":
        return strategy.on_market_data(payload)
    if kind == "fill":
        strategy.on_fill(payload)
    elif kind == "ack":
        strategy.on_order_ack(payload)
    elif kind == "reject":
        strategy.on_order_reject(payload)
    elif kind == "cancel":
        strategy.on_order_cancel(payload)
    elif kind == "arm" and not strategy.killed:
        strategy.arm()  # while the kill switch is latched only "rearm" arms
    elif kind == "disarm":
        strategy.disarm()
    elif kind == "kill":
        return strategy.kill()
    elif kind == "rearm":
        strategy.rearm()
    return []


def run_replay(
    events: list[Event],
    strategy_factory: Callable[[MarketMakerConfig], MarketMakerStrategy],
    config: MarketMakerConfig,
    with_state: bool = False,
) -> Iterator[dict[str, Any]]:
    """Yield the output records of a parsed replay, in emission order."""
    strategy = strategy_factory(config)
    for event in events:
        if event.kind == "config":
            if with_state:
                yield state_record(event.line, strategy)
            continue
        for action in apply_event(strategy, event):
            yield action_record(event.line, action)
        if with_state:
            yield state_record(event.line, strategy)
