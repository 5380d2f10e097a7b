"""Registers by name on top of any bus: names, multi-word values, field packing, identity.

Every access sequence (a whole multi-word register, a configuration, an inventory
update, a book submit, a ladder read) is written once, as a *program*: a generator
that yields bus operations (:class:`Read`, :class:`Write`, :class:`Idle`) and receives
their results. The host's blocking :class:`Device` and the testbenches'
:class:`AsyncDevice` run the same programs; only how an operation reaches the bus
differs, so a testbench drives the device exactly as the host does.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from nanoquote.host.device.bus import BusError, RegisterBus, Resp
from nanoquote.host.strategy.domain import MAX_LEVELS_LIMIT
from nanoquote.hw.contract.register_map import (
    MAGIC,
    VERSION_MAJOR,
    Register,
    RegisterMap,
    register_map,
)

__all__ = ["DeviceError", "WrongDevice", "Read", "Write", "Idle", "RegisterPrograms", "Device",
           "AsyncDevice", "identify"]

T = TypeVar("T")


class DeviceError(RuntimeError):
    """The device is reachable but does not behave as required."""


class WrongDevice(DeviceError):
    """Magic or major version differ: this driver must not touch the device."""


@dataclass(frozen=True, slots=True)
class Read:
    """Read one 32-bit word; the program receives its value."""

    address: int


@dataclass(frozen=True, slots=True)
class Write:
    """Write one 32-bit word with a byte strobe."""

    address: int
    value: int
    strobe: int = 0xF


@dataclass(frozen=True, slots=True)
class Idle:
    """Let the device's clock run (a simulator has no notion of host time; elsewhere a no-op)."""

    cycles: int


Operation = Read | Write | Idle
Program = Generator[Operation, Any, T]


class RegisterPrograms:
    """The access sequences of one register map, as programs (see the module docstring)."""

    def __init__(self, rmap: RegisterMap) -> None:
        self.map = rmap

    def read(self, name: str) -> Program[int]:
        """The whole register (all its words, lowest first, so wide values are consistent)."""
        value = 0
        for i, address in enumerate(self.map[name].addresses):
            value |= (yield Read(address)) << (32 * i)
        return value

    def read_fields(self, name: str) -> Program[dict[str, int]]:
        return self.map[name].unpack((yield from self.read(name)))

    def write(self, name: str, value: int) -> Program[None]:
        """Write a whole register; reserved bits must be zero (checked before any access)."""
        reg = self.map[name]
        allowed = sum(reg.word_mask(i) << (32 * i) for i in range(reg.words))
        if value < 0 or value & ~allowed:
            raise ValueError(f"{name}: value {value:#x} sets bits outside its fields (mask {allowed:#x})")
        for i, address in enumerate(reg.addresses):
            yield Write(address, (value >> (32 * i)) & 0xFFFFFFFF)

    def write_fields(self, name: str, **fields: int) -> Program[None]:
        yield from self.write(name, self.map[name].pack(**fields))

    def pulse(self, name: str, *fields: str) -> Program[None]:
        """Write 1 to some fields of a write-pulse (or W1C) register."""
        yield from self.write_fields(name, **{f: 1 for f in fields})

    def _packed_group(self, group: str, values: Mapping[str, int]) -> list[tuple[Register, int]]:
        """Every register of ``group`` packed from ``values`` by field name (all checked first)."""
        return [(reg, reg.pack(**{f.name: values[f.name] for f in reg.fields})) for reg in self.map.group(group)]

    def write_group(self, group: str, values: Mapping[str, int]) -> Program[None]:
        """Stage every register of ``group`` from ``values`` (by field name) and commit them."""
        for reg, value in self._packed_group(group, values):
            yield from self.write(reg.name, value)
        yield from self.pulse("CONTROL", "commit")

    def read_group(self, group: str) -> Program[dict[str, int]]:
        """Every field of ``group`` by name (live values)."""
        values: dict[str, int] = {}
        for reg in self.map.group(group):
            values.update((yield from self.read_fields(reg.name)))
        return values

    def submit(self, ts: int, bid: int | None, ask: int | None) -> Program[None]:
        """Send one book update into the pipeline through the register quote path."""
        yield from self.write("BOOK_TS", ts)
        yield from self.write("BOOK_BID", bid or 0)
        yield from self.write("BOOK_ASK", ask or 0)
        yield from self.write_fields("BOOK_SUBMIT", has_bid=bid is not None, has_ask=ask is not None)

    def wait_for_ladder(self, polls: int, idle_cycles: int = 0) -> Program[dict[str, int] | None]:
        """Poll ``LADDER_STATUS`` until ``valid``; ``None`` after ``polls`` reads."""
        for _ in range(polls):
            status = yield from self.read_fields("LADDER_STATUS")
            if status["valid"]:
                return status
            if idle_cycles:
                yield Idle(idle_cycles)
        return None

    def read_ladder(self, levels: int, *, posted_only: bool = True) -> Program[dict[str, Any]]:
        """``LADDER_MASK`` and the prices of ``levels`` levels per side.

        ``posted_only``: unposted levels are ``None`` without a read; otherwise every
        level is read (an unposted one must read 0).
        """
        mask = yield from self.read_fields("LADDER_MASK")
        prices: dict[str, Any] = dict(mask)
        for side in ("bid", "ask"):
            row = []
            for i in range(levels):
                if posted_only and not mask[f"{side}_post"] >> i & 1:
                    row.append(None)
                else:
                    row.append((yield from self.read(f"LADDER_{side.upper()}{i}")))
            prices[f"{side}_price"] = tuple(row)
        return prices


