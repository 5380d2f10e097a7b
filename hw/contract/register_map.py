"""The register map, described once as plain data.

The Amaranth register block (``nanoquote.hw.gateware.register_block``), the host's typed accessors
(``nanoquote.host.device.register_access``), the Markdown table in ``docs/registers.md``, the C header
and the JSON description are all derived from ``register_map()``; nothing else may
spell an address or a bit position.

Conventions
-----------
* 32-bit words at byte addresses; a register wider than 32 bits spans consecutive
  words, least significant word first.
* ``staged`` registers (configuration and inventory) are written into a shadow copy;
  ``CONTROL.commit`` copies every shadow into the live copy the pipeline uses in one
  clock, so a configuration (and any value wider than 32 bits) changes atomically. The
  commit is refused (SLVERR, ``ERRORS.commit_rejected``) if a staged field is outside
  its ``commit_range``, and then changes nothing. Reading a staged register returns its
  live (committed) value, so "write, commit, read back" verifies what the pipeline uses.
  Field names of the ``config`` group are those of ``PipelineParams`` and of the
  pipeline's configuration port; fields of the ``inventory`` group are pipeline inputs
  of the same name.
* Read-only registers of a ``CONSTANT_GROUPS`` group read their reset value.
* A ``counters`` register carries its :class:`Counter`: what increments it, as one
  expression that the gateware evaluates on signals and the software device on integers.
  A field with ``set_by`` is a sticky error bit set whenever that counter's increment
  is non-zero.
* Reading the lowest word of a wide read-only register snapshots the upper words, so a
  64-bit value is read consistently with two reads.
* Unmapped addresses answer DECERR. Writing a read-only register, or a 1 into a
  reserved bit, answers SLVERR. An access that errors has no side effect.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from nanoquote.host.strategy.domain import MAX_LEVELS_LIMIT
from nanoquote.hw.contract.coefficients import (
    BASE_SPREAD_BITS,
    DEADMAN_US_BITS,
    LIVE_QTY_BITS,
    MAX_INVENTORY_BITS,
    MIN_EDGE_BITS,
    ORDER_SIZE_BITS,
    POSITION_BITS,
    REFRESH_INTERVAL_BITS,
    SKEW_COEF_BITS,
    TICK_BITS,
    TS_BITS,
    recip_bits,
)
from nanoquote.hw.contract.widths import DatapathWidths

__all__ = [
    "Access", "Field", "Counter", "Register", "RegisterMap", "register_map", "CONSTANT_GROUPS",
    "MAGIC", "VERSION_MAJOR", "VERSION_MINOR", "render_markdown", "render_c_header", "render_json",
]

MAGIC = 0x4E514F54  # "NQOT"
VERSION_MAJOR = 1
VERSION_MINOR = 1


#: Read-only registers of these groups are constants (they read their reset value).
CONSTANT_GROUPS = ("id",)


class Access(StrEnum):
    RO = "RO"  # read-only: writes answer SLVERR
    RW = "RW"  # read/write
    W1C = "W1C"  # sticky bits, write 1 to clear
    WP = "WP"  # write-pulse: a write triggers an action, reads return 0


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    width: int
    doc: str
    reset: int = 0
    signed: bool = False
    #: Staged values a commit accepts (inclusive); ``None``: any value of the field.
    commit_range: tuple[int, int] | None = None
    #: A sticky error bit set whenever this counter (register name) increments.
    set_by: str | None = None

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.offset

    def commit_accepts(self, value: int) -> bool:
        return self.commit_range is None or self.commit_range[0] <= value <= self.commit_range[1]


@dataclass(frozen=True)
class Counter:
    """What increments a 32-bit event counter (wrapping).

    ``source`` is ``"update"`` (one per market update entering the pipeline) or
    ``"ladder"`` (per delivered ladder, by ``amount(ladder, config)``: ``ladder`` has the
    fields of the pipeline's ladder output, ``config`` the live configuration fields by
    name; the expression must mean the same on Amaranth values and on integers, so it
    uses ``==``, ``<``, ``&`` and ``|`` only). ``amount=None`` counts one per event.
    """

    source: str
    amount: Callable[[Any, Any], Any] | None = None
    #: ``when(ladder, config)``: a 1-bit condition; the ladder counts ``amount`` only when it
    #: holds (a select, so no counter multiplies)
    when: Callable[[Any, Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.source not in ("update", "ladder"):
            raise ValueError(f"counter source must be 'update' or 'ladder', got {self.source!r}")
        if self.source == "update" and self.amount is not None:
            raise ValueError("an update counter counts one per update")

    def increment(self, ladder: Any, config: Any) -> int:
        """The amount for one delivered ladder, on plain values (the software device)."""
        if self.when is not None and not self.when(ladder, config):
            return 0
        return 1 if self.amount is None else int(self.amount(ladder, config))


@dataclass(frozen=True)
class Register:
    name: str
    address: int
    access: Access
    fields: tuple[Field, ...]
    doc: str
    staged: bool = False
    group: str = ""
    counter: Counter | None = None

    @cached_property
    def width(self) -> int:
        return max(f.offset + f.width for f in self.fields)

    @cached_property
    def words(self) -> int:
        return (self.width + 31) // 32

    @cached_property
    def addresses(self) -> tuple[int, ...]:
        return tuple(self.address + 4 * i for i in range(self.words))

    @cached_property
    def constant(self) -> bool:
        """Read-only with a fixed value (its reset value)."""
        return self.access is Access.RO and self.group in CONSTANT_GROUPS

    @cached_property
    def sourced(self) -> bool:
        """Read-only with a value the device supplies (an input of the register block)."""
        return self.access is Access.RO and not self.constant

    @cached_property
    def reset(self) -> int:
        value = 0
        for f in self.fields:
            value |= (f.reset & ((1 << f.width) - 1)) << f.offset
        return value

    def word_mask(self, word: int) -> int:
        """Bits of word ``word`` that belong to a field (the rest are reserved)."""
        mask = 0
        for f in self.fields:
            mask |= f.mask
        return (mask >> (32 * word)) & 0xFFFFFFFF

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}")

    def pack(self, **values: int) -> int:
        """Combine field values into a register value; unknown or oversized fields raise."""
        word = 0
        for name, value in values.items():
            f = self.field(name)
            low, high = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed else (0, (1 << f.width) - 1)
            if isinstance(value, bool):
                value = int(value)
            if not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{self.name}.{name} must be an integer in {low}..{high}, got {value!r}")
            word |= (value & ((1 << f.width) - 1)) << f.offset
        return word

    def unpack(self, value: int) -> dict[str, int]:
        out = {}
        for f in self.fields:
            raw = (value >> f.offset) & ((1 << f.width) - 1)
            if f.signed and raw >> (f.width - 1):
                raw -= 1 << f.width
            out[f.name] = raw
        return out


def _one(name: str, width: int, doc: str, reset: int = 0, signed: bool = False) -> tuple[Field, ...]:
    return (Field(name.lower(), 0, width, doc, reset, signed),)


@dataclass(frozen=True)
class RegisterMap:
    max_levels: int
    price_bits: int
    latency: int
    registers: tuple[Register, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        by_address: dict[int, tuple[Register, int]] = {}
        for reg in self.registers:
            for word, addr in enumerate(reg.addresses):
                if addr in by_address:
                    raise ValueError(f"{reg.name} overlaps {by_address[addr][0].name} at {addr:#05x}")
                by_address[addr] = (reg, word)
            for f in reg.fields:
                if f.offset + f.width > 32 * reg.words:
                    raise ValueError(f"{reg.name}.{f.name} does not fit")
        object.__setattr__(self, "_by_address", by_address)
        object.__setattr__(self, "_by_name", {reg.name: reg for reg in self.registers})

    def __getitem__(self, name: str) -> Register:
        try:
            return self._by_name[name]  # type: ignore[attr-defined]
        except KeyError:
            raise KeyError(f"no register named {name!r}") from None

    def __iter__(self):
        return iter(self.registers)

    def group(self, name: str) -> tuple[Register, ...]:
        """The registers of group ``name``, by address."""
        return tuple(r for r in self.registers if r.group == name)

    def fields_of(self, group: str) -> dict[str, tuple[Register, Field]]:
        """Field name -> (register, field) for every field of ``group`` (names are unique)."""
        out: dict[str, tuple[Register, Field]] = {}
        for reg in self.group(group):
            for f in reg.fields:
                if f.name in out:
                    raise ValueError(f"field {f.name!r} appears twice in group {group!r}")
                out[f.name] = (reg, f)
        return out

    def commit_violations(self, staged: dict[str, int]) -> list[str]:
        """Staged fields a commit refuses (``staged``: register name -> staged value)."""
        bad = []
        for reg in self.registers:
            if not reg.staged:
                continue
            values = reg.unpack(staged[reg.name])
            for f in reg.fields:
                if not f.commit_accepts(values[f.name]):
                    low, high = f.commit_range  # type: ignore[misc]
                    bad.append(f"{reg.name}.{f.name} = {values[f.name]} is outside {low}..{high}")
        return bad

    def at(self, address: int) -> tuple[Register, int] | None:
        """The register holding byte ``address`` and the word index within it."""
        return self._by_address.get(address)  # type: ignore[attr-defined]

    @property
    def size(self) -> int:
        """Bytes of address space the map decodes (a power of two)."""
        end = max(r.addresses[-1] for r in self.registers) + 4
        size = 4
        while size < end:
            size *= 2
        return size


#: Registers from this address on are reserved for the pre-trade risk gate.
RISK_BLOCK_BASE = 0x200


def register_map(max_levels: int = 8, price_bits: int = 31, latency: int = 0) -> RegisterMap:
    """The map of a build; ladder registers depend on ``max_levels`` (at most 16)."""
    if not 1 <= max_levels <= MAX_LEVELS_LIMIT:
        raise ValueError(f"max_levels must be in 1..{MAX_LEVELS_LIMIT}, got {max_levels}")
    DatapathWidths(max_levels, price_bits)  # price_bits within what the datapath supports
    P = price_bits
    regs: list[Register] = [
        Register("MAGIC", 0x000, Access.RO, _one("magic", 32, "constant 0x4E514F54 ('NQOT')", MAGIC),
                 "Identifies a nanoquote device.", group="id"),
        Register("VERSION", 0x004, Access.RO, (
            Field("minor", 0, 16, "minor version: compatible additions", VERSION_MINOR),
            Field("major", 16, 16, "major version: incompatible changes", VERSION_MAJOR)),
            "Register map version; the driver refuses another major version.", group="id"),
        Register("BUILD", 0x008, Access.RO, (
            Field("max_levels", 0, 8, "build-time maximum of num_levels", max_levels),
            Field("price_bits", 8, 8, "price width", P),
            Field("latency", 16, 8, "pipeline latency in cycles", latency)),
            "Build parameters.", group="id"),
        Register("SCRATCH", 0x00C, Access.RW, _one("scratch", 32, "free for bus tests"),
                 "Scratch register.", group="id"),
        Register("CONTROL", 0x010, Access.WP, (
            Field("arm", 0, 1, "allow quoting (ignored while killed)"),
            Field("disarm", 1, 1, "stop quoting"),
            Field("kill", 2, 1, "latch the kill switch (disarms)"),
            Field("rearm", 3, 1, "clear the kill latch and arm"),
            Field("commit", 4, 1, "copy every staged register into the live configuration"),
            Field("soft_reset", 5, 1, "clear refresh state, counters and the ladder; disarm"),
            Field("clear_counters", 6, 1, "zero the event counters")),
            "Operator actions.", group="control"),
        Register("STATUS", 0x014, Access.RO, (
            Field("armed", 0, 1, "quoting allowed"),
            Field("killed", 1, 1, "kill switch latched"),
            Field("settled", 2, 1, "derived coefficients match the live configuration", reset=1),
            Field("has_quoted", 3, 1, "LAST_QUOTE_TIME is valid"),
            Field("deadman", 4, 1, "the kill switch was latched by the dead-man timer (until rearm)")),
            "Device state.", group="control"),
        Register("ERRORS", 0x018, Access.W1C, (
            Field("bus_error", 0, 1, "an access was answered DECERR or SLVERR"),
            Field("commit_rejected", 1, 1, "a commit was refused (staged values out of range)"),
            Field("out_of_domain", 2, 1, "a gated level was outside the price domain",
                  set_by="COUNT_OUT_OF_DOMAIN"),
            Field("crossed", 3, 1, "a crossed or locked book was seen", set_by="COUNT_CROSSED"),
            Field("deadman", 4, 1, "the dead-man timer latched the kill switch")),
            "Sticky error flags, write 1 to clear.", group="control"),
        Register("POLICY", 0x020, Access.RW, _one("legacy", 1, "1: legacy policy, 0: exchange"),
                 "Quote policy.", staged=True, group="config"),
        Register("TICK", 0x024, Access.RW, (Field("tick", 0, TICK_BITS, "tick size T in raw units, 1..65535",
                                                   commit_range=(1, (1 << TICK_BITS) - 1)),),
                 "Tick size.", staged=True, group="config"),
        Register("SPREAD", 0x028, Access.RW, (
            Field("base_spread", 0, BASE_SPREAD_BITS, "base spread B in ticks, 1..255",
                  commit_range=(1, (1 << BASE_SPREAD_BITS) - 1)),
            Field("min_edge", 8, MIN_EDGE_BITS, "minimum edge in ticks")),
            "Spread and edge.", staged=True, group="config"),
        Register("MAX_INVENTORY", 0x02C, Access.RW, _one("max_inventory", MAX_INVENTORY_BITS, "M in lots (0: never quote)"),
                 "Position limit.", staged=True, group="config"),
        Register("ORDER", 0x030, Access.RW, (
            Field("order_size", 0, ORDER_SIZE_BITS, "lots per level, 1..65535",
                  commit_range=(1, (1 << ORDER_SIZE_BITS) - 1)),
            Field("num_levels", 16, 8, "levels per side, 1..max_levels", commit_range=(1, max_levels))),
            "Ladder shape.", staged=True, group="config"),
        Register("TWO_TICK_RECIP", 0x038, Access.RW, _one("two_tick_recip", recip_bits(P), f"ceil(2^{recip_bits(P)} / (2T))"),
                 "Reciprocal for the per-update division by 2T.", staged=True, group="config"),
        Register("SKEW_COEF", 0x040, Access.RW, _one("skew_coef", SKEW_COEF_BITS, "ceil(c * 2^47), see docs/datapath.md"),
                 "Skew per lot of position.", staged=True, group="config"),
        Register("REFRESH_INTERVAL", 0x050, Access.RW, _one("refresh_interval", REFRESH_INTERVAL_BITS, "ns between refreshes"),
                 "Refresh interval.", staged=True, group="config"),
        Register("POSITION", 0x060, Access.RW, _one("position", POSITION_BITS, "filled position in lots", signed=True),
                 "Net position fed back by the host.", staged=True, group="inventory"),
        Register("LIVE_BID_QTY", 0x064, Access.RW, _one("live_bid_qty", LIVE_QTY_BITS, "remaining qty of live bids"),
                 "Live bid quantity fed back by the host.", staged=True, group="inventory"),
        Register("LIVE_ASK_QTY", 0x068, Access.RW, _one("live_ask_qty", LIVE_QTY_BITS, "remaining qty of live asks"),
                 "Live ask quantity fed back by the host.", staged=True, group="inventory"),
        Register("BOOK_TS", 0x080, Access.RW, _one("ts", TS_BITS, "book time in ns"),
                 "Register quote path: update timestamp.", group="quote"),
        Register("BOOK_BID", 0x088, Access.RW, _one("bid", P, "best bid"),
                 "Register quote path: best bid.", group="quote"),
        Register("BOOK_ASK", 0x08C, Access.RW, _one("ask", P, "best ask"),
                 "Register quote path: best ask.", group="quote"),
        Register("BOOK_SUBMIT", 0x090, Access.WP, (
            Field("has_bid", 0, 1, "best bid present"),
            Field("has_ask", 1, 1, "best ask present")),
            "Register quote path: a write sends BOOK_* into the pipeline.", group="quote"),
        Register("LADDER_STATUS", 0x0A0, Access.RO, (
            Field("valid", 0, 1, "the ladder of the last submitted update is here"),
            Field("refresh", 1, 1, "requote now"),
            Field("no_mid", 2, 1, "nothing to quote around"),
            Field("crossed", 3, 1, "crossed or locked book"),
            Field("bid_count", 8, 5, "gated bid levels"),
            Field("ask_count", 13, 5, "gated ask levels"),
            Field("out_of_domain", 18, 6, "gated levels outside the price domain"),
            Field("killed", 24, 1, "blocked by the kill switch: nothing posted"),
            Field("deadman", 25, 1, "the kill switch was latched by the dead-man timer"),
            Field("size_blocked", 26, 1, "order_size above max_order_qty: every level blocked")),
            "Register quote path: result flags.", group="quote"),
        Register("LADDER_MASK", 0x0A4, Access.RO, (
            Field("bid_post", 0, 16, "bid level i is posted"),
            Field("ask_post", 16, 16, "ask level i is posted")),
            "Register quote path: posted levels.", group="quote"),
        Register("LAST_QUOTE_TIME", 0x0A8, Access.RO, _one("last_quote_time", TS_BITS, "ts of the last refresh"),
                 "Refresh clock state.", group="quote"),
    ]
    for i in range(max_levels):
        regs.append(Register(f"LADDER_BID{i}", 0x0C0 + 4 * i, Access.RO, _one("price", P, f"bid level {i}"),
                             f"Register quote path: bid level {i} price (0 if not posted).", group="ladder"))
        regs.append(Register(f"LADDER_ASK{i}", 0x100 + 4 * i, Access.RO, _one("price", P, f"ask level {i}"),
                             f"Register quote path: ask level {i} price (0 if not posted).", group="ladder"))
    counters = [
        ("UPDATES", "market updates accepted", Counter("update")),
        ("REFRESHES", "refreshes decided", Counter("ladder", lambda lad, cfg: lad.refresh)),
        ("LADDERS", "ladders delivered", Counter("ladder")),
        ("GATED_BID", "updates with fewer bid levels than num_levels",
         Counter("ladder", lambda lad, cfg: (lad.no_mid == 0) & (lad.bid_count < cfg.num_levels))),
        ("GATED_ASK", "updates with fewer ask levels than num_levels",
         Counter("ladder", lambda lad, cfg: (lad.no_mid == 0) & (lad.ask_count < cfg.num_levels))),
        ("OUT_OF_DOMAIN", "levels not posted for their price", Counter("ladder", lambda lad, cfg: lad.out_of_domain)),
        ("CROSSED", "crossed or locked books", Counter("ladder", lambda lad, cfg: lad.crossed)),
        ("NO_MID", "updates with nothing to quote around", Counter("ladder", lambda lad, cfg: lad.no_mid)),
        ("SIZE_BLOCKED", "levels of refreshes blocked by the maximum order quantity",
         Counter("ladder", lambda lad, cfg: lad.bid_count + lad.ask_count - lad.out_of_domain,
                 when=lambda lad, cfg: lad.size_blocked & lad.refresh & (lad.killed == 0))),
        ("KILL_BLOCKED", "ladders blocked by a kill (CONTROL.kill)",
         Counter("ladder", lambda lad, cfg: lad.killed & (lad.deadman == 0))),
        ("DEADMAN_BLOCKED", "ladders blocked by a kill the dead-man timer latched",
         Counter("ladder", lambda lad, cfg: lad.deadman)),
    ]
    for i, (name, doc, counter) in enumerate(counters):
        regs.append(Register(f"COUNT_{name}", 0x140 + 4 * i, Access.RO, _one("count", 32, doc + " (wraps)"),
                             f"Counter: {doc}.", group="counters", counter=counter))
    regs += [
        Register("HEARTBEAT", 0x058, Access.WP, (Field("beat", 0, 1, "restart the dead-man timer"),),
                 "Host heartbeat: a write restarts the dead-man timer.", group="control"),
        Register("MAX_ORDER_QTY", 0x034, Access.RW,
                 _one("max_order_qty", ORDER_SIZE_BITS, "order_size above it blocks every level (0: off)"),
                 "Pre-trade risk: maximum order quantity.", staged=True, group="config"),
        Register("DEADMAN", 0x05C, Access.RW,
                 _one("deadman_us", DEADMAN_US_BITS, "dead-man timeout in microseconds (0: off)"),
                 "Dead-man timer: armed and without a heartbeat for this long, the device latches "
                 "its kill switch.", staged=True, group="risk"),
    ]
    regs.sort(key=lambda r: r.address)
    return RegisterMap(max_levels, price_bits, latency, tuple(regs))


# -- generated artifacts -----------------------------------------------------------------


def render_markdown(rmap: RegisterMap) -> str:
    lines = [
        "# Register map",
        "",
        f"Generated by `nanoquote regs --format markdown` (max_levels={rmap.max_levels}, "
        f"price_bits={rmap.price_bits}); do not edit. Conventions: `nanoquote.hw.contract.register_map`.",
        "",
        "| address | register | access | staged | field | bits | reset | description |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for reg in rmap:
        span = f"{reg.address:#05x}" + (f"-{reg.addresses[-1] + 3:#05x}" if reg.words > 1 else "")
        for i, f in enumerate(reg.fields):
            bits = f"{f.offset + f.width - 1}:{f.offset}" if f.width > 1 else f"{f.offset}"
            head = (f"`{span}`", f"**{reg.name}**", reg.access.value, "yes" if reg.staged else "") if i == 0 else ("", "", "", "")
            doc = f.doc + (" (signed)" if f.signed else "")
            if f.commit_range is not None:
                doc += f"; a commit needs {f.commit_range[0]}..{f.commit_range[1]}"
            if f.set_by is not None:
                doc += f"; set when {f.set_by} counts"
            lines.append(f"| {' | '.join(head)} | {f.name} | {bits} | {f.reset:#x} | {doc} |")
    lines += ["", "Unmapped addresses answer DECERR; writes to read-only registers or reserved bits "
              "answer SLVERR; erroring accesses have no side effect.", ""]
    return "\n".join(lines)


def render_c_header(rmap: RegisterMap) -> str:
    out = [
        "/* nanoquote register map. Generated by `nanoquote regs --format c`; do not edit. */",
        "#ifndef NANOQUOTE_REGS_H",
        "#define NANOQUOTE_REGS_H",
        "",
        f"#define NQ_MAGIC 0x{MAGIC:08X}u",
        f"#define NQ_VERSION_MAJOR {VERSION_MAJOR}u",
        f"#define NQ_VERSION_MINOR {VERSION_MINOR}u",
        f"#define NQ_MAX_LEVELS {rmap.max_levels}u",
        f"#define NQ_MAP_SIZE 0x{rmap.size:X}u",
        "",
    ]
    for reg in rmap:
        out.append(f"/* {reg.name}: {reg.doc} ({reg.access.value}{', staged' if reg.staged else ''}) */")
        out.append(f"#define NQ_{reg.name}_ADDR 0x{reg.address:03X}u")
        out.append(f"#define NQ_{reg.name}_WORDS {reg.words}u")
        for f in reg.fields:
            key = f"NQ_{reg.name}_{f.name.upper()}"
            out.append(f"#define {key}_SHIFT {f.offset}u")
            out.append(f"#define {key}_WIDTH {f.width}u")
            if f.offset + f.width <= 32:
                out.append(f"#define {key}_MASK 0x{f.mask:08X}u")
        out.append("")
    out.append("#endif /* NANOQUOTE_REGS_H */")
    return "\n".join(out) + "\n"


def render_json(rmap: RegisterMap) -> str:
    data = {
        "magic": MAGIC, "version": [VERSION_MAJOR, VERSION_MINOR],
        "max_levels": rmap.max_levels, "price_bits": rmap.price_bits, "latency": rmap.latency,
        "size": rmap.size,
        "registers": [
            {"name": r.name, "address": r.address, "words": r.words, "access": r.access.value,
             "staged": r.staged, "group": r.group, "doc": r.doc,
             "counts_per": r.counter.source if r.counter is not None else None,
             "fields": [{"name": f.name, "offset": f.offset, "width": f.width, "reset": f.reset,
                         "signed": f.signed, "doc": f.doc,
                         "commit_range": list(f.commit_range) if f.commit_range is not None else None,
                         "set_by": f.set_by} for f in r.fields]}
            for r in rmap
        ],
    }
    return json.dumps(data, indent=2, allow_nan=False) + "\n"
