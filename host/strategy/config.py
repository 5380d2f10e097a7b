"""MarketMakerConfig: the strategy's parameters, validated once at construction.

A config that exists is valid: every consumer (golden model, register writer, hardware
coefficient calculator) may rely on the ranges of docs/spec.md §1 without re-checking.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Any

from nanoquote.host.strategy.domain import (
    DEFAULT_MAX_LEVELS,
    MAX_LEVELS_LIMIT,
    POSITION_MAX,
    SKEW_ONE,
    TICK_VALUE_MAX,
    TS_MAX,
    DomainError,
    check_int,
)

__all__ = ["ConfigError", "QuotePolicy", "MarketMakerConfig", "POLICY_DEFAULT"]


class ConfigError(DomainError):
    """A rejected configuration: names the field, the value and the allowed range."""


class QuotePolicy(StrEnum):
    """How quotes are priced and gated (docs/spec.md §4-§6)."""

    EXCHANGE = "exchange"
    LEGACY = "legacy"


class _PolicyDefault:
    """Marker for risk limits whose default depends on the quote policy."""

    def __repr__(self) -> str:
        return "POLICY_DEFAULT"


POLICY_DEFAULT: Any = _PolicyDefault()

#: Risk-limit defaults under the exchange policy (legacy: all off, as the original).
EXCHANGE_RISK_DEFAULTS = {
    "collar_ticks": 100,
    "max_order_qty": 100,
    "max_quote_updates_per_sec": 50,
    "deadman_timeout_us": 1_000_000,
}

_RISK_RANGES = {
    "collar_ticks": (0, 65535),
    "max_order_qty": (1, 65535),
    "max_quote_updates_per_sec": (1, 65535),
    "deadman_timeout_us": (1, (1 << 24) - 1),
}


@dataclass(frozen=True)
class MarketMakerConfig:
    """The nine documented parameters, the quote policy, tick value and risk limits.

    Risk limits are ``None`` when switched off. Left at ``POLICY_DEFAULT`` they are on
    under ``exchange`` and off under ``legacy`` (docs/spec.md §8).
    """

    base_spread_ticks: int = 2
    inventory_skew_factor: float = 0.5
    max_inventory: int = 50
    order_size: int = 5
    num_levels: int = 3
    min_edge_ticks: int = 1
    cancel_distance_ticks: int = 10
    tick_size: int = 25
    refresh_interval_ns: int = 100_000_000
    quote_policy: QuotePolicy = QuotePolicy.EXCHANGE
    tick_value: float = 12.5
    collar_ticks: int | None = POLICY_DEFAULT
    max_order_qty: int | None = POLICY_DEFAULT
    max_quote_updates_per_sec: int | None = POLICY_DEFAULT
    #: A device armed and without a heartbeat for this many microseconds of device time
    #: latches its kill switch (docs/spec.md §8); ``None``: no dead-man timer.
    deadman_timeout_us: int | None = POLICY_DEFAULT
    #: A fill that takes |position| past this trips the kill switch (docs/spec.md §8).
    hard_position_limit: int = POSITION_MAX
    #: A cancel not confirmed within this much book time is reported; ``None``: never.
    cancel_timeout_ns: int | None = 1_000_000_000
    max_levels: int = field(default=DEFAULT_MAX_LEVELS, compare=False)

    def __post_init__(self) -> None:
        def fail(name: str, value: object, allowed: str) -> ConfigError:
            return ConfigError(f"config field {name!r}: {value!r} is invalid, allowed {allowed}")

        def integer(name: str, low: int, high: int) -> None:
            value = getattr(self, name)
            try:
                check_int(name, value, low, high)
            except DomainError:
                raise fail(name, value, f"an integer in {low}..{high}") from None

        try:
            policy = QuotePolicy(self.quote_policy)
        except ValueError:
            raise fail("quote_policy", self.quote_policy, "'exchange' or 'legacy'") from None
        object.__setattr__(self, "quote_policy", policy)

        integer("max_levels", 1, MAX_LEVELS_LIMIT)
        integer("base_spread_ticks", 1, 255)
        integer("max_inventory", 0, POSITION_MAX)
        integer("order_size", 1, 65535)
        integer("num_levels", 1, self.max_levels)
        integer("min_edge_ticks", 0, 255)
        integer("cancel_distance_ticks", 0, 65535)
        integer("tick_size", 1, 65535)
        integer("refresh_interval_ns", 0, TS_MAX)
        integer("hard_position_limit", 0, POSITION_MAX)
        if self.cancel_timeout_ns is not None:
            integer("cancel_timeout_ns", 1, TS_MAX)

        f = self.inventory_skew_factor
        if (
            isinstance(f, bool)
            or not isinstance(f, (int, float, Fraction))
            or (isinstance(f, float) and not math.isfinite(f))
            or not 0 <= f <= 1
        ):
            raise fail("inventory_skew_factor", f, "a finite real in [0, 1]")

        tv = self.tick_value
        if isinstance(tv, bool) or not isinstance(tv, (int, float)) or not math.isfinite(tv) \
                or not 0 < tv <= TICK_VALUE_MAX:
            raise fail("tick_value", tv, f"a number in (0, {TICK_VALUE_MAX:g}]")

        for name, (low, high) in _RISK_RANGES.items():
            value = getattr(self, name)
            if value is POLICY_DEFAULT:
                value = EXCHANGE_RISK_DEFAULTS[name] if policy is QuotePolicy.EXCHANGE else None
                object.__setattr__(self, name, value)
            if value is not None:
                try:
                    check_int(name, value, low, high)
                except DomainError:
                    raise fail(name, value, f"null (off) or an integer in {low}..{high}") from None

    # -- derived quantities -------------------------------------------------------------

    @cached_property
    def skew_q(self) -> int:
        """Quantized skew factor ``round(f * 65536)`` (half to even), in 0..65536."""
        return round(Fraction(self.inventory_skew_factor) * SKEW_ONE)

    @cached_property
    def is_legacy(self) -> bool:
        return self.quote_policy is QuotePolicy.LEGACY

    # -- construction helpers -----------------------------------------------------------

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], **overrides: Any) -> MarketMakerConfig:
        """Build from a mapping (TOML table, JSON object); unknown keys are an error."""
        merged = {**values, **overrides}
        unknown = sorted(set(merged) - set(cls.field_names()))
        if unknown:
            raise ConfigError(
                f"unknown config field(s) {', '.join(map(repr, unknown))}; "
                f"known fields: {', '.join(cls.field_names())}"
            )
        return cls(**merged)

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> MarketMakerConfig:
        """Load from a UTF-8 TOML file whose top level, or else its ``[strategy]`` table, holds
        the fields; any other key or table is a ``ConfigError`` naming the file and the key."""
        path = Path(path)
        where = f"config file {str(path)!r}"
        try:
            data = tomllib.loads(path.read_bytes().decode("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {where}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"cannot read {where}: not UTF-8 (byte 0x{exc.object[exc.start]:02x} "
                              f"at offset {exc.start})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"cannot read {where}: {exc}") from None
        table = data
        if "strategy" in data:
            outside = sorted(set(data) - {"strategy"})
            if outside:  # with a [strategy] table every field is in it: nothing else is read
                raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, outside))} outside "
                                  "the [strategy] table (put every field in [strategy], or use no table)")
            table = data["strategy"]
            if not isinstance(table, dict):
                raise ConfigError(f"{where}: [strategy] must be a table")
        try:
            return cls.from_mapping(table, **overrides)
        except ConfigError as exc:  # unknown keys or tables, bad values: name the file
            exc.args = (f"{where}: {exc}", *exc.args[1:])
            raise

    def replace(self, **changes: Any) -> MarketMakerConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)
