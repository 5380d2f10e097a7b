"""JSON Lines replay: events in, actions, anomalies (and optionally state) out.

A replay is two streaming passes over the file (docs/replay.md): the first parses and
validates every line and keeps only the ``config`` event, so a malformed line is reported
once (line number and reason) before any strategy state or output exists; the second
parses the lines again and runs them. Memory does not grow with the file.

Input, one object per line (``type`` selects the event):
``config`` (first line only; MarketMakerConfig fields), ``arm``, ``disarm``, ``kill``,
``rearm``, ``book`` (ts, bid, ask), ``ack``/``reject``/``cancel``/``cancel_reject`` (id),
``fill`` (id, side, price, qty, fee, ts). Lines are UTF-8, separated by ``\\n``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from nanoquote.host.strategy.anomalies import Anomaly, AnomalyKind
from nanoquote.host.strategy.config import EXCHANGE_RISK_DEFAULTS, ConfigError, MarketMakerConfig
from nanoquote.host.strategy.domain import DomainError
from nanoquote.host.strategy.market_maker import MarketMakerStrategy, validate_book, validate_fill
from nanoquote.host.strategy.orders import Action, CancelOrder, Fill, NewOrder, Side
from nanoquote.host.strategy.quoting import BookUpdate

__all__ = ["ReplayError", "Event", "iter_events", "parse_events", "scan_events", "resolve_config",
           "apply_event", "replay_records", "run_replay", "action_record", "anomaly_record",
           "state_record", "dumps_record", "anomaly_summary"]


class ReplayError(ValueError):
    """A malformed event file; the message starts with the 1-based line number."""


@dataclass(frozen=True, slots=True)
class Event:
    line: int
    kind: str
    payload: Any = None


_ID_EVENTS = {"ack", "reject", "cancel", "cancel_reject"}
#: Optional boolean fields of id events (``cancel_reject``'s reason: the exchange no longer has the order).
_ID_EVENT_FLAGS = {"cancel_reject": "unknown_order"}
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
        flag = _ID_EVENT_FLAGS.get(kind)
        _check_fields(obj, {"id"} | ({flag} if flag else set()), kind)
        order_id = _int_field(obj, "id", kind)
        if order_id < 1:  # type: ignore[operator]
            raise ValueError(f"{kind} id must be >= 1, got {order_id}")
        if flag is None:
            return Event(line, kind, order_id)
        value = obj.get(flag, False)
        if not isinstance(value, bool):
            raise ValueError(f"{kind} field {flag!r} must be true or false, got {value!r}")
        return Event(line, kind, (order_id, value))
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


class _NotJSON(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity``: Python's json accepts them, JSON does not."""


def _refuse_constant(name: str) -> Any:
    raise _NotJSON(f"{name} is not a JSON value")


