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
from nanoquote.hw.contract.coefficients import (
    CYCLES_PER_US,
    PipelineParams,
    check_cycles_per_us,
    deadman_cycles,
)
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
    ``deadman_cycles(deadman_us, cycles_per_us)`` cycles have passed since the last
    heartbeat, commit or arming. ``cycles_per_us`` is the modelled design clock's cycles a
    microsecond, as ``NanoquoteTop``'s: the 200 MHz build's by default (the board's is
    ``BOARD_CLOCK.cycles_per_us``, 120).
    """

    def __init__(self, max_levels: int = 8, price_bits: int = 31, latency: int = 0, *,
                 cycles_per_us: int = CYCLES_PER_US) -> None:
        self.cycles_per_us = check_cycles_per_us(cycles_per_us)
        self.map = register_map(max_levels, price_bits, latency)
        self.regs = RegisterFileModel(self.map, self._on_pulse, self._read_ro)
        self.counters_regs = self.map.group("counters")
        self.sticky = [f for f in self.map["ERRORS"].fields if f.set_by is not None]
        self.armed = False
        self.killed = False
        self.deadman_killed = False
        self.cycles_since_beat = 0  # device cycles since the dead-man timer restarted
        self.counters = self._zero_counters()
        #: The last delivered ladder's prices (``ts`` 0, no refresh), ``ts`` and refresh.
        self._last: tuple[LadderFields, int, bool] | None = None
        self.refresh = RefreshModel()  # the pipeline's refresh-timer state
        self._live: _Committed | None = None
        submit = self.map["BOOK_SUBMIT"]
        self._has_bid, self._has_ask = submit.field("has_bid").mask, submit.field("has_ask").mask
        #: The LADDER_* words of ``ladder`` by register name (empty: no ladder yet).
        self._ladder_words: dict[str, int] = {}
        ladder_regs = [self.map[name] for name in ("LADDER_STATUS", "LADDER_MASK")]
        #: LADDER_STATUS and LADDER_MASK: (ladder field, bit offset) of each field but
        #: ``valid``, and the ``valid`` bit (set while a ladder is there).
        self._ladder_fields = {reg.name: (tuple((f.name, f.offset) for f in reg.fields if f.name != "valid"),
                                          sum(f.mask for f in reg.fields if f.name == "valid"))
                               for reg in ladder_regs}
        self._ladder_levels = {f"LADDER_{side.upper()}{i}": (side, i)
                               for side in ("bid", "ask") for i in range(max_levels)}
        #: The LADDER_* registers by address (each one word), read straight from ``_ladder_words``.
        self._ladder_addresses = {self.map[name].address: name
                                  for name in (*self._ladder_fields, *self._ladder_levels)}

    @property
    def ladder(self) -> LadderFields | None:
        """The last ladder the quote path delivered (``None`` before one, or after a soft reset)."""
        return None if self._last is None else self._last[0].stamped(self._last[1], self._last[2])

    def _zero_counters(self) -> dict[str, int]:
        return {reg.name: 0 for reg in self.counters_regs}

    # -- RegisterBus ----------------------------------------------------------------------

    def read32(self, address: int) -> int:
        name = self._ladder_addresses.get(address)
        if name is not None and self._ladder_words:  # a one-word read-only register: no snapshot, no error
            return self._ladder_words[name]
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
        timeout = deadman_cycles(self.regs.field("DEADMAN", "deadman_us"), self.cycles_per_us)
        if timeout and self.cycles_since_beat + cycles > timeout:  # latched a cycle after it ends
            self.killed, self.armed, self.deadman_killed = True, False, True
            self.cycles_since_beat = 0
            self.regs.flag("deadman")
            self._block_held()
        else:
            self.cycles_since_beat += cycles

    def close(self) -> None:
        pass

    # -- register meaning -----------------------------------------------------------------

    def params(self) -> PipelineParams:
        """The live configuration in the pipeline's format."""
        return PipelineParams(**self.regs.live_fields("config"))

    def _committed(self) -> _Committed:
        """The live configuration and inventory; they change only by a commit, so they are
        kept, with the ladders computed under them, from one submit to the next until a
        commit pulse."""
        if self._live is None:
            self._live = _Committed(self.params(), self.regs.live_fields("inventory"))
        return self._live

    def _on_pulse(self, reg: Register, value: int) -> None:
        if reg.name == "BOOK_SUBMIT":
            self._submit(bool(value & self._has_bid), bool(value & self._has_ask))
            return
        if reg.name == "HEARTBEAT":
            self.cycles_since_beat = 0
            return
        fields = reg.unpack(value)
        if fields["commit"]:
            self._live = None  # the register file copies the staged values after this hook
            self.cycles_since_beat = 0
        if fields["soft_reset"]:
            self.armed = False
            self._last, self._ladder_words = None, {}
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
            self._block_held()
        if fields["rearm"]:
            self.killed, self.armed, self.deadman_killed = False, True, False
        if not self.armed:
            self.cycles_since_beat = 0

    def _blocked(self, ladder: LadderFields) -> LadderFields:
        """``ladder`` as the kill switch lets it leave: nothing posted, flagged (§8)."""
        levels = (0,) * self.map.max_levels
        return dataclasses.replace(ladder, bid_price=levels, ask_price=levels, bid_post=0, ask_post=0,
                                   killed=True, deadman=self.deadman_killed)

    def _block_held(self) -> None:
        """The kill clears the ladder the LADDER_* registers hold."""
        if self._last is not None:
            prices, ts, refresh = self._last
            self._last = (self._blocked(prices), ts, refresh)
            self._ladder_words = self._ladder_word_values(self.ladder)

    def _read_ro(self, reg: Register) -> int:
        name = reg.name
        value = self._ladder_words.get(name)  # the current ladder's LADDER_* words
        if value is not None:
            return value
        if name == "STATUS":
            return reg.pack(armed=self.armed, killed=self.killed, settled=1,
                            has_quoted=self.refresh.quoted, deadman=self.deadman_killed)
        if name == "LAST_QUOTE_TIME":
            return self.refresh.last
        if reg.counter is not None:
            return self.counters[name] & 0xFFFFFFFF
        return reg.reset  # a LADDER_* register before the first ladder

    def _ladder_word_values(self, ladder: LadderFields) -> dict[str, int]:
        """Every LADDER_* register's value: its fields are the ladder's fields of that name
        (``valid`` is 1), or one level's price."""
        words = {name: sum(int(getattr(ladder, field)) << offset for field, offset in fields) | valid
                 for name, (fields, valid) in self._ladder_fields.items()}
        for name, (side, level) in self._ladder_levels.items():
            words[name] = (ladder.bid_price if side == "bid" else ladder.ask_price)[level]
        return words

    # -- the quote path -------------------------------------------------------------------

    def _submit(self, has_bid: bool, has_ask: bool) -> None:
        live = self.regs.live
        ts = live["BOOK_TS"]
        book = (live["BOOK_BID"] if has_bid else None, live["BOOK_ASK"] if has_ask else None)
        state = self._committed()
        prices = state.ladders.get(book)
        if prices is None:
            if len(state.ladders) >= _LADDERS_KEPT:
                state.ladders.clear()
                state.delivered.clear()
            prices = state.ladders[book] = compute_ladder(
                state.params, book=BookUpdate(ts, *book), max_levels=self.map.max_levels,
                price_bits=self.map.price_bits, **state.inventory)
        refresh = self.refresh.step(state.legacy, state.params.refresh_interval, self.armed, not prices.no_mid, ts)
        if self.killed:
            prices = self._blocked(prices)
        self._last = (prices, ts, refresh)
        key = (book, refresh, self.killed, self.deadman_killed)
        delivered = state.delivered.get(key)
        if delivered is None:
            ladder = prices.stamped(ts, refresh)
            delivered = state.delivered[key] = (self._increments(ladder, state.params),
                                                self._ladder_word_values(ladder))
        increments, self._ladder_words = delivered
        self._count(increments)

    def _increments(self, ladder: LadderFields, params: PipelineParams) -> dict[str, int]:
        """What one delivered ladder adds to each counter, as the map defines."""
        return {reg.name: reg.counter.increment(ladder, params) for reg in self.counters_regs}

    def _count(self, increments: dict[str, int]) -> None:
        """One update in, one ladder out: every counter and sticky error."""
        counters = self.counters
        for name, amount in increments.items():
            counters[name] += amount
        for f in self.sticky:
            if increments[f.set_by]:
                self.regs.flag(f.name)


#: Ladders kept per committed configuration and inventory (markets revisit prices).
_LADDERS_KEPT = 4096


class _Committed:
    """The live configuration and inventory of one commit, and what was computed under it."""

    __slots__ = ("params", "inventory", "legacy", "ladders", "delivered")

    def __init__(self, params: PipelineParams, inventory: dict[str, int]) -> None:
        self.params, self.inventory, self.legacy = params, inventory, bool(params.legacy)
        #: The ladder (``ts`` 0, no refresh) of each (bid, ask) submitted since the commit.
        self.ladders: dict[tuple[int | None, int | None], LadderFields] = {}
        #: Of each ((bid, ask), refresh, killed, killed by the dead-man timer): its counter
        #: increments and its LADDER_* words, neither of which depends on ``ts``.
        self.delivered: dict[tuple[tuple[int | None, int | None], bool, bool, bool],
                             tuple[dict[str, int], dict[str, int]]] = {}
