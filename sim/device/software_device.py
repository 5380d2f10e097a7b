"""An in-process software model of the whole device, for host-only use and tests.

It speaks ``read32``/``write32`` like any other backend, keeps the register file with
the gateware's bus semantics (``RegisterFileModel``) and computes ladders with the
bit-accurate model, so a host program can run the offloaded strategy with no simulator
and no FPGA at all.
"""

from __future__ import annotations

import dataclasses

from nanoquote.host.device.bus import BusError, Resp
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.hw.contract.coefficients import PipelineParams
from nanoquote.hw.contract.register_map import MAGIC, Register, register_map
from nanoquote.hw.model import RefreshModel
from nanoquote.sim.device.register_file import RegisterFileModel
from nanoquote.sim.device.single_update import compute_ladder
from nanoquote.sim.port_codec import LadderFields

__all__ = ["SoftwareDevice"]

_COUNTERS = ("UPDATES", "REFRESHES", "LADDERS", "GATED_BID", "GATED_ASK", "OUT_OF_DOMAIN", "CROSSED", "NO_MID")


class SoftwareDevice:
    """A nanoquote device in Python: registers, control latches, quote path, counters."""

    def __init__(self, max_levels: int = 8, price_bits: int = 31, latency: int = 0) -> None:
        self.map = register_map(max_levels, price_bits, latency)
        self.regs = RegisterFileModel(self.map, self._on_pulse, self._read_ro)
        self.armed = False
        self.killed = False
        self.counters = dict.fromkeys(_COUNTERS, 0)
        self.ladder: LadderFields | None = None
        self.refresh = RefreshModel()  # the pipeline's refresh-timer state

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

    def close(self) -> None:
        pass

    # -- register meaning -----------------------------------------------------------------

    def _field(self, name: str, field: str) -> int:
        return self.map[name].unpack(self.regs.live[name])[field]

    def params(self) -> PipelineParams:
        """The live configuration in the pipeline's format."""
        live = {}
        for name in ("POLICY", "TICK", "SPREAD", "MAX_INVENTORY", "ORDER", "TWO_TICK_RECIP", "SKEW_COEF",
                     "REFRESH_INTERVAL"):
            live.update(self.map[name].unpack(self.regs.live[name]))
        return PipelineParams(**live)

    def _staged_valid(self) -> bool:
        staged = {}
        for name in ("TICK", "SPREAD", "ORDER"):
            staged.update(self.map[name].unpack(self.regs.staged[name]))
        return (staged["tick"] >= 1 and staged["base_spread"] >= 1 and staged["order_size"] >= 1
                and 1 <= staged["num_levels"] <= self.map.max_levels)

    def _on_pulse(self, reg: Register, value: int) -> bool:
        fields = reg.unpack(value)
        if reg.name == "BOOK_SUBMIT":
            self._submit(bool(fields["has_bid"]), bool(fields["has_ask"]))
            return True
        if fields["commit"] and not self._staged_valid():
            self.regs.flag("commit_rejected")
            return False
        if fields["soft_reset"]:
            self.armed = False
            self.ladder = None
            self.refresh = RefreshModel()
            self.counters = dict.fromkeys(_COUNTERS, 0)
        if fields["clear_counters"]:
            self.counters = dict.fromkeys(_COUNTERS, 0)
        if fields["commit"]:
            self.regs.commit()
        if fields["disarm"]:
            self.armed = False
        if fields["arm"] and not self.killed:
            self.armed = True
        if fields["kill"]:
            self.killed, self.armed = True, False
        if fields["rearm"]:
            self.killed, self.armed = False, True
        return True

    def _read_ro(self, reg: Register) -> int:
        name = reg.name
        if name == "MAGIC":
            return MAGIC
        if name in ("VERSION", "BUILD") or name.startswith("LADDER_") and self.ladder is None:
            return reg.reset
        if name == "STATUS":
            return reg.pack(armed=self.armed, killed=self.killed, settled=1,
                            has_quoted=self.refresh.quoted)
        if name == "LAST_QUOTE_TIME":
            return self.refresh.last
        if name.startswith("COUNT_"):
            return self.counters[name.removeprefix("COUNT_")] & 0xFFFFFFFF
        ladder = self.ladder
        assert ladder is not None
        if name == "LADDER_STATUS":
            return reg.pack(valid=1, refresh=ladder.refresh, no_mid=ladder.no_mid, crossed=ladder.crossed,
                            bid_count=ladder.bid_count, ask_count=ladder.ask_count,
                            out_of_domain=ladder.out_of_domain)
        if name == "LADDER_MASK":
            return reg.pack(bid_post=ladder.bid_post, ask_post=ladder.ask_post)
        level = int(name[len("LADDER_BID"):])
        prices = ladder.bid_price if name.startswith("LADDER_BID") else ladder.ask_price
        return prices[level] if level < len(prices) else 0

    # -- the quote path -------------------------------------------------------------------

    def _submit(self, has_bid: bool, has_ask: bool) -> None:
        live = self.regs.live
        book = BookUpdate(live["BOOK_TS"], live["BOOK_BID"] if has_bid else None,
                          live["BOOK_ASK"] if has_ask else None)
        params = self.params()
        position = self._field("POSITION", "position")
        result = compute_ladder(params, position, self._field("LIVE_BID_QTY", "live_bid_qty"),
                                self._field("LIVE_ASK_QTY", "live_ask_qty"), book, self.map.max_levels,
                                self.map.price_bits)
        refresh = self.refresh.step(bool(params.legacy), params.refresh_interval, self.armed,
                                    not result.no_mid, book.ts)
        self.ladder = dataclasses.replace(result, refresh=refresh)
        self._count(result, params.num_levels, refresh)

    def _count(self, result: LadderFields, num_levels: int, refresh: bool) -> None:
        c = self.counters
        c["UPDATES"] += 1
        c["LADDERS"] += 1
        c["REFRESHES"] += refresh
        c["NO_MID"] += result.no_mid
        c["CROSSED"] += result.crossed
        c["OUT_OF_DOMAIN"] += result.out_of_domain
        if not result.no_mid:
            c["GATED_BID"] += result.bid_count < num_levels
            c["GATED_ASK"] += result.ask_count < num_levels
        if result.out_of_domain:
            self.regs.flag("out_of_domain")
        if result.crossed:
            self.regs.flag("crossed")
