"""A register bus that fails on purpose: timeouts and error answers at chosen accesses.

Wraps any ``RegisterBus`` (usually the software device) so tests can make the device
fail at every register access of an update, or at random with a seeded probability.
A failed access does not reach the device (a request lost on the link), except an
:class:`AnswerLost`, which is performed and then times out (its answer was lost).

A batch (:meth:`FaultyBus.batch`) is performed one access at a time against the rule,
so a fault can strike in its middle: a lost request times the batch out there (the
accesses before it done, the rest not), a lost answer lets the whole batch be performed
and then times it out, an error response ends it as the device's would.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from nanoquote.host.device.batch import Operation, check_batch, run_batch
from nanoquote.host.device.bus import BusError, BusTimeout, RegisterBus, Resp

__all__ = ["FaultyBus", "AnswerLost"]


class AnswerLost(BusTimeout):
    """The access reached the device; its answer did not come back."""

#: ``fault(op, address, access_index) -> exception or None``.
FaultRule = Callable[[str, int, int], BaseException | None]


class FaultyBus:
    """``read32``/``write32`` of ``bus``, failing where ``rule`` says (see :meth:`at` and :meth:`random`)."""

    def __init__(self, bus: RegisterBus, rule: FaultRule | None = None) -> None:
        self.bus = bus
        self.rule = rule
        self.accesses = 0
        self.faults = 0

    @staticmethod
    def timeout_on(address: int, op: str = "read", nth: int = 1) -> FaultRule:
        """Time out the ``nth`` ``op`` of ``address`` (counting from when the rule is set)."""
        seen = 0

        def rule(kind: str, addr: int, _index: int) -> BaseException | None:
            nonlocal seen
            if kind == op and addr == address:
                seen += 1
                if seen == nth:
                    return BusTimeout(f"no answer for address {address:#06x}")
            return None

        return rule

    @staticmethod
    def random(rng: random.Random, probability: float) -> FaultRule:
        """Each access fails with ``probability``: a third each lost requests, lost answers
        (performed, then timed out) and SLVERR answers."""

        def rule(kind: str, address: int, _index: int) -> BaseException | None:
            if rng.random() >= probability:
                return None
            pick = rng.random()
            if pick < 1 / 3:
                return BusTimeout(f"no answer for address {address:#06x}")
            if pick < 2 / 3:
                return AnswerLost(f"answer for address {address:#06x} lost")
            return BusError(kind, address, Resp.SLVERR)

        return rule

    def _fault(self, op: str, address: int) -> BaseException | None:
        """The fault of this access, raised at once unless it is a lost answer."""
        self.accesses += 1
        error = self.rule(op, address, self.accesses) if self.rule is not None else None
        if error is not None:
            self.faults += 1
            if not isinstance(error, AnswerLost):
                raise error
        return error

    def read32(self, address: int) -> int:
        lost = self._fault("read", address)
        value = self.bus.read32(address)
        if lost is not None:
            raise lost
        return value

    def write32(self, address: int, value: int, strobe: int = 0xF) -> None:
        lost = self._fault("write", address)
        self.bus.write32(address, value, strobe)
        if lost is not None:
            raise lost

    def batch(self, ops: list[Operation]) -> list[Any]:
        """``ops`` one access at a time through the rule (see the module docstring)."""
        check_batch(ops)
        lost: list[BaseException] = []

        def access(op: str, address: int) -> None:
            error = self._fault(op, address)
            if error is not None:
                lost.append(error)

        def read32(address: int) -> int:
            access("read", address)
            return self.bus.read32(address)

        def write32(address: int, value: int, strobe: int = 0xF) -> None:
            access("write", address)
            self.bus.write32(address, value, strobe)

        results = run_batch(ops, read32, write32, getattr(self.bus, "idle", None))
        if lost:
            raise lost[0]
        return results

    def close(self) -> None:
        self.bus.close()
