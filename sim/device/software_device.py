"""An in-process software model of the whole device, for host-only use and tests.

It speaks ``read32``/``write32``/``batch`` like any other backend, keeps the register file with
the gateware's bus semantics (``RegisterFileModel``) and computes ladders with the
bit-accurate model, so a host program can run the offloaded strategy with no simulator
and no FPGA at all.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nanoquote.host.device.batch import Operation, check_batch, run_batch
from nanoquote.host.device.bus import BusError, Resp
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.hw.contract.coefficients import PipelineParams, deadman_cycles
from nanoquote.hw.contract.register_map import Register, register_map
from nanoquote.hw.model import RefreshModel
from nanoquote.sim.device.register_file import RegisterFileModel
from nanoquote.sim.device.single_update import compute_ladder
from nanoquote.sim.port_codec import LadderFields

__all__ = ["SoftwareDevice"]


class SoftwareDevice:
    """A nanoquote device in Python: registers, control latches, quote path, counters.

    Everything a register means comes from the register map: the configuration and
    inventory by field name, what each counter counts (its ``Counter``), which sticky
    errors a ladder sets, and the LADDER_* fields as the ladder's fields of that name.

    Device time: the software device's clock runs only while a batch idles (its
    :class:`Idle` operations and the waits of its polls); an access takes no cycles. The
    dead-man timer counts those cycles exactly as the gateware counts its clock: armed
    with a non-zero ``DEADMAN.deadman_us``, it latches the kill switch in the cycle after
    ``deadman_cycles(deadman_us)`` cycles have passed since the last heartbeat, commit
    or arming.
    """

    def __init__(self, max_levels: int = 8, price_bits: int = 31, latency: int = 0) -> None:
        self.map = register_map(max_levels, price_bits, latency)
        self.regs = RegisterFileModel(self.map, self._on_pulse, self._read_ro)
        self.counters_regs = self.map.group("counters")
        self.sticky = [f for f in self.map["ERRORS"].fields if f.set_by is not None]
        self.armed = False
        self.killed = False
        self.deadman_killed = False
        self.cycles_since_beat = 0  # device cycles since the dead-man timer restarted
        self.counters = self._zero_counters()
        self.ladder: LadderFields | None = None
        self.refresh = RefreshModel()  # the pipeline's refresh-timer state
        self._live: tuple[PipelineParams, dict[str, int]] | None = None
        self._ladder_words: tuple[LadderFields | None, dict[str, int]] = (None, {})

    def _zero_counters(self) -> dict[str, int]:
        return {reg.name: 0 for reg in self.counters_regs}

    # -- RegisterBus ----------------------------------------------------------------------

    def read32(self, address: int) -> int:
        resp, value = self.regs.read32(address)
        if resp is not Resp.OKAY:
            raise BusError("read", address, resp)
        return value

    def write32(self, address: int, value: int, strobe: int = 0xF) -> None:
        resp = self.regs.write32(address, value, strobe)
        if resp is not Resp.OKAY:
            raise BusError("write", address, resp)

    def batch(self, ops: list[Operation]) -> list[Any]:
        """``ops`` in process, exactly as one by one (idles are no-ops: a submit is computed at once)."""
        check_batch(ops)
        return run_batch(ops, self.read32, self.write32, self.idle)

    def idle(self, cycles: int) -> None:
        """Let ``cycles`` device clock cycles pass (the dead-man timer runs)."""
        if not self.armed:
            return
        timeout = deadman_cycles(self.regs.field("DEADMAN", "deadman_us"))
        if timeout and self.cycles_since_beat + cycles > timeout:  # latched a cycle after it ends
            self.killed, self.armed, self.deadman_killed = True, False, True
            self.cycles_since_beat = 0
            self.regs.flag("deadman")
            if self.ladder is not None:
                self.ladder = self._blocked(self.ladder)
        else:
            self.cycles_since_beat += cycles

    def close(self) -> None:
        pass

    # -- register meaning -----------------------------------------------------------------

    def params(self) -> PipelineParams:
        """The live configuration in the pipeline's format."""
        return PipelineParams(**self.regs.live_fields("config"))

    def _committed(self) -> tuple[PipelineParams, dict[str, int]]:
        """The live configuration and inventory; they change only by a commit, so they are
        kept from one submit to the next until a commit pulse."""
        if self._live is None:
            self._live = self.params(), self.regs.live_fields("inventory")
        return self._live

    def _on_pulse(self, reg: Register, value: int) -> None:
        fields = reg.unpack(value)
        if reg.name == "BOOK_SUBMIT":
            self._submit(bool(fields["has_bid"]), bool(fields["has_ask"]))
            return
        if reg.name == "HEARTBEAT":
            self.cycles_since_beat = 0
            return
        if fields["commit"]:
            self._live = None  # the register file copies the staged values after this hook
            self.cycles_since_beat = 0
        if fields["soft_reset"]:
            self.armed = False
            self.ladder = None
            self.refresh = RefreshModel()
            self.counters = self._zero_counters()
        if fields["clear_counters"]:
            self.counters = self._zero_counters()
        if fields["disarm"]:
            self.armed = False
        if fields["arm"] and not self.killed:
            self.armed = True
        if fields["kill"]:
            self.killed, self.armed = True, False
            if self.ladder is not None:
                self.ladder = self._blocked(self.ladder)
        if fields["rearm"]:
            self.killed, self.armed, self.deadman_killed = False, True, False
        if not self.armed:
            self.cycles_since_beat = 0

    def _blocked(self, ladder: LadderFields) -> LadderFields:
        """``ladder`` as the kill switch lets it leave: nothing posted, flagged (§8)."""
        levels = (0,) * self.map.max_levels
        return dataclasses.replace(ladder, bid_price=levels, ask_price=levels, bid_post=0, ask_post=0,
                                   killed=True, deadman=self.deadman_killed)

    def _read_ro(self, reg: Register) -> int:
        name = reg.name
        if name == "STATUS":
            return reg.pack(armed=self.armed, killed=self.killed, settled=1,
                            has_quoted=self.refresh.quoted, deadman=self.deadman_killed)
        if name == "LAST_QUOTE_TIME":
            return self.refresh.last
        if reg.counter is not None:
            return self.counters[name] & 0xFFFFFFFF
        ladder = self.ladder
        if ladder is None:
            return reg.reset
        cached_for, words = self._ladder_words
        if cached_for is not ladder:  # a new ladder: its words are packed as they are read
            words = {}
            self._ladder_words = (ladder, words)
        value = words.get(name)
        if value is None:
            value = words[name] = self._ladder_word(reg, ladder)
        return value

    @staticmethod
    def _ladder_word(reg: Register, ladder: LadderFields) -> int:
        name = reg.name
        if name in ("LADDER_STATUS", "LADDER_MASK"):
            return reg.pack(**{f.name: 1 if f.name == "valid" else getattr(ladder, f.name) for f in reg.fields})
        level = int(name[len("LADDER_BID"):])
        prices = ladder.bid_price if name.startswith("LADDER_BID") else ladder.ask_price
        return prices[level]

    # -- the quote path -------------------------------------------------------------------

    def _submit(self, has_bid: bool, has_ask: bool) -> None:
        live = self.regs.live
        book = BookUpdate(live["BOOK_TS"], live["BOOK_BID"] if has_bid else None,
                          live["BOOK_ASK"] if has_ask else None)
        params, inventory = self._committed()
        result = compute_ladder(params, book=book, max_levels=self.map.max_levels,
                                price_bits=self.map.price_bits, **inventory)
        refresh = self.refresh.step(bool(params.legacy), params.refresh_interval, self.armed,
                                    not result.no_mid, book.ts)
        self.ladder = dataclasses.replace(result, refresh=refresh)
        if self.killed:
            self.ladder = self._blocked(self.ladder)
        self._count(self.ladder, params)

    def _count(self, ladder: LadderFields, params: PipelineParams) -> None:
        """One update in, one ladder out: every counter and sticky error, as the map defines."""
        increments = {reg.name: reg.counter.increment(ladder, params) for reg in self.counters_regs}
        for name, amount in increments.items():
            self.counters[name] += amount
        for f in self.sticky:
            if increments[f.set_by]:
                self.regs.flag(f.name)
