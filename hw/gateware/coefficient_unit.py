"""Coefficient stage: everything the per-update path needs that depends only on the
configuration, the position and the live quantities (docs/datapath.md, docs/pipeline.md).

It is a dataflow of registers, each recomputed from its inputs with at most one carry
chain or a shallow mux, and of 18x18 multiplies with their own input and output
registers (:class:`~.dsp.RegisteredMultiplier`), so it closes timing like the fast path.
After its inputs stop changing, every output is stable within
:attr:`CoefficientUnit.settle_cycles` cycles (the depth of the register graph, computed
while elaborating). The pipeline holds its inputs constant while updates are in flight
and clock-enables this unit only while it settles.

Outputs describe *candidate 0* (bid offset ``max(kbq, e)``, ask offset ``max(-kaq, e)``)
level by level, plus the thresholds on the fraction ``F`` that say how many levels
further out the chosen candidate sits: bid ``F < th_bid`` (``[rP < kbr]``) adds a level;
ask ``F >= th_zero`` (``[rP > 0]``) and ``F >= th_ask`` (``[rP > kar]``) add one level
each. Where a step cannot move the candidate (always under legacy), its threshold is
one ``F`` never meets. Per level ``j``: the price constant ``K[j]``
(bid ``= T*qP - K``, ask ``= T*qP + K``, mod ``2**pb``) and the bounds of the window of
``P = bid + ask`` for which that price is in ``1 .. 2**pb - 1``: ``LOP + j*2T <= P <
HIP + j*2T`` for bids, ``LOP - j*2T <= P < HIP - j*2T`` for asks (``qP >= k`` exactly
when ``P >= k*d``), each bound clamped to ``0 .. 2**(pb+1)``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from nanoquote.hw.contract.coefficients import (
    LIVE_QTY_BITS,
    POSITION_BITS,
    REFRESH_INTERVAL_BITS,
    SKEW_COEF_SHIFT,
)
from nanoquote.hw.contract.widths import LIMB, DatapathWidths
from nanoquote.hw.gateware.arith import limbs, popcount
from nanoquote.hw.gateware.dsp import RegisteredMultiplier
from nanoquote.hw.gateware.layouts import pipeline_config_layout

__all__ = ["CoefficientUnit"]


class _Dataflow:
    """Registers recomputed every cycle, with their depth in the register graph.

    ``enable`` clocks the multipliers' registers; with ``enable=None`` nothing is
    instantiated (used to measure the depth before elaboration).
    """

    def __init__(self, enable: Value | None = None) -> None:
        self.enable = enable
        self.sync: list = []  # Assign statements
        self.comb: list = []
        self.submodules: list[RegisteredMultiplier] = []
        self.depth: dict[int, int] = {}  # id(signal) -> depth; inputs have depth 0

    def _depth_of(self, *exprs: Value) -> int:
        deps = [s for e in exprs for s in Value.cast(e)._rhs_signals()]
        return max((self.depth.get(id(s), 0) for s in deps), default=0)

    def reg(self, name: str, shape: Shape | int, expr: Value | int) -> Signal:
        # no reset: the pipeline settles the unit after reset, recomputing every register
        sig = Signal(shape, name=name, reset_less=True)
        expr = Value.cast(expr)
        self.depth[id(sig)] = 1 + self._depth_of(expr)
        self.sync.append(sig.eq(expr))
        return sig

    def mul(self, name: str, a: Value, b: Value, signed_: bool = False) -> Value:
        """``a * b`` (each at most 18 bits) in one MULT18X18D with its input and output
        registers: two register stages."""
        a, b = Value.cast(a), Value.cast(b)
        shape = (signed if signed_ else unsigned)(len(a) + len(b))
        depth = 2 + self._depth_of(a, b)
        if self.enable is None:
            p = Signal(shape, name=name)
        else:
            unit = RegisteredMultiplier(len(a), len(b), signed_=signed_)
            self.submodules.append(unit)
            self.comb += [unit.a.eq(a), unit.b.eq(b), unit.en_in.eq(self.enable),
                          unit.en_out.eq(self.enable)]
            p = unit.p
        self.depth[id(Value.cast(p))] = depth
        return p

    def max_depth(self, sigs: list[Signal]) -> int:
        return max(self.depth.get(id(s), 0) for s in sigs)


def _staged_shift(reg, name: str, shape: Shape | int, value: Value, amount: Value,
                  left: bool) -> Signal:
    """``value << amount`` (or ``>>``) over register stages of two amount bits each (a
    4:1 multiplexer per bit and stage)."""
    def shift(v: Value, a: Value) -> Value:
        return v << a if left else v >> a

    width = len(value) + ((1 << len(amount)) - 1 if left else 0)
    stages = range(0, len(amount), 2)
    v = value
    for k in stages:
        bits = Cat(Const(0, k), amount[k : k + 2])
        last = k == stages[-1]
        v = reg(name if last else f"{name}_{k // 2}", shape if last else width, shift(v, bits))
    return v


class CoefficientUnit(wiring.Component):
    """The slow path of :class:`~.pipeline.QuotePipeline`.

    Inputs are the pipeline's registered copies of its ``cfg``, ``position`` and
    ``live_*_qty`` ports; outputs are read by the per-update stages. ``enable`` must be
    high for ``settle_cycles`` cycles after the inputs change.
    """

    def __init__(self, widths: DatapathWidths) -> None:
        self.widths = w = widths
        lv, pb = w.max_levels, w.price_bits
        super().__init__({
            "cfg": In(pipeline_config_layout(lv, pb)),
            "position": In(signed(POSITION_BITS)),
            "live_bid": In(LIVE_QTY_BITS),
            "live_ask": In(LIVE_QTY_BITS),
            "enable": In(1),
            "legacy": Out(1),
            "interval": Out(REFRESH_INTERVAL_BITS),
            "m_norm": Out(w.norm_recip_bits),
            "low_mask": Out(17),
            "tprime": Out(w.tprime_bits),
            "th_bid": Out(w.frac_threshold_bits),
            "th_ask": Out(w.frac_threshold_bits),
            "th_zero": Out(w.frac_threshold_bits),
            "bid_k": Out(data.ArrayLayout(unsigned(pb), w.bid_windows)),
            "ask_k": Out(data.ArrayLayout(unsigned(pb), w.ask_windows)),
            "bid_lo": Out(data.ArrayLayout(unsigned(w.bound_bits), w.bid_windows)),
            "bid_hi": Out(data.ArrayLayout(unsigned(w.bound_bits), w.bid_windows)),
            "ask_lo": Out(data.ArrayLayout(unsigned(w.bound_bits), w.ask_windows)),
            "ask_hi": Out(data.ArrayLayout(unsigned(w.bound_bits), w.ask_windows)),
            "bid_gate": Out(lv),
            "ask_gate": Out(lv),
            "bid_count": Out(w.level_bits),
            "ask_count": Out(w.level_bits),
            "size_block": Out(1),
        })
        #: Cycles after the last input change until every output is stable.
        self.settle_cycles: int = self._build(_Dataflow())

    def elaborate(self, platform: object) -> Module:
        m = Module()
        df = _Dataflow(self.enable)
        self._build(df)
        with m.If(self.enable):  # only while settling: saves power and simulation time
            m.d.sync += df.sync
        m.d.comb += df.comb
        for k, unit in enumerate(df.submodules):
            m.submodules[f"mul{k}"] = unit
        return m

    # The whole dataflow; returns its depth. Comments name docs/datapath.md's quantities.
    def _build(self, df: _Dataflow) -> int:  # one straight-line schedule
        w = self.widths
        pb, lv, db, wsum = w.price_bits, w.max_levels, w.domain_bits, w.sum_bits
        reg = df.reg
        cfg = self.cfg
        legacy, t, b, e = cfg.legacy, cfg.tick, cfg.base_spread, cfg.min_edge
        m_inv, size, n_lv = cfg.max_inventory, cfg.order_size, cfg.num_levels
        m_host, coef = cfg.two_tick_recip, cfg.skew_coef
        pos = self.position
        d = Cat(Const(0, 1), t)  # 2T
        df.comb += [self.legacy.eq(legacy), self.interval.eq(cfg.refresh_interval)]

        # -- step 1 ------------------------------------------------------------------
        t_r = reg("t_r", 16, t)  # T for the multipliers (the copy fans out widely)
        neg = reg("neg", 1, pos < 0)
        abs_pos = reg("abs_pos", POSITION_BITS, Mux(pos < 0, -pos, pos))
        tm1 = reg("tm1", 16, t - 1)
        xb1 = reg("xb1", signed(18), m_inv - pos)
        xa1 = reg("xa1", signed(18), m_inv + pos)
        t768 = reg("t768", 26, (t << 9) + (t << 8))
        # floor(PMAX / T) = floor((2**wsum - 2) / d), exact through the host reciprocal
        qmax = reg("qmax", pb, ((m_host << wsum) - (m_host << 1)) >> w.recip_in_shift)
        e1 = reg("e1", 10, e + 1)
        m_nz = reg("m_nz", 1, m_inv != 0)
        in_n = [reg(f"in_n{i}", 1, i < n_lv) for i in range(lv)]

        # -- step 2 ------------------------------------------------------------------
        bt = df.mul("bt", b, t_r)
        a = reg("a", 15, Mux(abs_pos < m_inv, abs_pos, m_inv))
        # l: smallest with d <= 2**l, i.e. bit_length(T - 1) + 1; 1 under legacy (d = 2)
        bitlen = Const(0, 5)
        for k in range(16):
            bitlen = Mux(tm1[k], k + 1, bitlen)
        ln = reg("ln", 5, Mux(legacy, 1, bitlen + 1))
        xb = reg("xb", signed(LIVE_QTY_BITS + 2), xb1 - self.live_bid)
        xa = reg("xa", signed(LIVE_QTY_BITS + 2), xa1 - self.live_ask)
        qmax1 = reg("qmax1", pb + 1, Mux(legacy, w.price_max, qmax) + 1)
        lg_bid = reg("lg_bid", 1, xb1 > 0)  # legacy: position < M
        lg_ask = reg("lg_ask", 1, xa1 > 0)  # legacy: position > -M
        d_eff = reg("d_eff", 18, Mux(legacy, 2, Cat(Const(0, 1), t_r)))

        # -- step 3: t = a*C in 15x18 limbs; l-dependent constants ----------------------
        t_parts = [(df.mul(f"tc{k}", a, c), off) for k, (c, off) in enumerate(limbs(coef))]
        kb_num0 = reg("kb_num0", 27, t768 + bt)
        ka_num0 = reg("ka_num0", 27, t768 - bt)
        rsh = reg("rsh", 5, 17 - ln)
        low_mask = reg("low_mask", 17, (Const(1, 18) << ln) - 1)
        # (Qm_eff + 1) * d_eff: the width of a price-domain window in P
        qd_parts = [(df.mul(f"qd{k}", q, d_eff), off) for k, (q, off) in enumerate(limbs(qmax1))]

        # -- step 4 ------------------------------------------------------------------
        # limb k sits at 18k: even limbs do not overlap each other (33 < 36 bits), nor odd
        def interleave(parity: int) -> Value:
            return Cat(*(Cat(p, Const(0, 2 * LIMB - len(p)))
                         for p, off in t_parts if (off // LIMB) % 2 == parity))

        prod = reg("prod", 88, interleave(0) + (interleave(1) << LIMB))
        m_round = reg("m_round", 17, (Const(1, 18) << rsh) - 1)  # 2**(17-l) - 1
        qd = reg("qd", db, sum(p << off for p, off in qd_parts))

        # -- step 5: z = floor(a*c), exact; normalized reciprocal (two-stage shifts) ------
        z = reg("z", w.skew_int_bits, prod[SKEW_COEF_SHIFT:])
        exact = reg("exact", 1, prod[15:SKEW_COEF_SHIFT] == 0)
        m_tmp = reg("m_tmp", w.recip_in_bits + 1, m_host + m_round)
        m_shifted = _staged_shift(reg, "m_shifted", w.norm_recip_bits, m_tmp, rsh, left=False)
        m_norm = reg("m_norm", w.norm_recip_bits, Mux(legacy, 1 << wsum, m_shifted))
        t_shifted = _staged_shift(reg, "t_shifted", w.tprime_bits, t_r, rsh, left=True)
        tprime = reg("tprime", w.tprime_bits, Mux(legacy, 1 << 16, t_shifted))

        # -- step 6: ceil(w), floor(w) (exchange); skew ticks (legacy) --------------------
        zw = w.skew_int_bits + 2
        z_ext = Cat(z, Const(0, 1)).as_signed()
        zs = Mux(neg, ~z_ext, z_ext)  # -z - 1 or z, so that -z - [not exact] is one adder
        ceil_w = reg("ceil_w", signed(zw), zs + Mux(neg, 1, ~exact))
        floor_w = reg("floor_w", signed(zw), zs + Mux(neg, exact, 0))
        z17 = z[:17]
        skew_ticks = reg("skew_ticks", signed(18), Mux(neg, -z17, z17))

        # -- step 7: Kb + 768T, Ka + 768T (non-negative); legacy skew in raw units -------
        kb_num = reg("kb_num", w.div_bits, kb_num0 + ceil_w)
        ka_num = reg("ka_num", w.div_bits, ka_num0 + floor_w)
        skew_raw = df.mul("skew_raw", skew_ticks, Cat(t_r, Const(0, 1)).as_signed(), signed_=True)

        # -- steps 8..17: restoring division by d, one quotient bit per stage -----------
        def divide(tag: str, num: Signal) -> tuple[Signal, Signal]:
            rem, quot = num, Const(0, 1)
            for j in reversed(range(w.div_quot_bits)):
                trial = rem - (d << j)
                ok = trial >= 0
                rem = reg(f"{tag}_r{j}", w.div_bits, Mux(ok, trial, rem))
                quot = reg(f"{tag}_q{j}", w.div_quot_bits, Cat(ok, quot))
            return quot, rem

        qb, rb = divide("kb", kb_num)
        qa, ra = divide("ka", ka_num)

        # -- step 18: kbq, kaq and neighbours; legacy offsets ----------------------------
        ow = w.offset_bits
        off = w.div_offset
        kbq = reg("kbq", signed(12), qb - off)
        kbq1 = reg("kbq1", signed(12), qb - (off - 1))
        nkaq = reg("nkaq", signed(12), off - qa)
        nkaq1 = reg("nkaq1", signed(12), (off + 1) - qa)
        kbr = reg("kbr", 17, rb)
        kar1 = reg("kar1", 18, ra + 1)
        half = bt >> 1
        lb0 = reg("lb0", signed(ow), half + skew_raw)
        la0 = reg("la0", signed(ow), half - skew_raw)

        # -- step 19: candidate offsets (ticks); k*m products for the rP comparisons -----
        e_s = Cat(e, Const(0, 1)).as_signed()
        e1 = Cat(e1, Const(0, 1)).as_signed()
        def staged_max(tag: str, a: Value, b: Value) -> Signal:
            """``max(a, b)``: the comparison, then the selection, one stage each."""
            a_q, b_q = reg(f"{tag}_a", signed(12), a), reg(f"{tag}_b", signed(12), b)
            return reg(tag, signed(12), Mux(reg(f"{tag}_gt", 1, a > b), a_q, b_q))

        ob0 = staged_max("ob0", kbq, e_s)
        ob1 = staged_max("ob1", kbq1, e_s)
        oa0 = staged_max("oa0", nkaq, e_s)
        oa1 = staged_max("oa1", nkaq, e1)
        oa2 = staged_max("oa2", nkaq1, e1)

        def product(tag: str, k_val: Signal) -> Signal:
            parts = [(df.mul(f"{tag}_p{j}", k_val, mm), o) for j, (mm, o) in enumerate(limbs(m_norm))]
            return reg(tag, w.frac_threshold_bits, sum(p << o for p, o in parts))

        th_bid = product("th_bid", kbr)
        th_ask = product("th_ask", kar1)
        th_zero = reg("th_zero", w.frac_threshold_bits, m_norm)  # own copy: m_norm feeds DSPs

        # -- step 20: candidate 0 offsets, candidate steps (each 0 or 1 level) -----------
        bid_shift = reg("bid_shift", 1, ~legacy & (ob1 != ob0))
        ask_shift1 = reg("ask_shift1", 1, ~legacy & (oa1 != oa0))
        ask_shift2 = reg("ask_shift2", 1, ~legacy & (oa2 != oa1))
        off_b = reg("off_b", signed(ow), Mux(legacy, lb0, ob0))
        off_a = reg("off_a", signed(ow), Mux(legacy, la0, oa0))

        # -- step 21: K0 = T*offset and offset*d (exchange: offsets are 0..2047) ---------
        kp_b = df.mul("kp_b", t_r, off_b[:11])
        kp_a = df.mul("kp_a", t_r, off_a[:11])
        od_b = df.mul("od_b", d_eff, off_b[:11])
        od_a = df.mul("od_a", d_eff, off_a[:11])

        # -- step 22: level-0 constants and windows: qP in [lo, hi] <=> P in [lo*d, (hi+1)*d)
        k0_b = reg("k0_b", pb, Mux(legacy, off_b, kp_b))
        k0_a = reg("k0_a", pb, Mux(legacy, off_a, kp_a))
        odb = Mux(legacy, off_b << 1, od_b).as_signed()
        oda = Mux(legacy, off_a << 1, od_a).as_signed()
        # bid: qP in [off+1, off+Qm]; ask: qP in [1-off, Qm-off]
        lop0_b = reg("lop0_b", signed(db), odb + d_eff)
        hip0_b = reg("hip0_b", signed(db), odb + qd)
        lop0_a = reg("lop0_a", signed(db), d_eff - oda)
        hip0_a = reg("hip0_a", signed(db), qd - oda)

        # -- level chains: level j from level j-1, one stage per level -------------------
        def chain(tag: str, first: Signal, step: Value, shape: Shape | int, n: int) -> list[Signal]:
            out = [first]
            for j in range(1, n):
                out.append(reg(f"{tag}_{j}", shape, out[-1] + step))
            return out

        # one level further: K by T, windows by 2T (a tick of qP, or T raw units of P/2):
        # window j is LOP0 + j*2T <= P < HIP0 + j*2T (bids; asks minus)
        nb, na = w.bid_windows, w.ask_windows
        bid_k = chain("bk", k0_b, t, pb, nb)
        ask_k = chain("ak", k0_a, t, pb, na)
        steps = chain("lstep", reg("lstep_0", w.step_bits, 0), d, w.step_bits, na)

        # -- window bounds on P, one register each, clamped to 0 .. 2**wsum (P < 2**wsum - 1,
        # so clamping changes no comparison): the per-update stage compares P with each
        # bound directly, one carry chain per bound and nothing after it
        span = 1 << wsum

        def bounds(tag: str, base: Signal, n: int, sign: int) -> list[Signal]:
            out = []
            for j in range(n):
                raw = reg(f"{tag}_raw{j}", signed(db + 1), base + steps[j] if sign > 0 else base - steps[j])
                negative, beyond = raw[-1], raw[wsum:-1].any()  # raw < 0, raw >= span
                out.append(reg(f"{tag}{j}", w.bound_bits,
                               Mux(negative, 0, Mux(beyond, span, raw[:w.bound_bits]))))
            return out

        win = {"bid_lo": bounds("wlo_b", lop0_b, nb, 1), "bid_hi": bounds("whi_b", hip0_b, nb, 1),
               "ask_lo": bounds("wlo_a", lop0_a, na, -1), "ask_hi": bounds("whi_a", hip0_a, na, -1)}

        # -- gating: thermometer of (i+1)*size, no division -------------------------------
        sizes = chain("size", reg("size_0", 23, size), size, 23, lv)
        bid_gate, ask_gate = [], []
        for i in range(lv):
            gb = Mux(legacy, lg_bid, reg(f"fits_b{i}", 1, xb >= sizes[i]))
            ga = Mux(legacy, lg_ask, reg(f"fits_a{i}", 1, xa >= sizes[i]))
            bid_gate.append(reg(f"gate_b{i}", 1, m_nz & in_n[i] & gb))
            ask_gate.append(reg(f"gate_a{i}", 1, m_nz & in_n[i] & ga))
        gate_b = Cat(*bid_gate)
        gate_a = Cat(*ask_gate)
        bid_count = reg("bid_count", w.level_bits, popcount(gate_b))
        ask_count = reg("ask_count", w.level_bits, popcount(gate_a))

        # -- thresholds that are never met where a candidate step is off (F < 2**frac_bits),
        # so the per-update comparisons need no AND after them
        never = 1 << w.frac_bits
        fb = w.frac_threshold_bits
        th_bid_eff = reg("th_bid_eff", fb, Mux(bid_shift, th_bid, 0))
        th_zero_eff = reg("th_zero_eff", fb, Mux(ask_shift1, th_zero, never))
        th_ask_eff = reg("th_ask_eff", fb, Mux(ask_shift2, th_ask, never))

        # -- pre-trade risk, config-only: the maximum order quantity (0: off) -----------------
        moq = self.cfg.max_order_qty
        size_block = reg("size_block", 1, (moq != 0) & (self.cfg.order_size > moq))

        outputs: list[Signal] = [m_norm, low_mask, tprime, th_bid_eff, th_ask_eff, th_zero_eff,
                                 bid_count, ask_count, *bid_gate, *ask_gate, size_block]
        df.comb += [
            self.m_norm.eq(m_norm), self.low_mask.eq(low_mask), self.tprime.eq(tprime),
            self.th_bid.eq(th_bid_eff), self.th_ask.eq(th_ask_eff), self.th_zero.eq(th_zero_eff),
            self.bid_gate.eq(gate_b), self.ask_gate.eq(gate_a),
            self.bid_count.eq(bid_count), self.ask_count.eq(ask_count),
            self.size_block.eq(size_block),
        ]
        arrays = [(self.bid_k, bid_k), (self.ask_k, ask_k),
                  *((getattr(self, name), levels) for name, levels in win.items())]
        for port, levels in arrays:
            for j, sig in enumerate(levels):
                df.comb.append(port[j].eq(sig))
                outputs.append(sig)
        return df.max_depth(outputs)
