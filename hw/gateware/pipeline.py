"""QuotePipeline: one market update in per clock, its quote ladder out ``LATENCY`` clocks later.

The arithmetic is docs/datapath.md's, realised as docs/pipeline.md describes; the
bit-accurate model (``model.py``) names the same stages. Per-update stages, one
register each:

====  ====================================================================================
S1    ``P = bid + ask``; crossed; ``armed``, taken with the update
S2    4 limb products ``P * m`` (``m``: reciprocal of ``2T`` normalized to 33 bits);
      refresh decision (:class:`~.refresh_timer.RefreshTimer`); every price-domain
      window as ``LOP <= P < HIP`` (``qP >= k`` exactly when ``P >= k * 2T``)
S3    ``S = P*m`` (one 3-input adder): ``X = qP * 2**l`` and the fraction ``F``;
      posted masks and out-of-domain counts for every candidate
S4    ``T' * X = T*qP * 2**17`` as a pair of limb products, one pair per side and per
      group of ``LEVELS_PER_PRODUCT`` = 4 levels (each pair feeds only its group's four
      S5 adders; 8 levels: 4 pairs, 8 multipliers); ``F`` against ``k*m`` decides
      ``[rP < kbr]``, ``[rP > 0]``, ``[rP > kar]``: how many levels out each side's
      candidate sits (registered, so no selection follows a carry chain)
S5    per level, ``K`` of the chosen candidate (selected by that shift from registers),
      then ``price = T*qP -/+ K`` (3-input adders), zeroed where not posted (S4's masks
      already carry the pre-trade size limit, a coefficient-stage bit)
====  ====================================================================================

Every multiply is alone in its stage and split into 18x18 limbs (ECP5 MULT18X18D);
no stage has a multiply plus an adder, two carry chains in series, or a route both into
and out of a DSP.

Back-pressure: stages S1..S5 advance when the output register is empty or being taken
(``advance = ~o.valid | o.ready``) and stall otherwise, so nothing is lost, duplicated
or reordered. ``i.ready`` depends on ``o.ready``, registers and ``config_changed``,
never on ``i.valid``.

Configuration rule: no update is accepted while a change of ``cfg``, ``position`` or
``live_*_qty`` is pending. When the ports change, ``i.ready`` drops (in that very
cycle) until the updates already accepted have left S5, the coefficient stage has
taken the new values and settled (``settle_cycles`` cycles). So an
update accepted at a clock edge sees exactly the port values present at that edge, and
every update sees one consistent coefficient set. ``settled`` is low from the cycle
after a change until it is in use. Reset clears the refresh state and starts a settle;
``soft_reset`` (a one-cycle pulse) clears the refresh state only, leaving updates in
flight and the configuration as they are.

With ``kill_input=True`` (the top level) the ``kill`` input clears the output register's
levels in every cycle it is high and flags the ladder ``killed`` (``deadman`` from
``kill_deadman``); see docs/spec.md §8.2.

Whether the ports changed: with ``config_strobe=True`` the ``config_changed`` input says
so (high in every cycle whose port values differ from the previous cycle's, e.g. the
cycle after a register commit; the ports are zero after reset unless it is high in the
first cycle). A strobe with unchanged values costs one settle and is otherwise harmless.
Without it (the default, for a free-standing pipeline) the pipeline compares the ports
with their values one cycle earlier: a comparator as wide as the configuration, which a
register-driven top level avoids by the strobe (and through which ``i.ready`` then
depends on the ports).
"""

from __future__ import annotations

from functools import partial

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from nanoquote.hw.contract.coefficients import (
    DEFAULT_MAX_LEVELS,
    DEFAULT_PRICE_BITS,
    LIVE_QTY_BITS,
    POSITION_BITS,
    TS_BITS,
)
from nanoquote.hw.contract.widths import LIMB, DatapathWidths
from nanoquote.hw.gateware.arith import limbs, popcount
from nanoquote.hw.gateware.coefficient_unit import CoefficientUnit
from nanoquote.hw.gateware.dsp import RegisteredMultiplier
from nanoquote.hw.gateware.floorplan import dsp_site
from nanoquote.hw.gateware.layouts import (
    ladder_out_layout,
    market_update_layout,
    pipeline_config_layout,
)
from nanoquote.hw.gateware.refresh_timer import RefreshTimer

__all__ = ["QuotePipeline"]

