"""Coefficient stage: everything the per-update path needs that depends only on the
configuration, the position and the live quantities (docs/datapath.md).

It is a free-running dataflow of registers, each recomputed every cycle from its inputs
with at most one carry chain or one 18x18 multiply, so it closes timing like the fast
path. After its inputs stop changing, every output is stable within
:attr:`CoefficientUnit.settle_cycles` cycles (the depth of the register graph, computed
while elaborating). The pipeline holds its inputs constant while updates are in flight
and waits that long after changing them.

Per candidate ``c`` (bid: ``[rP < kbr]``; ask: ``[rP > 0] + [rP > kar]``) and level ``i``
it produces the price constant ``K[c][i]`` (mod ``2**pb``; bid ``= base - K``, ask
``= base + K``) and the window ``LO[c][i] <= X < HI[c][i]`` on ``X = qP * 2**l`` for
which that level's price lies in ``1 .. 2**pb - 1``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .arith import limb_products, max_of, popcount
from .coefficients import LIVE_QTY_BITS, POSITION_BITS, REFRESH_INTERVAL_BITS, SKEW_COEF_SHIFT
from .layouts import pipeline_config_layout
from .widths import LIMB, DatapathWidths

__all__ = ["CoefficientUnit"]


class _Dataflow:
    """Registers recomputed every cycle, with their depth in the register graph."""

    def __init__(self) -> None:
        self.sync: list = []  # Assign statements
        self.comb: list = []
        self.depth: dict[int, int] = {}  # id(signal) -> depth; inputs have depth 0

    def reg(self, name: str, shape: Shape | int, expr: Value | int) -> Signal:
        sig = Signal(shape, name=name)
        expr = Value.cast(expr)
        deps = expr._rhs_signals()  # noqa: SLF001 - amaranth 0.5 has no public equivalent
        self.depth[id(sig)] = 1 + max((self.depth.get(id(s), 0) for s in deps), default=0)
        self.sync.append(sig.eq(expr))
        return sig

    def max_depth(self, sigs: list[Signal]) -> int:
        return max(self.depth.get(id(s), 0) for s in sigs)


class CoefficientUnit(wiring.Component):
    """The slow path of :class:`~.pipeline.QuotePipeline`.

    Inputs are the pipeline's registered copies of its ``cfg``, ``position`` and
    ``live_*_qty`` ports; outputs are read by the per-update stages. ``enable`` must be
    high for ``settle_cycles`` cycles after the inputs change.
    """

    def __init__(self, widths: DatapathWidths) -> None:
        self.widths = w = widths
        lv, pb, db = w.max_levels, w.price_bits, w.domain_bits
        price_k = data.ArrayLayout(unsigned(pb), lv)
        window = data.ArrayLayout(signed(db), lv)
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
            "bid_k": Out(data.ArrayLayout(price_k, 2)),
            "ask_k": Out(data.ArrayLayout(price_k, 3)),
            "bid_lo": Out(data.ArrayLayout(window, 2)),
            "bid_hi": Out(data.ArrayLayout(window, 2)),
            "ask_lo": Out(data.ArrayLayout(window, 3)),
            "ask_hi": Out(data.ArrayLayout(window, 3)),
            "bid_gate": Out(lv),
            "ask_gate": Out(lv),
            "bid_count": Out(w.level_bits),
            "ask_count": Out(w.level_bits),
        })
        #: Cycles after the last input change until every output is stable (set on elaborate).
        self.settle_cycles: int = self._count_settle_cycles()

    def _count_settle_cycles(self) -> int:
        df = _Dataflow()
        return self._build(df)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        df = _Dataflow()
        self._build(df)
        with m.If(self.enable):  # only while settling: saves power and simulation time
            m.d.sync += df.sync
        m.d.comb += df.comb
        return m

    # The whole dataflow; returns its depth. Comments name docs/datapath.md's quantities.
    def _build(self, df: _Dataflow) -> int:  # noqa: PLR0915 - one straight-line schedule
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
        neg = reg("neg", 1, pos < 0)
        abs_pos = reg("abs_pos", POSITION_BITS, Mux(pos < 0, -pos, pos))
        bt = reg("bt", 24, b * t)
        tm1 = reg("tm1", 16, t - 1)
        xb1 = reg("xb1", signed(18), m_inv - pos)
        xa1 = reg("xa1", signed(18), m_inv + pos)
        t768 = reg("t768", 26, (t << 9) + (t << 8))
        # floor(PMAX / T) = floor((2**wsum - 2) / d), exact through the host reciprocal
        qmax = reg("qmax", pb, ((m_host << wsum) - (m_host << 1)) >> w.recip_in_shift)
        lg_bid = reg("lg_bid", 1, pos < m_inv)
        lg_ask = reg("lg_ask", 1, pos > -m_inv)

        # -- step 2 ------------------------------------------------------------------
        a = reg("a", 15, Mux(abs_pos < m_inv, abs_pos, m_inv))
        # l: smallest with d <= 2**l, i.e. bit_length(T - 1) + 1; 1 under legacy (d = 2)
        bitlen = Const(0, 5)
        for k in range(16):
            bitlen = Mux(tm1[k], k + 1, bitlen)
        ln = reg("ln", 5, Mux(legacy, 1, bitlen + 1))
        xb = reg("xb", signed(LIVE_QTY_BITS + 2), xb1 - self.live_bid)
        xa = reg("xa", signed(LIVE_QTY_BITS + 2), xa1 - self.live_ask)
        kb_num0 = reg("kb_num0", 27, t768 + bt)
        ka_num0 = reg("ka_num0", 27, t768 - bt)
        qmax1 = reg("qmax1", pb + 1, Mux(legacy, w.price_max, qmax) + 1)

        # -- step 3: t = a*C in 15x18 limbs; rounding for the normalized reciprocal -----
        t_parts = [(reg(f"tc{k}", 33, p), off) for k, (p, off) in enumerate(limb_products(a, coef))]
        rsh = reg("rsh", 5, 17 - ln)
        m_round = reg("m_round", 17, Const(0x1FFFF, 17) >> ln)  # 2**(17-l) - 1
        pow2l = reg("pow2l", 18, Const(1, 18) << ln)
        low_mask = reg("low_mask", 17, (Const(1, 18) << ln) - 1)

        # -- step 4 ------------------------------------------------------------------
        # limb k sits at 18k: even limbs do not overlap each other (33 < 36 bits), nor odd
        def interleave(parity: int) -> Value:
            return Cat(*(Cat(p, Const(0, 2 * LIMB - len(p)))
                         for p, off in t_parts if (off // LIMB) % 2 == parity))

        prod = reg("prod", 88, interleave(0) + (interleave(1) << LIMB))
        m_tmp = reg("m_tmp", w.recip_in_bits + 1, m_host + m_round)

        # -- step 5: z = floor(a*c), exact; normalized reciprocal, T' --------------------
        z = reg("z", w.skew_int_bits, prod[SKEW_COEF_SHIFT:])
        exact = reg("exact", 1, prod[15:SKEW_COEF_SHIFT] == 0)
        m_norm = reg("m_norm", w.norm_recip_bits, Mux(legacy, 1 << wsum, m_tmp >> rsh))
        tprime = reg("tprime", w.tprime_bits, Mux(legacy, 1 << 16, t << rsh))

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
        skew_raw = reg("skew_raw", signed(35), skew_ticks * t)

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
        e1 = Cat(e + 1, Const(0, 1)).as_signed()
        ob = [reg(f"ob{k}", signed(12), max_of(x, e_s)) for k, x in enumerate((kbq, kbq1))]
        oa = [reg(f"oa{k}", signed(12), max_of(x, y))
              for k, (x, y) in enumerate(((nkaq, e_s), (nkaq, e1), (nkaq1, e1)))]

        def product(tag: str, k_val: Signal) -> Signal:
            parts = [(reg(f"{tag}_p{j}", 36, p), o) for j, (p, o) in
                     enumerate(limb_products(k_val, m_norm))]
            return reg(tag, w.frac_threshold_bits, sum(p << o for p, o in parts))

        th_bid = product("th_bid", kbr)
        th_ask = product("th_ask", kar1)

        # -- step 20: per-candidate offsets; threshold step ------------------------------
        offs_b = [reg(f"off_b{k}", signed(ow), Mux(legacy, lb0, ob[k])) for k in range(2)]
        offs_a = [reg(f"off_a{k}", signed(ow), Mux(legacy, la0, oa[k])) for k in range(3)]
        dthr = reg("dthr", 18, Mux(legacy, d, pow2l))

        # -- step 21: K0 = T*offset (exchange), window bounds before scaling by 2**l -----
        def k_prod(tag: str, o: Signal) -> Signal:
            return reg(tag, pb + 12, t * o[:11])

        kp_b = [k_prod(f"kp_b{k}", o) for k, o in enumerate(offs_b)]
        kp_a = [k_prod(f"kp_a{k}", o) for k, o in enumerate(offs_a)]
        sw = db
        lo_b = [reg(f"lopre_b{k}", signed(sw), o + 1) for k, o in enumerate(offs_b)]
        hi_b = [reg(f"hipre_b{k}", signed(sw), o + qmax1) for k, o in enumerate(offs_b)]
        lo_a = [reg(f"lopre_a{k}", signed(sw), 1 - o) for k, o in enumerate(offs_a)]
        hi_a = [reg(f"hipre_a{k}", signed(sw), qmax1 - o) for k, o in enumerate(offs_a)]

        # -- step 22: level-0 constants --------------------------------------------------
        k0_b = [reg(f"k0_b{k}", pb, Mux(legacy, o, kp)) for k, (o, kp) in enumerate(zip(offs_b, kp_b))]
        k0_a = [reg(f"k0_a{k}", pb, Mux(legacy, o, kp)) for k, (o, kp) in enumerate(zip(offs_a, kp_a))]

        def scaled(tag: str, v: Signal) -> Signal:
            return reg(tag, signed(db), v << ln)

        lo0_b = [scaled(f"lo0_b{k}", v) for k, v in enumerate(lo_b)]
        hi0_b = [scaled(f"hi0_b{k}", v) for k, v in enumerate(hi_b)]
        lo0_a = [scaled(f"lo0_a{k}", v) for k, v in enumerate(lo_a)]
        hi0_a = [scaled(f"hi0_a{k}", v) for k, v in enumerate(hi_a)]

        # -- level chains: level i from level i-1, one stage per level -------------------
        def chain(tag: str, first: Signal, step: Value, shape: Shape | int) -> list[Signal]:
            out = [first]
            for i in range(1, lv):
                out.append(reg(f"{tag}_{i}", shape, out[-1] + step))
            return out

        neg_dthr = -dthr
        bid_k = [chain(f"bk{k}", k0, t, pb) for k, k0 in enumerate(k0_b)]
        ask_k = [chain(f"ak{k}", k0, t, pb) for k, k0 in enumerate(k0_a)]
        bid_lo = [chain(f"blo{k}", v, dthr, signed(db)) for k, v in enumerate(lo0_b)]
        bid_hi = [chain(f"bhi{k}", v, dthr, signed(db)) for k, v in enumerate(hi0_b)]
        ask_lo = [chain(f"alo{k}", v, neg_dthr, signed(db)) for k, v in enumerate(lo0_a)]
        ask_hi = [chain(f"ahi{k}", v, neg_dthr, signed(db)) for k, v in enumerate(hi0_a)]

        # -- gating: thermometer of (i+1)*size, no division -------------------------------
        sizes = chain("size", reg("size_0", 23, size), size, 23)
        m_nz = m_inv != 0
        bid_gate, ask_gate = [], []
        for i in range(lv):
            in_n = i < n_lv
            gb = Mux(legacy, lg_bid, xb >= sizes[i])
            ga = Mux(legacy, lg_ask, xa >= sizes[i])
            bid_gate.append(reg(f"gate_b{i}", 1, m_nz & in_n & gb))
            ask_gate.append(reg(f"gate_a{i}", 1, m_nz & in_n & ga))
        gate_b = Cat(*bid_gate)
        gate_a = Cat(*ask_gate)
        bid_count = reg("bid_count", w.level_bits, popcount(gate_b))
        ask_count = reg("ask_count", w.level_bits, popcount(gate_a))

        outputs: list[Signal] = [m_norm, low_mask, tprime, th_bid, th_ask, bid_count, ask_count]
        df.comb += [
            self.m_norm.eq(m_norm),
            self.low_mask.eq(low_mask),
            self.tprime.eq(tprime),
            self.th_bid.eq(th_bid),
            self.th_ask.eq(th_ask),
            self.th_zero.eq(m_norm),
            self.bid_gate.eq(gate_b),
            self.ask_gate.eq(gate_a),
            self.bid_count.eq(bid_count),
            self.ask_count.eq(ask_count),
        ]
        outputs += bid_gate + ask_gate
        for port, arrays in ((self.bid_k, bid_k), (self.ask_k, ask_k), (self.bid_lo, bid_lo),
                             (self.bid_hi, bid_hi), (self.ask_lo, ask_lo), (self.ask_hi, ask_hi)):
            for c, levels in enumerate(arrays):
                for i, sig in enumerate(levels):
                    df.comb.append(port[c][i].eq(sig))
                    outputs.append(sig)
        return df.max_depth(outputs)
