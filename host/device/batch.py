"""Bus operations and batches of them: what one round trip to a device may carry.

A *batch* is a list of operations (:class:`Read`, :class:`Write`, :class:`Idle`,
:class:`Poll`) performed in order; its result is one entry per operation (a read's or
a poll's value, ``None`` otherwise). Every backend executes a batch natively (the
software device in process, ``MmapBus`` with plain loads and stores, ``SocketBus`` in
one round trip), and every execution follows :func:`batch_steps`, the one definition of
what a batch does: the same register effects and results as its operations issued one
by one. The first operation answered with an error ends the batch
(:class:`BatchError`): the operations before it have taken effect, it and those after
it have not been performed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from nanoquote.host.device.responses import BusError, Resp

__all__ = ["Read", "Write", "Idle", "Poll", "Operation", "BatchError", "MAX_BATCH_OPS", "MAX_POLLS",
           "MAX_IDLE_CYCLES", "idle_cycles", "check_batch", "batch_steps", "run_batch", "perform_batch"]

#: The most operations one batch may hold (a quote with its inventory update needs ~30).
MAX_BATCH_OPS = 1024
#: The most reads one :class:`Poll` may make.
MAX_POLLS = 0xFFFF
#: The most clock cycles one request (a batch: all its idles and polls' waits together)
#: may ask for, so no request keeps a server busy for long (seconds of Amaranth
#: simulation; docs/performance.md has the simulators' rates).
MAX_IDLE_CYCLES = 100_000


@dataclass(frozen=True, slots=True)
class Read:
    """Read one 32-bit word; its result is the value."""

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


@dataclass(frozen=True, slots=True)
class Poll:
    """Read ``address`` until a bit of ``mask`` is set, at most ``limit`` times, idling
    ``cycles`` between reads; its result is the last value read.

    It succeeded when that value has a bit of ``mask`` set (:meth:`succeeded`); a poll
    that gives up is no error, so the batch goes on.
    """

    address: int
    mask: int
    limit: int
    cycles: int = 0

    def succeeded(self, value: int) -> bool:
        return bool(value & self.mask)


Operation = Read | Write | Idle | Poll


class BatchError(BusError):
    """Operation ``index`` of a batch was answered with an error response.

    The operations before it took effect (``results`` holds their results); it and those
    after it were not performed.
    """

    def __init__(self, index: int, op: Operation, address: int, resp: Resp, results: Sequence[Any]) -> None:
        kind = "write" if isinstance(op, Write) else "idle" if isinstance(op, Idle) else "read"
        super().__init__(kind, address, resp)
        self.args = (f"operation {index} of a batch ({type(op).__name__.lower()}): {self.args[0]}",)
        self.index, self.operation, self.results = index, op, list(results)


def idle_cycles(op: Operation) -> int:
    """The clock cycles ``op`` may idle (a poll: between all its reads)."""
    if isinstance(op, Idle):
        return op.cycles
    if isinstance(op, Poll):
        return op.cycles * (op.limit - 1)
    return 0


def check_batch(ops: Sequence[Operation]) -> None:
    """Raise ``ValueError`` naming the first malformed operation (before any is performed)."""
    if len(ops) > MAX_BATCH_OPS:
        raise ValueError(f"a batch holds at most {MAX_BATCH_OPS} operations, got {len(ops)}")
    cycles = 0
    for index, op in enumerate(ops):
        kind = type(op)
        if kind is Read or kind is Write:  # the common case first: a bus word, aligned
            address = op.address
            if address & 3 or not 0 <= address <= 0xFFFFFFFF:
                bad = _ADDRESS
            elif kind is Write and not (0 <= op.value <= 0xFFFFFFFF and 0 <= op.strobe <= 0xF):
                bad = _VALUE
            else:
                continue
        elif kind is Poll:
            bad = (_ADDRESS if op.address & 3 or not 0 <= op.address < 1 << 32
                   else _POLL if not (0 < op.mask < 1 << 32 and 1 <= op.limit <= MAX_POLLS)
                   else _CYCLES if op.cycles < 0 else None)
        elif kind is Idle:
            bad = _CYCLES if op.cycles < 0 else None
        else:
            bad = "{op!r} is not a bus operation"
        if bad is not None:
            raise ValueError(f"operation {index} of the batch: " + bad.format(op=op, limit=MAX_POLLS))
        cycles += idle_cycles(op)
    if cycles > MAX_IDLE_CYCLES:
        raise ValueError(f"a batch idles at most {MAX_IDLE_CYCLES} cycles, this one {cycles}")


_ADDRESS = "address {op.address:#x} is not a 4-byte aligned 32-bit value"
_VALUE = "value {op.value:#x} or strobe {op.strobe} out of range"
_POLL = "mask {op.mask:#x} or limit {op.limit} out of range (limit 1..{limit})"
_CYCLES = "{op.cycles} idle cycles"


#: What :func:`batch_steps` yields: one access, performed by its runner.
Step = Read | Write | Idle


def batch_steps(ops: Sequence[Operation]) -> Generator[Step, Any, list[Any]]:
    """The accesses that perform ``ops``, one at a time; the batch's results.

    The runner performs each access it yields and sends its result (a read's value,
    ``None`` otherwise), or throws in the :class:`BusError` it was answered with, which
    ends the batch with a :class:`BatchError`. Polls are expanded here, so every backend
    polls alike.
    """
    results: list[Any] = []
    for index, op in enumerate(ops):
        try:
            if isinstance(op, Poll):
                value = yield Read(op.address)
                for _ in range(op.limit - 1):
                    if value & op.mask:
                        break
                    if op.cycles:
                        yield Idle(op.cycles)
                    value = yield Read(op.address)
                results.append(value)
            else:
                results.append((yield op))
        except BusError as exc:
            raise BatchError(index, op, exc.address, exc.resp, results) from None
    return results


def run_batch(ops: Sequence[Operation], read32: Callable[[int], int],
              write32: Callable[[int, int, int], None], idle: Callable[[int], None] | None = None) -> list[Any]:
    """Perform ``ops`` through blocking one-word accesses (which raise ``BusError``); the results.

    This is :func:`batch_steps` written out as a loop: it is the hot path of every
    in-process backend (a quote is one batch), and a generator step per access costs
    more than the access itself there. The tests hold the two to the same results.
    """
    results: list[Any] = []
    append = results.append
    for index, op in enumerate(ops):
        kind = type(op)
        try:
            if kind is Write:
                append(write32(op.address, op.value, op.strobe))
            elif kind is Read:
                append(read32(op.address))
            elif kind is Poll:
                address, mask, cycles = op.address, op.mask, op.cycles
                value = read32(address)
                for _ in range(op.limit - 1):
                    if value & mask:
                        break
                    if cycles and idle is not None:
                        idle(cycles)
                    value = read32(address)
                append(value)
            else:
                append(idle(op.cycles) if idle is not None and op.cycles else None)
        except BusError as exc:
            raise BatchError(index, op, exc.address, exc.resp, results) from None
    return results


async def perform_batch(ops: Sequence[Operation], read: Callable[[int], Awaitable[tuple[int, int]]],
                        write: Callable[[int, int, int], Awaitable[int]],
                        idle: Callable[[int], Awaitable[None]]) -> list[Any]:
    """Perform ``ops`` through a simulator's async accesses, which answer response codes
    (``read -> (resp, data)``, ``write -> resp``); the results, or :class:`BatchError`."""
    steps = batch_steps(ops)
    result: Any = None
    error: BusError | None = None
    try:
        while True:
            step = steps.send(result) if error is None else steps.throw(error)
            result = error = None
            if isinstance(step, Read):
                resp, result = await read(step.address)
                kind = "read"
            elif isinstance(step, Write):
                resp, kind = await write(step.address, step.value, step.strobe), "write"
            else:
                if step.cycles:
                    await idle(step.cycles)
                continue
            if resp != Resp.OKAY:
                error, result = BusError(kind, step.address, Resp(resp)), None
    except StopIteration as stop:
        return stop.value
