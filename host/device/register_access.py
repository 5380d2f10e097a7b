"""Registers by name on top of any bus: names, multi-word values, field packing, identity.

Every access sequence (a whole multi-word register, a configuration, an inventory
update, a book submit, a ladder read, a whole quote) is written once, as a *program*: a
generator that yields bus operations (:class:`Read`, :class:`Write`, :class:`Idle`,
:class:`Poll`, or a list of them, whose results it receives as a list) and receives
their results. The host's blocking :class:`Device` and the testbenches'
:class:`AsyncDevice` run the same programs; only how an operation reaches the bus
differs, so a testbench drives the device exactly as the host does.

:class:`Device` runs a program in batches (:mod:`nanoquote.host.device.batch`): a write
or an idle is held back (its result is ``None``) and sent with the next operation whose
result the program needs, or when the program ends. A program yields as one list the
reads whose addresses do not depend on each other's values, so a whole quote is one
batch, one round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any, TypeVar

from nanoquote.host.device.batch import (
    MAX_BATCH_OPS,
    MAX_IDLE_CYCLES,
    Idle,
    Operation,
    Poll,
    Read,
    Write,
    check_batch,
    idle_cycles,
    perform_batch,
    run_batch,
)
from nanoquote.host.device.bus import RegisterBus
from nanoquote.host.strategy.domain import MAX_LEVELS_LIMIT
from nanoquote.hw.contract.register_map import (
    MAGIC,
    VERSION_MAJOR,
    Register,
    RegisterMap,
    register_map,
)

__all__ = ["DeviceError", "WrongDevice", "Read", "Write", "Idle", "Poll", "RegisterPrograms", "Device",
           "AsyncDevice", "identify"]

T = TypeVar("T")


class DeviceError(RuntimeError):
    """The device is reachable but does not behave as required."""


class WrongDevice(DeviceError):
    """Magic or major version differ: this driver must not touch the device."""


ProgramStep = Operation | list[Operation]
Program = Generator[ProgramStep, Any, T]


class RegisterPrograms:
    """The access sequences of one register map, as programs (see the module docstring)."""

    def __init__(self, rmap: RegisterMap) -> None:
        self.map = rmap
        #: Every register's field bits (the rest are reserved), by name.
        self._allowed = {reg.name: sum(reg.word_mask(i) << (32 * i) for i in range(reg.words)) for reg in rmap}
        self._every_level: dict[int, list[Operation]] = {}
        submit = rmap["BOOK_SUBMIT"]
        #: What :meth:`submit` writes: the addresses of BOOK_TS's words, BOOK_BID and
        #: BOOK_ASK, and the BOOK_SUBMIT write of each (has_bid, has_ask), by has_bid + 2 * has_ask.
        self._submit_ops = (rmap["BOOK_TS"].addresses, rmap["BOOK_BID"].address, rmap["BOOK_ASK"].address,
                            [Write(submit.address, submit.pack(has_bid=b, has_ask=a)) for a in (0, 1) for b in (0, 1)])
        self._quote_tails: dict[tuple[int, int, int], list[Operation]] = {}

    def read(self, name: str) -> Program[int]:
        """The whole register (all its words, lowest first, so wide values are consistent)."""
        return self._join((yield [Read(a) for a in self.map[name].addresses]))

    @staticmethod
    def _join(words: list[int]) -> int:
        """A register's value from its words, lowest first."""
        return sum(word << (32 * i) for i, word in enumerate(words))

    def read_fields(self, name: str) -> Program[dict[str, int]]:
        return self.map[name].unpack((yield from self.read(name)))

    def write(self, name: str, value: int) -> Program[None]:
        """Write a whole register; reserved bits must be zero (checked before any access)."""
        reg = self.map[name]
        allowed = self._allowed[name]
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

    def read_group(self, group: str, *more: str) -> Program[dict[str, int]]:
        """Every field of ``group`` (and of the ``more`` groups) by name (live values),
        read in one list."""
        regs = [reg for name in (group, *more) for reg in self.map.group(name)]
        words = yield [Read(a) for reg in regs for a in reg.addresses]
        values: dict[str, int] = {}
        for reg in regs:
            values.update(reg.unpack(self._join(words[:reg.words])))
            words = words[reg.words:]
        return values

    def submit(self, ts: int, bid: int | None, ask: int | None) -> Program[None]:
        """Send one book update into the pipeline through the register quote path."""
        yield from self._submit_writes(ts, bid, ask)

    def _submit_writes(self, ts: int, bid: int | None, ask: int | None) -> list[Operation]:
        """The writes of :meth:`submit` (values checked first, as :meth:`write` does)."""
        ts_words, bid_address, ask_address, submits = self._submit_ops
        submit = submits[(bid is not None) + 2 * (ask is not None)]
        bid, ask = bid or 0, ask or 0
        for name, value in (("BOOK_TS", ts), ("BOOK_BID", bid), ("BOOK_ASK", ask)):
            if value < 0 or value & ~self._allowed[name]:
                raise ValueError(f"{name}: value {value:#x} sets bits outside its fields "
                                 f"(mask {self._allowed[name]:#x})")
        writes = [Write(address, (ts >> (32 * i)) & 0xFFFFFFFF) for i, address in enumerate(ts_words)]
        writes += [Write(bid_address, bid), Write(ask_address, ask), submit]
        return writes

    def wait_for_ladder(self, polls: int, idle_cycles: int = 0) -> Program[dict[str, int] | None]:
        """Poll ``LADDER_STATUS`` until ``valid``; ``None`` after ``polls`` reads."""
        return self._ladder_status((yield self._poll_ladder(polls, idle_cycles)))

    def _poll_ladder(self, polls: int, idle_cycles: int) -> Poll:
        reg = self.map["LADDER_STATUS"]
        return Poll(reg.address, reg.field("valid").mask, polls, idle_cycles)

    def _ladder_status(self, value: int) -> dict[str, int] | None:
        status = self.map["LADDER_STATUS"].unpack(value)
        return status if status["valid"] else None

    def read_ladder(self, levels: int, *, posted_only: bool = True) -> Program[dict[str, Any]]:
        """``LADDER_MASK`` and the prices of ``levels`` levels per side.

        ``posted_only``: unposted levels are ``None`` without a read (the prices are read
        after the mask); otherwise every level is read with the mask, in one list (an
        unposted one must read 0).
        """
        if not posted_only:
            return self._ladder_prices(levels, (yield self._ladder_reads(levels)), None)
        mask_word = yield from self.read("LADDER_MASK")
        mask = self.map["LADDER_MASK"].unpack(mask_word)
        wanted = {(side, i) for side in ("bid", "ask") for i in range(levels) if mask[f"{side}_post"] >> i & 1}
        return self._ladder_prices(levels, [mask_word, *(yield self._ladder_reads(levels, wanted)[1:])], wanted)

    def _ladder_reads(self, levels: int, wanted: set[tuple[str, int]] | None = None) -> list[Operation]:
        """``LADDER_MASK`` and the price of each level (of ``wanted``, if given)."""
        if wanted is None:  # the quote's, every update: built once per level count
            if levels not in self._every_level:
                self._every_level[levels] = self._ladder_reads(levels, {(s, i) for s in ("bid", "ask")
                                                                        for i in range(levels)})
            return self._every_level[levels]
        return [Read(self.map["LADDER_MASK"].address)] + [
            Read(self.map[f"LADDER_{side.upper()}{i}"].address)
            for side in ("bid", "ask") for i in range(levels) if (side, i) in wanted]

    def _ladder_prices(self, levels: int, words: list[int], wanted: set[tuple[str, int]] | None) -> dict[str, Any]:
        """The results of :meth:`_ladder_reads` by name (an unread level: ``None``)."""
        prices: dict[str, Any] = self.map["LADDER_MASK"].unpack(words[0])
        rest = iter(words[1:])
        for side in ("bid", "ask"):
            prices[f"{side}_price"] = tuple(next(rest) if wanted is None or (side, i) in wanted else None
                                            for i in range(levels))
        return prices

    def quote(self, ts: int, bid: int | None, ask: int | None, levels: int, polls: int,
              idle_cycles: int = 0) -> Program[tuple[dict[str, int] | None, dict[str, Any]]]:
        """Submit a book update, idle ``idle_cycles``, wait for its ladder and read it, in
        one list after the submit's writes: one round trip. ``(status, prices)``:
        ``status`` is ``None`` if no ladder came within ``polls`` reads (the prices read
        then mean nothing); every level's price is read, and an unposted one is ``None``.
        """
        key = (levels, polls, idle_cycles)
        tail = self._quote_tails.get(key)
        if tail is None:  # the same every update: built once
            # the pipeline's latency first, so that the first poll finds the ladder
            tail = self._quote_tails[key] = [Idle(idle_cycles), self._poll_ladder(polls, idle_cycles),
                                             *self._ladder_reads(levels)]
        words = yield [*self._submit_writes(ts, bid, ask), *tail]
        status_word, mask_word = words[-2 * levels - 2], words[-2 * levels - 1]
        prices: dict[str, Any] = self.map["LADDER_MASK"].unpack(mask_word)
        for side, first in (("bid", len(words) - 2 * levels), ("ask", len(words) - levels)):
            post = prices[f"{side}_post"]
            prices[f"{side}_price"] = tuple(p if post >> i & 1 else None
                                            for i, p in enumerate(words[first:first + levels]))
        return self._ladder_status(status_word), prices


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
        """Perform ``program``'s operations on the bus, in order, in batches; its result.

        Writes and idles are held back and sent with the next operation whose result the
        program needs (or when it ends, or when a batch is full), so the bus sees exactly
        the program's operations in order. A program that raises drops what it held back.

        A bus that reconnects (``SocketBus``: its ``link_generation`` changed since the
        last run) may now reach another device: it is identified again first, and a
        different MAGIC, major VERSION or BUILD raises :class:`WrongDevice` (on every run
        from then on) before any access of ``program``.
        """
        self._check_link()
        batch = self._batch
        pending: list[Operation] = []
        cycles = 0
        try:
            step = next(program)
            while True:
                ops = step if isinstance(step, list) else [step]
                held = isinstance(step, (Write, Idle))
                if pending or held:  # what is held back must fit one batch with what follows
                    more = 0 if type(step) is Write else sum(idle_cycles(op) for op in ops)
                    if pending and (len(pending) + len(ops) > MAX_BATCH_OPS or cycles + more > MAX_IDLE_CYCLES):
                        batch(pending)
                        pending, cycles = [], 0
                    cycles += more
                pending.extend(ops)
                if held:
                    result = None
                else:
                    results = batch(pending)
                    result = results[len(results) - len(ops):] if isinstance(step, list) else results[-1]
                    pending, cycles = [], 0
                step = program.send(result)
        except StopIteration as stop:
            if pending:
                batch(pending)
            return stop.value

    def _batch(self, ops: list[Operation]) -> list[Any]:
        """``ops`` through the bus's own ``batch``, or one access at a time on a bus without one."""
        native = getattr(self.bus, "batch", None)
        if native is not None:
            return native(ops)
        check_batch(ops)
        return run_batch(ops, self.bus.read32, self.bus.write32, getattr(self.bus, "idle", None))

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
    on the host (a :class:`~nanoquote.host.device.batch.BatchError`, one of them). Every
    :class:`RegisterPrograms` program is a method here too (awaited). Operations are
    performed as the program yields them, one transaction each.
    """

    def __init__(self, bus: Any, rmap: RegisterMap) -> None:
        self.bus = bus
        self.map = rmap
        self.programs = RegisterPrograms(rmap)

    async def run(self, program: Program[T]) -> T:
        try:
            step = next(program)
            while True:
                ops = step if isinstance(step, list) else [step]
                results = await perform_batch(ops, self.bus.read, self.bus.write, self.bus.idle)
                step = program.send(results if isinstance(step, list) else results[0])
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