#: A per-update register: meaningful only with its stage's ``valid``, so it needs no
#: reset (which keeps the reset net's fanout to the control registers).
Datapath = partial(Signal, reset_less=True)


class QuotePipeline(wiring.Component):
    """The quote datapath of docs/spec.md §3-§6 for one update per clock.

    Parameters
    ----------
    max_levels : int
        Build-time maximum of ``num_levels``.
    price_bits : int
        Prices are ``1 .. 2**price_bits - 1``.
    config_strobe : bool
        Add the ``config_changed`` input instead of comparing the configuration ports
        with their previous values (see the module docstring).

    Attributes
    ----------
    LATENCY : int
        Clocks from accepting an update to its ladder being valid on ``o`` (no stalls).
    """

    LATENCY = 5
    #: levels whose prices share one pair of ``T' * X`` multipliers (per side)
    LEVELS_PER_PRODUCT = 4

    def __init__(
        self, max_levels: int = DEFAULT_MAX_LEVELS, price_bits: int = DEFAULT_PRICE_BITS,
        *, config_strobe: bool = False, kill_input: bool = False,
    ) -> None:
        self.widths = DatapathWidths(max_levels, price_bits)
        self.coefficients = CoefficientUnit(self.widths)
        self.config_strobe = config_strobe
        self.kill_input = kill_input
        strobe = {"config_changed": In(1)} if config_strobe else {}
        if kill_input:
            strobe |= {"kill": In(1), "kill_deadman": In(1)}
        super().__init__({
            "i": In(stream.Signature(market_update_layout(price_bits))),
            "o": Out(stream.Signature(ladder_out_layout(max_levels, price_bits))),
            "cfg": In(pipeline_config_layout(max_levels, price_bits)),
            "armed": In(1),
            "soft_reset": In(1),
            "position": In(signed(POSITION_BITS)),
            "live_bid_qty": In(LIVE_QTY_BITS),
            "live_ask_qty": In(LIVE_QTY_BITS),
            "settled": Out(1),
            **strobe,
        })

    @property
    def settle_cycles(self) -> int:
        """Clocks ``settled`` stays low after the inputs are taken over: the coefficient
        stage's, plus one for the multipliers' registered coefficient operands."""
        return self.coefficients.settle_cycles + 1

    def elaborate(self, platform: object) -> Module:  # one stage plan
        m = Module()
        w = self.widths
        pb, lv, wsum = w.price_bits, w.max_levels, w.sum_bits
        m.submodules.coefficients = co = self.coefficients
        m.submodules.refresh_timer = timer = RefreshTimer()

        def spread(name: str, value: Value, copies: int) -> tuple[list[Value], list]:
            """``copies`` registers of ``value`` that synthesis keeps apart, so that each
            drives a share of the loads: copy ``k`` stores ``value ^ (k mod 2**n)`` and has
            all-zero or all-one initial value by ``k >> n`` (registers differing in their
            input or their initial value are not merged). Returns the decoded copies and
            the register assignments (for the caller's stage)."""
            n = len(value)
            copies = min(copies, 1 << (n + 1))  # as many as can be told apart
            decoded, assigns = [], []
            for k in range(copies):
                pattern = k % (1 << n)
                reg = Datapath(n, name=f"{name}_{k}", init=(1 << n) - 1 if k >> n else 0)
                assigns.append(reg.eq(value ^ pattern))
                decoded.append(reg ^ pattern)
            return decoded, assigns

        # -- control: coefficient copies, settle --------------------------------------------
        # No update is accepted while a change of the ports is pending: every update sees
        # the ports as they were at the clock edge that accepted it, and the coefficients
        # made from them (older updates leave before the copies change).
        ports = Cat(self.cfg.as_value(), self.position, self.live_bid_qty, self.live_ask_qty)
        copies = Signal(len(ports))  # the coefficient stage's inputs
        if self.config_strobe:
            changed = self.config_changed
        else:
            ports_before = Signal(len(ports))
            m.d.sync += ports_before.eq(ports)
            changed = ports != ports_before
        dirty = Signal()  # the ports changed after the copies were taken
        m.d.comb += Cat(co.cfg.as_value(), co.position, co.live_bid, co.live_ask).eq(copies)
        settle = Signal(range(self.settle_cycles + 1), init=self.settle_cycles)
        settling = Signal(init=1)  # settle != 0, registered
        hold = Signal(init=1)  # no update is accepted: dirty or settling, registered
        valid = [Signal(name=f"s{k}_valid") for k in range(1, 6)]
        # every older update has left S5: take the ports. ``empty`` is a cycle old, which
        # is exact: no update is accepted from the cycle the ports change.
        empty = Signal()
        m.d.sync += empty.eq(~Cat(*valid).any())
        load = dirty & empty
        dirty_next = changed | (dirty & ~load)
        m.d.sync += [dirty.eq(dirty_next), hold.eq(dirty_next | load | (settle > 1))]
        with m.If(load):
            m.d.sync += [copies.eq(ports), settle.eq(self.settle_cycles), settling.eq(1)]
        with m.Elif(settling):
            m.d.sync += [settle.eq(settle - 1), settling.eq(settle > 1)]
        # every stage advances when the output register is empty or being taken
        advance = ~valid[4] | self.o.ready
        # ``o.valid`` and ``i.ready`` come from an inverted twin of S5's valid (synthesis keeps
        # both): the stage enables, which fan out to every datapath register, are not on the
        # paths the ports feed outside the pipeline.
        s5_empty = Signal(init=1, name="s5_empty")  # always ~valid[4]
        accept = (s5_empty | self.o.ready) & ~hold & ~changed
        m.d.comb += [co.enable.eq(settling), self.settled.eq(~hold), self.i.ready.eq(accept),
                     self.o.valid.eq(~s5_empty)]

        # -- S1 --------------------------------------------------------------------------
        upd = self.i.payload
        p_in = upd.bid + upd.ask
        s1_p = Datapath(wsum)
        s1_both, s1_crossed, s1_armed = Datapath(), Datapath(), Datapath()
        s1_ts = Datapath(TS_BITS)
        # the refresh timer's own copy of ``ts`` (a different initial value: not merged)
        s1_ts_timer = Datapath(TS_BITS, name="s1_ts_timer", init=(1 << TS_BITS) - 1)
        with m.If(advance):
            m.d.sync += [
                valid[0].eq(self.i.valid & accept),
                s1_p.eq(p_in),
                s1_both.eq(upd.has_bid & upd.has_ask),
                s1_crossed.eq(upd.has_bid & upd.has_ask & (upd.bid >= upd.ask)),
                s1_armed.eq(self.armed),
                s1_ts.eq(upd.ts),
                s1_ts_timer.eq(upd.ts),
            ]
        s1_quotable = s1_both & (co.legacy | ~s1_crossed)

        # -- S2 --------------------------------------------------------------------------
        # P * m in 4 MULT18X18D that multiply S1's P (a fabric register: the input
        # multiplexer and adder in front of it leave no time for a route into a DSP) into
        # their output registers (S2). m is registered in the DSP (it is stable while
        # updates are in flight; the settle count includes that register).
        s2_pp = []
        for (pa, _), (mb, _) in ((x, y) for x in limbs(s1_p) for y in limbs(co.m_norm)):
            name = f"s2_mul{len(s2_pp)}"
            unit = RegisteredMultiplier(len(pa), len(mb), input_register=False, b_register=True,
                                        site=dsp_site(platform, name))
            m.submodules[name] = unit
            m.d.comb += [unit.a.eq(pa), unit.b.eq(mb), unit.en_out.eq(advance)]
            s2_pp.append(unit.p)
        s2_quotable, s2_crossed = Datapath(), Datapath()
        s2_ts = Datapath(TS_BITS)
        # P against every window's bounds, one carry chain each; S3 combines them. The ask
        # side compares its own copy of P (S1's register would fan out to 38 comparators
        # and the multipliers); the copy's initial value, which nothing reads, differs
        # from S1's in every bit, so synthesis does not merge the two registers.
        s1_p_ask = Datapath(wsum, name="s1_p_ask", init=(1 << wsum) - 1)
        with m.If(advance):
            m.d.sync += s1_p_ask.eq(p_in)
        s2_ge_b, s2_lt_b = Datapath(w.bid_windows), Datapath(w.bid_windows)
        s2_ge_a, s2_lt_a = Datapath(w.ask_windows), Datapath(w.ask_windows)

        s2_gate_b, s2_gate_a = Datapath(lv), Datapath(lv)
        s2_count_b, s2_count_a = Datapath(w.level_bits), Datapath(w.level_bits)
        m.d.comb += [
            timer.legacy.eq(co.legacy),
            timer.interval.eq(co.interval),
            timer.settling.eq(settling),
            timer.eligible.eq(valid[0] & s1_armed & s1_quotable),
            timer.ts.eq(s1_ts_timer),
            timer.commit.eq(advance),
            timer.clear.eq(self.soft_reset),
        ]

        # -- S3 --------------------------------------------------------------------------
        pp00, pp01, pp10, pp11 = s2_pp
        s_full = Cat(pp00, pp11) + (pp01 << LIMB) + (pp10 << LIMB)
        s_hi = s_full[wsum : wsum + w.scaled_bits]
        s3_f = Datapath(w.frac_bits)
        s3_x = Datapath(w.scaled_bits)
        s3_quotable, s3_crossed, s3_refresh = Datapath(), Datapath(), Datapath()
        s3_ts = Datapath(TS_BITS)
        s3_count_b, s3_count_a = Datapath(w.level_bits), Datapath(w.level_bits)
        # per shift k (levels the chosen candidate sits out): level i is gated and its
        # window i + k holds (posted) or not (out of domain); window j holds when
        # LOP+j*2T <= P < HIP+j*2T (bids; asks: LOP-j*2T <= P < HIP-j*2T)
        dom_b, dom_a = s2_ge_b & s2_lt_b, s2_ge_a & s2_lt_a
        s3_post_b = [Datapath(lv, name=f"s3_post_b{k}") for k in range(2)]
        s3_post_a = [Datapath(lv, name=f"s3_post_a{k}") for k in range(3)]
        s3_out_b = [Datapath(lv, name=f"s3_out_b{k}") for k in range(2)]
        s3_out_a = [Datapath(lv, name=f"s3_out_a{k}") for k in range(3)]

        # -- S4 --------------------------------------------------------------------------
        # T' * X in MULT18X18D that multiply S3's X (a fabric register: the S3 adder
        # leaves no time for a second route into a DSP) into their output registers (S4).
        # One pair per side and group of LEVELS_PER_PRODUCT levels, so that each product
        # feeds only the few adders next to it.
        x = Cat(s_hi[:17] & ~co.low_mask, s_hi[17:])
        groups = -(-lv // self.LEVELS_PER_PRODUCT)
        s4_products: dict[str, list[list[Value]]] = {"bid": [], "ask": []}
        for side, per_group in s4_products.items():
            for g in range(groups):
                products = []
                for xa, _ in limbs(s3_x):
                    name = f"s4_{side}{g}_mul{len(products)}"
                    unit = RegisteredMultiplier(len(xa), w.tprime_bits, input_register=False,
                                                b_register=True, site=dsp_site(platform, name))
                    m.submodules[name] = unit
                    m.d.comb += [unit.a.eq(xa), unit.b.eq(co.tprime), unit.en_out.eq(advance)]
                    products.append(unit.p)
                per_group.append(products)
        # the level constants, registered again next to the S5 adders
        s4_bid_k = [Datapath(pb, name=f"s4_bid_k{j}") for j in range(w.bid_windows)]
        s4_ask_k = [Datapath(pb, name=f"s4_ask_k{j}") for j in range(w.ask_windows)]
        # The candidate steps, registered right after the comparisons: the bid side sits a
        # level further out when F < th_bid; the ask side one level per threshold met.
        # Each group of levels (the adders around one pair of products) has comparators of
        # its own, on its own copy of the thresholds, and a copy of their results for each
        # of its levels: every level's K selection reads a register next to its adder, and
        # no register or comparator feeds two groups (placed apart, around their DSPs).
        def group_copy(value: Value, name: str) -> Value:
            """``value`` (a coefficient, stable while updates flow) registered for one group;
            the copies' initial values differ, so synthesis does not merge them."""
            reg = Datapath(len(value), name=name, init=int(name.rpartition("_g")[2]))
            m.d.sync += reg.eq(value)
            return reg

        shift_b_level: list[Value] = []  # per level: its register copy of the bid step
        above_a_level: list[Value] = []  # per level: its copy of the ask thresholds met
        shift_regs: list = []
        for g in range(groups):
            levels = range(g * self.LEVELS_PER_PRODUCT, min(lv, (g + 1) * self.LEVELS_PER_PRODUCT))
            th_bid, th_zero, th_ask = (group_copy(th, f"{name}_g{g}") for th, name in
                                       ((co.th_bid, "th_bid"), (co.th_zero, "th_zero"), (co.th_ask, "th_ask")))
            below_b = s3_f < th_bid
            above_a = [s3_f >= th_zero, s3_f >= th_ask]
            copies_b, regs_b = spread(f"s4_shift_b{g}", below_b, len(levels))
            copies_a, regs_a = spread(f"s4_above_a{g}", Cat(*above_a), len(levels))
            shift_b_level += [copies_b[k % len(copies_b)] for k in range(len(levels))]
            above_a_level += [copies_a[k % len(copies_a)] for k in range(len(levels))]
            shift_regs += regs_b + regs_a

        def ask_shift(above: Value) -> Value:  # the ask shift: the thresholds met, 0..2
            return Cat(above[0] ^ above[1], above[0] & above[1])

        s4_shift_b = shift_b_level[0]
        s4_shift_a = ask_shift(above_a_level[0])
        # per shift s: posted mask, out-of-domain count
        s4_post_b = [Datapath(lv, name=f"s4_post_b{k}") for k in range(2)]
        s4_post_a = [Datapath(lv, name=f"s4_post_a{k}") for k in range(3)]
        s4_ood_b = [Datapath(w.level_bits, name=f"s4_ood_b{k}") for k in range(2)]
        s4_ood_a = [Datapath(w.level_bits, name=f"s4_ood_a{k}") for k in range(3)]
        s4_count_b, s4_count_a = Datapath(w.level_bits), Datapath(w.level_bits)
        s4_quotable, s4_crossed, s4_refresh = Datapath(), Datapath(), Datapath()
        s4_ts = Datapath(TS_BITS)

        # -- S5 --------------------------------------------------------------------------
        out = Datapath(ladder_out_layout(lv, pb))
        m.d.comb += self.o.payload.eq(out)
        # Level i of the chosen candidate is level i + shift of candidate 0: its K is
        # selected by the registered shift while the products travel from the DSPs, so
        # each price is one 3-input adder, T*qP -/+ K (T*qP = T' * X / 2**17 = (lo >> 17) +
        # 2*hi), zeroed where not posted by the flip-flops' synchronous reset.
        def pick3(sel: Value, options: list) -> Value:  # shift 0, 1 or 2
            return Mux(sel[1], options[2], Mux(sel[0], options[1], options[0]))

        def t_qp(side: str, level: int) -> tuple[Value, Value]:  # T*qP = lo >> 17 + 2*hi
            lo, hi = s4_products[side][level // self.LEVELS_PER_PRODUCT]
            return lo >> 17, hi << 1

        k_b = [Mux(shift_b_level[i], s4_bid_k[i + 1], s4_bid_k[i]) for i in range(lv)]
        k_a = [pick3(ask_shift(above_a_level[i]), s4_ask_k[i : i + 3]) for i in range(lv)]
        price_b = [((t_qp("bid", i)[0] - k) + t_qp("bid", i)[1])[:pb] for i, k in enumerate(k_b)]
        price_a = [((t_qp("ask", i)[0] + k) + t_qp("ask", i)[1])[:pb] for i, k in enumerate(k_a)]
        # each level's posted bit from its own copy of the shift, as its K
        post_b = Cat(*(Mux(shift_b_level[i], s4_post_b[1][i], s4_post_b[0][i]) for i in range(lv)))
        post_a = Cat(*(pick3(ask_shift(above_a_level[i]), [p[i] for p in s4_post_a]) for i in range(lv)))

        with m.If(advance):
            m.d.sync += [
                # S2
                valid[1].eq(valid[0]),
                s2_quotable.eq(s1_quotable),
                s2_crossed.eq(s1_crossed),
                s2_ts.eq(s1_ts),
                s2_ge_b.eq(Cat(*(s1_p >= co.bid_lo[j] for j in range(w.bid_windows)))),
                s2_lt_b.eq(Cat(*(s1_p < co.bid_hi[j] for j in range(w.bid_windows)))),
                s2_ge_a.eq(Cat(*(s1_p_ask >= co.ask_lo[j] for j in range(w.ask_windows)))),
                s2_lt_a.eq(Cat(*(s1_p_ask < co.ask_hi[j] for j in range(w.ask_windows)))),
                s2_gate_b.eq(Mux(s1_quotable, co.bid_gate, 0)),
                s2_gate_a.eq(Mux(s1_quotable, co.ask_gate, 0)),
                s2_count_b.eq(Mux(s1_quotable, co.bid_count, 0)),
                s2_count_a.eq(Mux(s1_quotable, co.ask_count, 0)),
                # S3
                valid[2].eq(valid[1]),
                s3_f.eq(Cat(s_full[:wsum], s_hi[:17] & co.low_mask)),
                s3_x.eq(x),
                s3_quotable.eq(s2_quotable),
                s3_crossed.eq(s2_crossed),
                s3_refresh.eq(timer.fired),
                s3_ts.eq(s2_ts),
                s3_count_b.eq(s2_count_b),
                s3_count_a.eq(s2_count_a),
                *(s3_post_b[k].eq(s2_gate_b & dom_b[k : k + lv]) for k in range(2)),
                *(s3_post_a[k].eq(s2_gate_a & dom_a[k : k + lv]) for k in range(3)),
                *(s3_out_b[k].eq(s2_gate_b & ~dom_b[k : k + lv]) for k in range(2)),
                *(s3_out_a[k].eq(s2_gate_a & ~dom_a[k : k + lv]) for k in range(3)),
                # S4
                valid[3].eq(valid[2]),
                *(k.eq(co.bid_k[j]) for j, k in enumerate(s4_bid_k)),
                *(k.eq(co.ask_k[j]) for j, k in enumerate(s4_ask_k)),
                *shift_regs,
                # the maximum order quantity (config-only) blocks every posted level
                *(s4_post_b[k].eq(s3_post_b[k] & ~co.size_block.replicate(lv)) for k in range(2)),
                *(s4_post_a[k].eq(s3_post_a[k] & ~co.size_block.replicate(lv)) for k in range(3)),
                *(s4_ood_b[k].eq(popcount(s3_out_b[k])) for k in range(2)),
                *(s4_ood_a[k].eq(popcount(s3_out_a[k])) for k in range(3)),
                s4_count_b.eq(s3_count_b),
                s4_count_a.eq(s3_count_a),
                s4_quotable.eq(s3_quotable),
                s4_crossed.eq(s3_crossed),
                s4_refresh.eq(s3_refresh),
                s4_ts.eq(s3_ts),
                # S5
                valid[4].eq(valid[3]),
                s5_empty.eq(~valid[3]),
                out.ts.eq(s4_ts),
                out.bid_post.eq(post_b),
                out.ask_post.eq(post_a),
                out.bid_count.eq(s4_count_b),
                out.ask_count.eq(s4_count_a),
                out.out_of_domain.eq(Mux(s4_shift_b, s4_ood_b[1], s4_ood_b[0])
                                     + pick3(s4_shift_a, s4_ood_a)),
                out.no_mid.eq(~s4_quotable),
                out.crossed.eq(s4_crossed),
                out.refresh.eq(s4_refresh),
                out.size_blocked.eq(co.size_block & s4_quotable),
            ]
            if not self.kill_input:
                for i in range(lv):
                    m.d.sync += [out.bid_price[i].eq(Mux(post_b[i], price_b[i], 0)),
                                 out.ask_price[i].eq(Mux(post_a[i], price_a[i], 0))]
        if self.kill_input:
            # the kill switch (docs/spec.md §8.2): while ``kill`` is high the output register
            # is cleared of every level, advancing or stalled, so from the clock after it
            # rises no ladder leaves with a level posted. A price is cleared by its
            # flip-flops' synchronous reset (over the enable), ``kill`` or an unposted level
            # taken in, so the adder's result goes straight to the data input.
            kill = self.kill
            for i in range(lv):
                for price, posted, value in ((out.bid_price[i], post_b[i], price_b[i]),
                                             (out.ask_price[i], post_a[i], price_a[i])):
                    with m.If(kill | (advance & ~posted)):
                        m.d.sync += price.eq(0)
                    with m.Elif(advance):
                        m.d.sync += price.eq(value)
            with m.If(kill):
                m.d.sync += [out.bid_post.eq(0), out.ask_post.eq(0), out.killed.eq(1),
                             out.deadman.eq(self.kill_deadman)]
            with m.Elif(advance):
                m.d.sync += [out.killed.eq(0), out.deadman.eq(0)]
        return m