def identify(read32: Callable[[int], int]) -> RegisterMap:
    """Check MAGIC and VERSION through ``read32``, then build the map of the device's build."""
    generic = register_map()
    magic = read32(generic["MAGIC"].address)
    if magic != MAGIC:
        raise WrongDevice(f"MAGIC reads {magic:#010x}, expected {MAGIC:#010x}: not a nanoquote device")
    version = generic["VERSION"].unpack(read32(generic["VERSION"].address))
    if version["major"] != VERSION_MAJOR:
        raise WrongDevice(
            f"register map version {version['major']}.{version['minor']} is not supported "
            f"(this driver speaks {VERSION_MAJOR}.x)"
        )
    build = generic["BUILD"].unpack(read32(generic["BUILD"].address))
    if not 1 <= build["max_levels"] <= MAX_LEVELS_LIMIT:
        raise WrongDevice(f"BUILD.max_levels reads {build['max_levels']}, expected 1..{MAX_LEVELS_LIMIT}")
    try:
        return register_map(build["max_levels"], build["price_bits"], build["latency"])
    except ValueError as exc:  # a build no register map describes
        raise WrongDevice(f"BUILD reads {build}: {exc}") from None


class Device:
    """Registers by name over a blocking ``RegisterBus``; ``Device.open(bus)`` checks identity."""

    def __init__(self, bus: RegisterBus, rmap: RegisterMap) -> None:
        self.bus = bus
        self.map = rmap
        self.programs = RegisterPrograms(rmap)
        #: The bus's ``link_generation`` the device was identified on (None: a bus without one).
        self._link_seen: int | None = getattr(bus, "link_generation", None)

    @classmethod
    def open(cls, bus: RegisterBus) -> Device:
        return cls(bus, identify(bus.read32))

    def run(self, program: Program[T]) -> T:
        """Perform ``program``'s operations on the bus, in order; its result.

        A bus that reconnects (``SocketBus``: its ``link_generation`` changed since the
        last run) may now reach another device: it is identified again first, and a
        different MAGIC, major VERSION or BUILD raises :class:`WrongDevice` (on every run
        from then on) before any access of ``program``.
        """
        self._check_link()
        idle = getattr(self.bus, "idle", None)
        try:
            op = next(program)
            while True:
                if isinstance(op, Read):
                    result = self.bus.read32(op.address)
                elif isinstance(op, Write):
                    result = self.bus.write32(op.address, op.value, op.strobe)
                else:
                    result = idle(op.cycles) if idle is not None else None
                op = program.send(result)
        except StopIteration as stop:
            return stop.value

    def _check_link(self) -> None:
        """Identify the device again if the bus's link was dropped since the last run."""
        generation = getattr(self.bus, "link_generation", None)
        if generation is None or generation == self._link_seen:
            return
        rmap = identify(self.bus.read32)
        if (rmap.max_levels, rmap.price_bits, rmap.latency) != (
                self.map.max_levels, self.map.price_bits, self.map.latency):  # BUILD's fields
            raise WrongDevice(
                f"after a reconnect the device is another build (max_levels {rmap.max_levels}, "
                f"price_bits {rmap.price_bits}, latency {rmap.latency}; identified as "
                f"{self.map.max_levels}, {self.map.price_bits}, {self.map.latency}): not touching it")
        self._link_seen = generation

    def register(self, name: str) -> Register:
        return self.map[name]

    def read(self, name: str) -> int:
        return self.run(self.programs.read(name))

    def read_fields(self, name: str) -> dict[str, int]:
        return self.run(self.programs.read_fields(name))

    def write(self, name: str, value: int) -> None:
        self.run(self.programs.write(name, value))

    def write_fields(self, name: str, **fields: int) -> None:
        self.run(self.programs.write_fields(name, **fields))

    def pulse(self, name: str, *fields: str) -> None:
        self.run(self.programs.pulse(name, *fields))


class AsyncDevice:
    """The testbenches' twin of :class:`Device`: the same programs over an async bus.

    ``bus`` is a simulator's bus master: ``await bus.read(address) -> (resp, data)``,
    ``await bus.write(address, value, strobe) -> resp``, ``await bus.idle(cycles)``. A
    response other than OKAY raises :class:`~nanoquote.host.device.bus.BusError`, as
    on the host. Every :class:`RegisterPrograms` program is a method here too (awaited).
    """

    def __init__(self, bus: Any, rmap: RegisterMap) -> None:
        self.bus = bus
        self.map = rmap
        self.programs = RegisterPrograms(rmap)

    async def run(self, program: Program[T]) -> T:
        try:
            op = next(program)
            while True:
                if isinstance(op, Read):
                    resp, result = await self.bus.read(op.address)
                    if resp != Resp.OKAY:
                        raise BusError("read", op.address, Resp(resp))
                elif isinstance(op, Write):
                    resp = await self.bus.write(op.address, op.value, op.strobe)
                    if resp != Resp.OKAY:
                        raise BusError("write", op.address, Resp(resp))
                    result = None
                else:
                    result = await self.bus.idle(op.cycles)
                op = program.send(result)
        except StopIteration as stop:
            return stop.value

    def __getattr__(self, name: str) -> Callable[..., Any]:
        program = getattr(RegisterPrograms, name, None)
        if program is None or name.startswith("_"):
            raise AttributeError(name)

        async def operation(*args: Any, **kwargs: Any) -> Any:
            return await self.run(program(self.programs, *args, **kwargs))

        operation.__doc__ = program.__doc__
        return operation