def iter_events(lines: Iterable[str | bytes]) -> Iterator[Event]:
    """Parse and validate lines one at a time (bytes are decoded as UTF-8); raise
    ``ReplayError`` at the first bad one. Blank lines are skipped but counted."""
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ReplayError(f"line {number}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} "
                                  f"at column {exc.start + 1})") from None
        else:
            text = raw
        if not text.strip():
            continue
        try:
            event = _parse_one(json.loads(text, parse_constant=_refuse_constant), number)
        except json.JSONDecodeError as exc:
            raise ReplayError(f"line {number}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        except _NotJSON as exc:
            raise ReplayError(f"line {number}: invalid JSON: {exc}") from None
        except (ValueError, DomainError) as exc:
            raise ReplayError(f"line {number}: {exc}") from None
        yield event


def parse_events(lines: Iterable[str | bytes]) -> list[Event]:
    """Parse and validate every line into a list; raise ``ReplayError`` at the first bad one."""
    return list(iter_events(lines))


def scan_events(lines: Iterable[str | bytes]) -> list[Event]:
    """The validating pass: parse every line, keep only the ``config`` event.

    Returns ``[config]`` or ``[]`` (what :func:`resolve_config` needs); memory does not
    grow with the number of lines.
    """
    return [event for event in iter_events(lines) if event.kind == "config"]


def resolve_config(
    events: Iterable[Event], base: MarketMakerConfig | None = None, **overrides: Any
) -> MarketMakerConfig:
    """Defaults, then the base (e.g. from TOML), then the file's config line, then overrides.

    Only the first of ``events`` is looked at: the parsed events, or :func:`scan_events`.
    """
    first = next(iter(events), None)
    head = first if first is not None and first.kind == "config" else None
    fields: dict[str, Any] = {}
    if base is not None:
        fields.update({name: getattr(base, name) for name in MarketMakerConfig.field_names()})
    if head is not None:
        fields.update(head.payload)
        if "quote_policy" in head.payload and base is not None:
            # Risk defaults follow the policy named in the file, not the base's policy.
            for name in EXCHANGE_RISK_DEFAULTS:
                if name not in head.payload:
                    fields.pop(name, None)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return MarketMakerConfig.from_mapping(fields)
    except ConfigError as exc:
        line = head.line if head is not None else 0
        raise ReplayError(f"line {line}: {exc}") from None


def action_record(event: int, action: Action) -> dict[str, Any]:
    if isinstance(action, NewOrder):
        return {"event": event, "type": "order", "id": action.id, "side": action.side.value,
                "price": action.price, "qty": action.qty}
    assert isinstance(action, CancelOrder)
    return {"event": event, "type": "cancel", "id": action.id}


def anomaly_record(event: int, anomaly: Anomaly) -> dict[str, Any]:
    return {"event": event, "type": "anomaly", "kind": AnomalyKind(anomaly.kind).value,
            "id": anomaly.order_id, "detail": anomaly.detail}


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
    """Feed one parsed event to the strategy; return the actions it caused.

    These include the actions an exchange event leaves in ``strategy.take_actions()``
    (the kill after a fill past the hard position limit, a cancel sent again after a
    cancel reject while killed), so each is reported with the event that caused it.
    """
    kind, payload = event.kind, event.payload
    if kind == "book":
        return strategy.on_market_data(payload)
    if kind == "kill":
        return strategy.kill()
    if kind == "fill":
        strategy.on_fill(payload)
    elif kind == "ack":
        strategy.on_order_ack(payload)
    elif kind == "reject":
        strategy.on_order_reject(payload)
    elif kind == "cancel":
        strategy.on_order_cancel(payload)
    elif kind == "cancel_reject":
        order_id, unknown_order = payload
        strategy.on_cancel_reject(order_id, unknown_order=unknown_order)
    elif kind == "arm" and not strategy.killed:
        strategy.arm()  # while the kill switch is latched only "rearm" arms
    elif kind == "disarm":
        strategy.disarm()
    elif kind == "rearm":
        strategy.rearm()
    return strategy.take_actions()


def replay_records(
    events: Iterable[Event], strategy: MarketMakerStrategy, with_state: bool = False
) -> Iterator[dict[str, Any]]:
    """Yield the output records of parsed events fed to ``strategy``, in emission order:
    per event its actions, then the anomalies it raised, then (``with_state``) its state."""
    for event in events:
        if event.kind != "config":
            for action in apply_event(strategy, event):
                yield action_record(event.line, action)
        for anomaly in strategy.take_anomalies():
            yield anomaly_record(event.line, anomaly)
        if with_state:
            yield state_record(event.line, strategy)


def run_replay(
    events: Iterable[Event],
    strategy_factory: Callable[[MarketMakerConfig], MarketMakerStrategy],
    config: MarketMakerConfig,
    with_state: bool = False,
) -> Iterator[dict[str, Any]]:
    """Yield the output records of a parsed replay, in emission order."""
    return replay_records(events, strategy_factory(config), with_state)


def dumps_record(record: Mapping[str, Any]) -> str:
    """One output line, strict JSON; a non-finite number is a ``ReplayError``, never ``NaN``."""
    try:
        return json.dumps(record, separators=(",", ":"), allow_nan=False)
    except ValueError:
        bad = next((k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)), None)
        what = f"field {bad!r} is {record[bad]!r}" if bad is not None else "a number is not finite"
        raise ReplayError(f"line {record.get('event')}: {record.get('type')} record {what}, "
                          "which JSON cannot represent") from None


def anomaly_summary(counts: Mapping[str, int]) -> str | None:
    """``"3 anomalies: overfill 1, unknown-id 2"`` (kinds sorted), or None without any."""
    counts = {str(kind): n for kind, n in counts.items() if n}
    total = sum(counts.values())
    if not total:
        return None
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
    return f"{total} {'anomaly' if total == 1 else 'anomalies'}: {kinds}"
