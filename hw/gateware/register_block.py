"""The register block, generated from the register map (``nanoquote.hw.contract.register_map``).

No address or bit position is written here: storage, decode, access checks and ports
all come from :func:`~nanoquote.hw.contract.register_map.register_map`. Semantics (the conventions
of ``nanoquote.hw.contract.register_map`` and the behavioural model ``nanoquote.sim.device.register_file``):

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

Timing (for 200 MHz on ECP5; every stage is a few LUTs deep and starts at flip-flops):

* write, four cycles from the strobe to the acknowledge. A: the word address (a
  register of the AXI slave) is decoded into registers: a one-hot bank and a one-hot
  word-in-bank predecode, the word's field mask and access flags. B: the entry select
  (bank AND word) and the verdict (reserved bits, refusal of a bad commit). C: the
  response and the write-pulse outputs, registered. D: the write is applied (enables
  fan out from registered selects) and acknowledged.
* read, acknowledge two cycles after the strobe. A: the response and, per 8-word bank,
  a private copy of the word select (so no address bit fans out to every bank). B: each
  bank's 8:1 multiplexer into a register. C: the bank (16:1 for the default map),
  straight into the AXI slave's data register.

Nothing in this block is on the pipeline's per-update path.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from nanoquote.hw.contract.register_map import Access, Register, RegisterMap
from nanoquote.hw.gateware.axil import AxiResp, RegisterPortSignature

__all__ = ["register_layout", "port_name", "RegisterBlock"]

def register_layout(reg: Register) -> data.FlexibleLayout:
    """The fields of ``reg`` at their bit offsets (signed fields signed)."""
    return data.FlexibleLayout(reg.width, {
        f.name: data.Field(signed(f.width) if f.signed else unsigned(f.width), f.offset)
        for f in reg.fields
    })


def port_name(reg: Register) -> str:
    """Port of ``reg`` on :class:`RegisterBlock` (``LADDER_BID0`` -> ``ladder_bid0``)."""
    return reg.name.lower()


#: The write decode works in banks of this many words (the word address's low bits).
WORD_BITS = 4
BANK_WORDS = 1 << WORD_BITS
#: The read multiplexer's first stage selects among this many words (an 8:1 multiplexer
#: is one LUT4 level plus PFUMX and L6MUX on ECP5).
READ_WORD_BITS = 3
READ_BANK_WORDS = 1 << READ_WORD_BITS


def _byte_mask(strb: Signal) -> Signal:
    return Cat(*(strb[i].replicate(8) for i in range(4)))


def _mux_tree(values: list, sel) -> object:
    """``values[sel]`` as a balanced tree of 2:1 multiplexers (LUT4 + PFUMX + L6MUX on ECP5)."""
    bits = max(1, (len(values) - 1).bit_length())
    level = list(values) + [Const(0, 32)] * ((1 << bits) - len(values))
    for bit in range(bits):
        level = [Mux(sel[bit], level[2 * j + 1], level[2 * j]) for j in range(len(level) // 2)]
    return level[0]


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
        Requests from :class:`~nanoquote.hw.gateware.axil.AxiLiteRegisterSlave`.
    <name> : ``Out(register_layout(reg))`` for RW and W1C registers
        The live value (for staged registers: the committed copy).
    <name>_set : ``In(register_layout(reg))`` for W1C registers
        Bits to set (sticky).
    <name> : ``Out(register_layout(reg))``, <name>_stb : ``Out(1)``, <name>_busy : ``In(1)``
        For WP registers: the written fields for one cycle, the write pulse, a refusal.
    <name> : ``In(register_layout(reg))`` for RO registers outside the constant groups
        The value a read returns.
    committed : ``Out(1)``
        High in the first cycle the live copies of the staged registers hold a commit's
        values (the only cycles in which they change).
    """

    def __init__(self, rmap: RegisterMap, *, addr_width: int = 12) -> None:
        if rmap.size > 1 << addr_width:
            raise ValueError(f"the register map needs {rmap.size:#x} bytes, the bus decodes {1 << addr_width:#x}")
        self.rmap = rmap
        self.addr_width = addr_width
        members: dict[str, object] = {"bus": In(RegisterPortSignature(addr_width)),
                                      "committed": Out(1)}
        for reg in rmap:
            name, layout = port_name(reg), register_layout(reg)
            if reg.access is Access.RO:
                if reg.sourced:
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

    def elaborate(self, platform):
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
        # (bounds the field's width already implies need no comparator)
        checks = []
        for reg in regs:
            for f in reg.fields if reg.staged else ():
                if f.commit_range is None:
                    continue
                low, high = f.commit_range
                value = shadow[reg.name][f.offset:f.offset + f.width]
                if low > (-(1 << (f.width - 1)) if f.signed else 0):
                    checks.append(value >= low)
                if high < ((1 << (f.width - 1)) - 1 if f.signed else (1 << f.width) - 1):
                    checks.append(value <= high)
        staged_ok = Signal()
        m.d.comb += staged_ok.eq(Cat(*checks).all() if checks else 1)

        control = next((r for r in regs if r.name == "CONTROL"), None)
        commit_field = control.field("commit") if control is not None and any(
            f.name == "commit" for f in control.fields) else None
        errors = next((r for r in regs if r.name == "ERRORS" and r.access is Access.W1C), None)
        staged_ok_q = Signal()  # shadows only change at stage D, at least 4 cycles before a C
        m.d.sync += staged_ok_q.eq(staged_ok)

        # -- write, stage A (the strobe): decode the address into registers ----------------------
        # Word address = bank (high bits) and word in bank (low WORD_BITS); the one-hot entry
        # select is the AND of two small one-hot predecodes, so no address bit fans out to
        # every register.
        n_banks = max(word_addr for word_addr, _, _ in entries) // BANK_WORDS + 1
        go_b, go_c, go_d = Signal(), Signal(), Signal()
        m.d.sync += [go_b.eq(bus.w_stb), go_c.eq(go_b), go_d.eq(go_c)]
        bank_oh = Signal(n_banks)
        word_oh = Signal(BANK_WORDS)
        mask_q = Signal(32)
        written_q = Signal(32)
        mapped_q, ro_q, busy_q, commit_word_q = Signal(), Signal(), Signal(), Signal()
        with m.If(bus.w_stb):
            m.d.sync += [
                bank_oh.eq(Cat(bus.w_addr[WORD_BITS:] == b for b in range(n_banks))),
                word_oh.eq(Cat(bus.w_addr[:WORD_BITS] == w for w in range(BANK_WORDS))),
                written_q.eq(bus.w_data & _byte_mask(bus.w_strb)),
                mapped_q.eq(0), ro_q.eq(0), busy_q.eq(0), commit_word_q.eq(0), mask_q.eq(0),
            ]
            with m.Switch(bus.w_addr):
                for word_addr, reg, i in entries:
                    with m.Case(word_addr):
                        m.d.sync += [mapped_q.eq(1), mask_q.eq(reg.word_mask(i))]
                        if reg.access is Access.RO:
                            m.d.sync += ro_q.eq(1)
                        if reg.access is Access.WP:
                            m.d.sync += busy_q.eq(self._port(reg, "_busy"))
                        if commit_field is not None and reg is control and i == 0:
                            m.d.sync += commit_word_q.eq(1)

        # -- stage B: entry select, the verdict -----------------------------------------------------
        # The verdict is decided here and registered, so stage C's write pulses (which fan
        # out to every pulse bit) depend on two registers only.
        hit_q = Signal(len(entries))  # one-hot entry of the write (whatever its outcome)
        reserved = (written_q & ~mask_q).any()
        commit_req = commit_word_q & written_q[commit_field.offset] if commit_field is not None else 0
        bad_commit = commit_req & ~staged_ok_q
        accept = mapped_q & ~ro_q & ~reserved & ~busy_q & ~bad_commit
        accept_q = Signal()  # the write is accepted
        bad_commit_q = Signal()  # refused only because its commit is out of range
        fire_c = Signal()  # stage C of an accepted write
        m.d.sync += fire_c.eq(go_b & accept)
        with m.If(go_b):
            m.d.sync += [
                hit_q.eq(Cat(bank_oh[wa // BANK_WORDS] & word_oh[wa % BANK_WORDS] for wa, _, _ in entries)),
                accept_q.eq(accept),
                bad_commit_q.eq(mapped_q & ~ro_q & ~reserved & ~busy_q & bad_commit),
            ]

        # -- stage C: the response; write pulses and the commit are registered here --------------
        w_resp = Signal(2)
        ok_q = Signal()
        rejected_q = Signal()
        with m.If(go_c):
            m.d.sync += [
                w_resp.eq(Mux(~mapped_q, AxiResp.DECERR, Mux(accept_q, AxiResp.OKAY, AxiResp.SLVERR))),
                ok_q.eq(accept_q),
                rejected_q.eq(bad_commit_q),
            ]
        commit = Signal()  # high during stage D of an accepted commit
        for reg in regs:
            if reg.access is not Access.WP:
                continue
            value = self._port(reg).as_value()
            stb = self._port(reg, "_stb")
            pulse = Signal(reg.width, name=f"{port_name(reg)}_pulse")
            hits = [hit_q[k] for k, (_, r, _) in enumerate(entries) if r is reg]  # one per word
            m.d.sync += [
                stb.eq(fire_c & Cat(hits).any()),
                pulse.eq(Cat(Mux(fire_c & hit, written_q, 0) for hit in hits)[:reg.width]),
            ]
            m.d.comb += value.eq(pulse)
            if reg is control and commit_field is not None:
                m.d.comb += commit.eq(pulse[commit_field.offset])
        m.d.comb += [bus.w_ack.eq(go_d), bus.w_resp.eq(w_resp)]

        # -- stage D: apply (the bus side still holds w_data and w_strb) -------------------------
        w1c_clear = {name: Signal(rmap[name].width, name=f"{name.lower()}_clear")
                     for name in live if rmap[name].access is Access.W1C}
        for k, (_, reg, i) in enumerate(entries):
            base = 32 * i
            sel = go_d & ok_q & hit_q[k]
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
                    m.d.comb += w1c_clear[reg.name][base:top].eq(written_q[:top - base])
        with m.If(commit):
            for name, value in shadow.items():
                m.d.sync += live[name].eq(value)
        m.d.sync += self.committed.eq(commit)

        # -- read, stage A: decode the address into registers -----------------------------------------
        snapshots = {}
        snap_valid = {}
        for reg in regs:
            if reg.sourced and reg.words > 1:
                snapshots[reg.name] = Signal(reg.width - 32, name=f"{port_name(reg)}_snapshot")
                snap_valid[reg.name] = Signal(name=f"{port_name(reg)}_snapshot_valid")

        def word_value(reg: Register, i: int):
            if reg.access is Access.WP:
                return Const(0, 32)
            if reg.constant:
                return Const((reg.reset >> (32 * i)) & 0xFFFFFFFF, 32)
            if reg.access is Access.RO:
                source = self._port(reg).as_value()
                if reg.name in snapshots and i > 0:
                    snap = snapshots[reg.name][32 * (i - 1):32 * i]
                    return Mux(snap_valid[reg.name], snap, source[32 * i:32 * i + 32])
                return source[32 * i:32 * i + 32]
            return live[reg.name][32 * i:32 * i + 32]

        by_word = {word_addr: (reg, i) for word_addr, reg, i in entries}
        r_banks = max(by_word) // READ_BANK_WORDS + 1
        go_rb, go_rc = Signal(), Signal()
        m.d.sync += [go_rb.eq(bus.r_stb), go_rc.eq(go_rb)]
        r_resp = Signal(2)
        r_bank = Signal(range(r_banks))
        # Each bank keeps its own copy of the word select, loaded only when it is addressed
        # (so synthesis cannot merge the copies): no address bit drives every bank.
        bank_sel = [Signal(READ_WORD_BITS, name=f"read_sel{b}") for b in range(r_banks)]
        bank_words = [Signal(32, name=f"read_bank{b}") for b in range(r_banks)]
        snap_req = {name: Signal(name=f"{name.lower()}_snapshot_req") for name in snapshots}
        with m.If(bus.r_stb):
            m.d.sync += [r_bank.eq(bus.r_addr[READ_WORD_BITS:]), r_resp.eq(AxiResp.DECERR)]
            for b, sel in enumerate(bank_sel):
                with m.If(bus.r_addr[READ_WORD_BITS:] == b):
                    m.d.sync += sel.eq(bus.r_addr[:READ_WORD_BITS])
            with m.Switch(bus.r_addr):
                with m.Case(*sorted(by_word)):
                    m.d.sync += r_resp.eq(AxiResp.OKAY)
        for name, req in snap_req.items():
            m.d.sync += req.eq(bus.r_stb & (bus.r_addr == rmap[name].address // 4))

        # -- read, stage B: one word per bank into registers (the snapshot of a wide value is
        # taken in the same cycle as its low word) ------------------------------------------------
        with m.If(go_rb):
            for b, (bank, sel) in enumerate(zip(bank_words, bank_sel, strict=True)):
                words = [word_value(*by_word[wa]) if wa in by_word else Const(0, 32)
                         for wa in range(b * READ_BANK_WORDS, (b + 1) * READ_BANK_WORDS)]
                m.d.sync += bank.eq(_mux_tree(words, sel))
            for name, req in snap_req.items():
                with m.If(req):
                    m.d.sync += [snapshots[name].eq(self._port(rmap[name]).as_value()[32:]),
                                 snap_valid[name].eq(1)]

        # -- read, stage C: the bank, straight into the bus side's data register -----------------
        m.d.comb += [
            bus.r_ack.eq(go_rc),
            bus.r_resp.eq(r_resp),
            bus.r_data.eq(Mux(r_resp == AxiResp.OKAY, _mux_tree(bank_words, r_bank), 0)),
        ]

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
                    m.d.comb += extra[f.offset].eq(go_d & (w_resp != AxiResp.OKAY)
                                                   | go_rc & (r_resp != AxiResp.OKAY))
                if "commit_rejected" in names:
                    f = reg.field("commit_rejected")
                    m.d.comb += extra[f.offset].eq(go_d & rejected_q)
            mask = sum(f.mask for f in reg.fields)
            m.d.sync += live[reg.name].eq((live[reg.name] & ~w1c_clear[reg.name] | sets | extra) & mask)
        return m
