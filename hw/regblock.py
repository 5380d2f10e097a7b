"""The register block, generated from the register map (``nanoquote.hw.registers``).

No address or bit position is written here: storage, decode, access checks and ports
all come from :func:`~nanoquote.hw.registers.register_map`. Semantics (the conventions
of ``nanoquote.hw.registers`` and the behavioural model ``nanoquote.sim.regfile``):

* ``RW``: storage; byte strobes choose which bytes change. A ``staged`` register is
  written into a shadow copy; ``CONTROL.commit`` copies every shadow into the live copy
  in one clock. Reads return the *live* value (what the pipeline uses), so a driver
  reads back its configuration after the commit.
* ``RO``: writes answer SLVERR. Registers of the ``id`` group are constants (their
  reset value); the others are inputs of this block. Reading the lowest word of a
  multi-word read-only register snapshots the whole value; higher words then read
  from the snapshot (before the first snapshot, from the current value).
* ``W1C``: writing 1 clears a bit; the ``<name>_set`` input sets bits (set wins over
  a clear in the same cycle). ``ERRORS.bus_error`` and ``ERRORS.commit_rejected`` are
  set here.
* ``WP``: a write drives the written field values on the ``<name>`` output for one
  cycle and pulses ``<name>_stb``; reads return 0. If the ``<name>_busy`` input is high
  the write is refused with SLVERR (the top uses it for a book submit that cannot be
  taken yet).
* Unmapped word: DECERR. Write to ``RO``, or a 1 in a reserved bit of a strobed byte:
  SLVERR. A commit whose staged values are out of range: SLVERR and
  ``ERRORS.commit_rejected``. An erroring access has no other effect than setting
  ``ERRORS.bus_error`` (and ``commit_rejected``).

Timing: the bus port's strobe cycle only decodes (the word address comes from a
register in the AXI slave) and registers the result; the write takes effect and the
acknowledge is given in the next cycle, from registers, so enables fan out from
flip-flops. The read multiplexer's output is registered here (and again in the AXI
slave). Nothing in this block is on the pipeline's per-update path.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .axil import AxiResp, RegisterPortSignature
from .registers import Access, Register, RegisterMap

__all__ = ["register_layout", "port_name", "COMMIT_RULES", "RegisterBlock"]

#: Staged values a commit requires: (register, field) -> (minimum, maximum); a maximum
#: of ``"max_levels"`` means the build parameter. Out of range: the commit is refused.
COMMIT_RULES: dict[tuple[str, str], tuple[int, int | str | None]] = {
    ("TICK", "tick"): (1, None),
    ("SPREAD", "base_spread"): (1, None),
    ("ORDER", "order_size"): (1, None),
    ("ORDER", "num_levels"): (1, "max_levels"),
}

#: Read-only registers of these groups are constants (their reset value).
CONSTANT_GROUPS = ("id",)


def register_layout(reg: Register) -> data.FlexibleLayout:
    """The fields of ``reg`` at their bit offsets (signed fields signed)."""
    return data.FlexibleLayout(reg.width, {
        f.name: data.Field(signed(f.width) if f.signed else unsigned(f.width), f.offset)
        for f in reg.fields
    })


def port_name(reg: Register) -> str:
    """Port of ``reg`` on :class:`RegisterBlock` (``LADDER_BID0`` -> ``ladder_bid0``)."""
    return reg.name.lower()


def _byte_mask(strb: Signal) -> Signal:
    return Cat(*(strb[i].replicate(8) for i in range(4)))


class RegisterBlock(wiring.Component):
    """Storage and bus semantics of every register of ``rmap``.

    Parameters
    ----------
    rmap : RegisterMap
        The map of this build.
    addr_width : int
        Byte address width of the bus (the map must fit).

    Ports (``name`` is :func:`port_name` of the register)
    --------------------------------------------------------
    bus : ``In(RegisterPortSignature(addr_width))``
        Requests from :class:`~nanoquote.hw.axil.AxiLiteRegisterSlave`.
    <name> : ``Out(register_layout(reg))`` for RW and W1C registers
        The live value (for staged registers: the committed copy).
    <name>_set : ``In(register_layout(reg))`` for W1C registers
        Bits to set (sticky).
    <name> : ``Out(register_layout(reg))``, <name>_stb : ``Out(1)``, <name>_busy : ``In(1)``
        For WP registers: the written fields for one cycle, the write pulse, a refusal.
    <name> : ``In(register_layout(reg))`` for RO registers outside the constant groups
        The value a read returns.
    """

    def __init__(self, rmap: RegisterMap, *, addr_width: int = 12) -> None:
        if rmap.size > 1 << addr_width:
            raise ValueError(f"the register map needs {rmap.size:#x} bytes, the bus decodes {1 << addr_width:#x}")
        self.rmap = rmap
        self.addr_width = addr_width
        members: dict[str, object] = {"bus": In(RegisterPortSignature(addr_width))}
        for reg in rmap:
            name, layout = port_name(reg), register_layout(reg)
            if reg.access is Access.RO:
                if reg.group not in CONSTANT_GROUPS:
                    members[name] = In(layout)
            elif reg.access is Access.RW:
                members[name] = Out(layout)
            elif reg.access is Access.W1C:
                members[name] = Out(layout)
                members[name + "_set"] = In(layout)
            elif reg.access is Access.WP:
                members[name] = Out(layout)
                members[name + "_stb"] = Out(1)
                members[name + "_busy"] = In(1)
        super().__init__(members)

    def _port(self, reg: Register, suffix: str = ""):
        return getattr(self, port_name(reg) + suffix)

    def elaborate(self, platform):  # noqa: ARG002, C901
        m = Module()
        rmap, bus = self.rmap, self.bus
        regs = list(rmap)
        # One entry per mapped word: (word address, register, word index).
        entries = [(addr // 4, reg, i) for reg in regs for i, addr in enumerate(reg.addresses)]

        # -- storage -------------------------------------------------------------------------
        live = {reg.name: Signal(reg.width, init=reg.reset, name=f"{port_name(reg)}_live")
                for reg in regs if reg.access in (Access.RW, Access.W1C)}
        shadow = {reg.name: Signal(reg.width, init=reg.reset, name=f"{port_name(reg)}_shadow")
                  for reg in regs if reg.staged}
        for reg in regs:
            if reg.name in live:
                m.d.comb += self._port(reg).as_value().eq(live[reg.name])

        # Staged values a commit would copy: are they in range?
        checks = []
        for (rname, fname), (low, high) in COMMIT_RULES.items():
            if rname not in shadow:
                continue
            f = rmap[rname].field(fname)
            value = shadow[rname][f.offset:f.offset + f.width]
            if high == "max_levels":
                high = rmap.max_levels
            checks.append(value >= low)
            if high is not None:
                checks.append(value <= high)
        staged_ok = Signal()
        m.d.comb += staged_ok.eq(Cat(*checks).all() if checks else 1)

        control = next((r for r in regs if r.name == "CONTROL"), None)
        has_commit = control is not None and any(f.name == "commit" for f in control.fields)
        errors = next((r for r in regs if r.name == "ERRORS" and r.access is Access.W1C), None)

        # -- write, cycle 0: decode into registers ---------------------------------------------
        w_go = Signal()  # cycle 1 of a write
        w_resp = Signal(2)
        w_hit = Signal(len(entries))  # one-hot entry of an accepted write
        w_rejected = Signal()  # the write was a refused commit

        hit = Signal(len(entries))
        word_mask = Signal(32)
        is_ro = Signal()
        mapped = Signal()
        busy = Signal()
        commit_bad = Signal()
        with m.Switch(bus.w_addr):
            for k, (word_addr, reg, i) in enumerate(entries):
                with m.Case(word_addr):
                    m.d.comb += [hit[k].eq(1), mapped.eq(1), word_mask.eq(reg.word_mask(i))]
                    if reg.access is Access.RO:
                        m.d.comb += is_ro.eq(1)
                    if reg.access is Access.WP:
                        m.d.comb += busy.eq(self._port(reg, "_busy"))
                    if has_commit and reg is control and i == 0:
                        f = control.field("commit")
                        m.d.comb += commit_bad.eq(bus.w_data[f.offset] & bus.w_strb[f.offset // 8] & ~staged_ok)
        written = Signal(32)
        m.d.comb += written.eq(bus.w_data & _byte_mask(bus.w_strb))
        reserved = Signal()
        m.d.comb += reserved.eq((written & ~word_mask).any())

        m.d.sync += w_go.eq(bus.w_stb)
        with m.If(bus.w_stb):
            with m.If(~mapped):
                m.d.sync += [w_resp.eq(AxiResp.DECERR), w_hit.eq(0), w_rejected.eq(0)]
            with m.Elif(is_ro | reserved | busy | commit_bad):
                m.d.sync += [w_resp.eq(AxiResp.SLVERR), w_hit.eq(0),
                             w_rejected.eq(~is_ro & ~reserved & ~busy & commit_bad)]
            with m.Else():
                m.d.sync += [w_resp.eq(AxiResp.OKAY), w_hit.eq(hit), w_rejected.eq(0)]
        m.d.comb += [bus.w_ack.eq(w_go), bus.w_resp.eq(w_resp)]

        # -- write, cycle 1: apply (request fields still held by the bus side) ---------------
        w_ok = Signal()
        m.d.comb += w_ok.eq(w_go & ~w_resp.any())  # OKAY is 0
        commit = Signal()
        w1c_clear = {name: Signal(rmap[name].width, name=f"{name.lower()}_clear")
                     for name in live if rmap[name].access is Access.W1C}
        for k, (_, reg, i) in enumerate(entries):
            base = 32 * i
            sel = w_ok & w_hit[k]
            if reg.access is Access.RW:
                store = shadow.get(reg.name, live[reg.name])
                for b in range(4):
                    lo = base + 8 * b
                    if lo >= reg.width:
                        break
                    hi = min(lo + 8, reg.width)
                    with m.If(sel & bus.w_strb[b]):
                        m.d.sync += store[lo:hi].eq(bus.w_data[8 * b:8 * b + hi - lo])
            elif reg.access is Access.W1C:
                top = min(base + 32, reg.width)
                with m.If(sel):
                    m.d.comb += w1c_clear[reg.name][base:top].eq(written[:top - base])
            elif reg.access is Access.WP:
                top = min(base + 32, reg.width)
                with m.If(sel):
                    m.d.comb += [
                        self._port(reg).as_value()[base:top].eq(written[:top - base]),
                        self._port(reg, "_stb").eq(1),
                    ]
                if has_commit and reg is control and i == 0:
                    f = control.field("commit")
                    m.d.comb += commit.eq(sel & written[f.offset])

        with m.If(commit):
            for name, value in shadow.items():
                m.d.sync += live[name].eq(value)

        # -- read, cycle 0: multiplex into a register ------------------------------------------
        r_go = Signal()
        r_data = Signal(32)
        r_resp = Signal(2)
        snapshots = {}
        snap_valid = {}
        for reg in regs:
            if reg.access is Access.RO and reg.words > 1 and reg.group not in CONSTANT_GROUPS:
                snapshots[reg.name] = Signal(reg.width - 32, name=f"{port_name(reg)}_snapshot")
                snap_valid[reg.name] = Signal(name=f"{port_name(reg)}_snapshot_valid")

        m.d.sync += r_go.eq(bus.r_stb)
        with m.If(bus.r_stb):
            with m.Switch(bus.r_addr):
                for word_addr, reg, i in entries:
                    with m.Case(word_addr):
                        m.d.sync += r_resp.eq(AxiResp.OKAY)
                        if reg.access is Access.WP:
                            value = Const(0, 32)
                        elif reg.access is Access.RO and reg.group in CONSTANT_GROUPS:
                            value = Const((reg.reset >> (32 * i)) & 0xFFFFFFFF, 32)
                        elif reg.access is Access.RO:
                            source = self._port(reg).as_value()
                            if reg.name in snapshots and i == 0:
                                m.d.sync += [snapshots[reg.name].eq(source[32:]), snap_valid[reg.name].eq(1)]
                            if reg.name in snapshots and i > 0:
                                snap = snapshots[reg.name][32 * (i - 1):32 * i]
                                value = Mux(snap_valid[reg.name], snap, source[32 * i:32 * i + 32])
                            else:
                                value = source[32 * i:32 * i + 32]
                        else:
                            value = live[reg.name][32 * i:32 * i + 32]
                        m.d.sync += r_data.eq(value)
                with m.Default():
                    m.d.sync += [r_resp.eq(AxiResp.DECERR), r_data.eq(0)]
        m.d.comb += [bus.r_ack.eq(r_go), bus.r_data.eq(r_data), bus.r_resp.eq(r_resp)]

        # -- sticky error bits -----------------------------------------------------------------
        for reg in regs:
            if reg.access is not Access.W1C:
                continue
            sets = self._port(reg, "_set").as_value()
            extra = Signal(reg.width, name=f"{port_name(reg)}_internal_set")
            if reg is errors:
                names = {f.name for f in reg.fields}
                if "bus_error" in names:
                    f = reg.field("bus_error")
                    m.d.comb += extra[f.offset].eq(w_go & (w_resp != AxiResp.OKAY)
                                                   | r_go & (r_resp != AxiResp.OKAY))
                if "commit_rejected" in names:
                    f = reg.field("commit_rejected")
                    m.d.comb += extra[f.offset].eq(w_go & w_rejected)
            mask = sum(f.mask for f in reg.fields)
            m.d.sync += live[reg.name].eq((live[reg.name] & ~w1c_clear[reg.name] | sets | extra) & mask)
        return m
