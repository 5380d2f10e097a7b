"""QuotePipeline: one market update in per clock, its quote ladder out ``LATENCY`` clocks later.

The arithmetic is docs/datapath.md's; the bit-accurate model (``model.py``) names the
same stages. Per-update stages, one register each:

====  ====================================================================================
S1    ``P = bid + ask``; crossed; ``ts + interval``; ``armed`` sampled with the update
S2    4 limb products ``P * m`` (``m``: reciprocal of ``2T`` normalized to 33 bits);
      refresh decision (:class:`~.refresh_timer.RefreshTimer`)
S3    ``S = P*m`` (one 3-input adder): ``X = qP * 2**l`` and the fraction ``F``
S4    2 limb products ``T' * X = T*qP * 2**17``; in parallel ``F`` against ``k*m``
      decides ``[rP < kbr]``, ``[rP > 0]``, ``[rP > kar]``, which pick each level's
      constant and price-domain window (``X`` against precomputed bounds) and gating
S5    ``price = T*qP -/+ K`` per level (one 3-input adder), zero where not posted;
      out-of-domain count
====  ====================================================================================

Every multiply is alone in its stage and split into 18x18 limbs (ECP5 MULT18X18D);
no stage has a multiply plus an adder or two carry chains in series.

Back-pressure: the whole pipe advances when the output register is empty or being
taken (``advance = ~o.valid | o.ready``) and stalls otherwise, so nothing is lost,
duplicated or reordered. ``i.ready`` depends on ``o.ready`` and on the configuration
ports, never on ``i.valid``.

Configuration rule: ``cfg``, ``position`` and ``live_*_qty`` are compared with
registered copies every cycle. While they differ, ``i.ready`` is low; once no update is
in flight the copies are loaded and the coefficient stage recomputes for
``CoefficientUnit.settle_cycles`` cycles (``settled`` low). So an update accepted at a
clock edge sees exactly the port values present at that edge, and every update sees one
consistent coefficient set. ``armed`` is sampled with each update as it is accepted.
Reset clears the refresh state and starts a settle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import limb_products, popcount
from .coefficient_unit import CoefficientUnit
from .coefficients import (
    DEFAULT_MAX_LEVELS,
    DEFAULT_PRICE_BITS,
    LIVE_QTY_BITS,
    POSITION_BITS,
    TS_BITS,
)
from .layouts import ladder_out_layout, market_update_layout, pipeline_config_layout
from .refresh_timer import RefreshTimer
from .widths import LIMB, DatapathWidths

__all__ = ["QuotePipeline"]


class QuotePipeline(wiring.Component):
    """The quote datapath of SPEC 3-6 for one update per clock.

    Parameters
    ----------
    max_levels : int
        Build-time maximum of ``num_levels``.
    price_bits : int
        Prices are ``1 .. 2**price_bits - 1``.

    Attributes
    ----------
    LATENCY : int
        Clocks from accepting an update to its ladder being valid on ``o`` (no stalls).
    """

    LATENCY = 5

    def __init__(
        self, max_levels: int = DEFAULT_MAX_LEVELS, price_bits: int = DEFAULT_PRICE_BITS
    ) -> None:
        self.widths = DatapathWidths(max_levels, price_bits)
        self.coefficients = CoefficientUnit(self.widths)
        super().__init__({
            "i": In(stream.Signature(market_update_layout(price_bits))),
            "o": Out(stream.Signature(ladder_out_layout(max_levels, price_bits))),
            "cfg": In(pipeline_config_layout(max_levels, price_bits)),
            "armed": In(1),
            "position": In(signed(POSITION_BITS)),
            "live_bid_qty": In(LIVE_QTY_BITS),
            "live_ask_qty": In(LIVE_QTY_BITS),
            "settled": Out(1),
        })

    @property
    def settle_cycles(self) -> int:
        """Clocks ``settled`` stays low after the inputs are taken over."""
        return self.coefficients.settle_cycles

    def elaborate(self, platform: object) -> Module:  # noqa: PLR0915 - one stage plan
        m = Module()
        w = self.widths
        pb, lv, wsum = w.price_bits, w.max_levels, w.sum_bits
        m.submodules.coefficients = co = self.coefficients
        m.submodules.refresh_timer = timer = RefreshTimer()

        # -- configuration copies and settle control ----------------------------------
        cfg_q = Signal.like(self.cfg)
        pos_q = Signal.like(self.position)
        lbq_q = Signal.like(self.live_bid_qty)
        laq_q = Signal.like(self.live_ask_qty)
        m.d.comb += [co.cfg.eq(cfg_q), co.position.eq(pos_q), co.live_bid.eq(lbq_q),
                     co.live_ask.eq(laq_q)]
        differs = ((self.cfg.as_value() != cfg_q.as_value()) | (self.position != pos_q)
                   | (self.live_bid_qty != lbq_q) | (self.live_ask_qty != laq_q))
        settle = Signal(range(co.settle_cycles + 1), init=co.settle_cycles)
        valid = [Signal(name=f"s{k}_valid") for k in range(1, 6)]
        pipe_empty = ~Cat(*valid).any()
        with m.If(differs & pipe_empty):
            m.d.sync += [cfg_q.eq(self.cfg), pos_q.eq(self.position),
                         lbq_q.eq(self.live_bid_qty), laq_q.eq(self.live_ask_qty),
                         settle.eq(co.settle_cycles)]
        with m.Elif(settle != 0):
            m.d.sync += settle.eq(settle - 1)
        m.d.comb += co.enable.eq(settle != 0)
        settled = (settle == 0) & ~differs
        advance = ~self.o.valid | self.o.ready
        m.d.comb += [self.settled.eq(settled), self.i.ready.eq(advance & settled),
                     self.o.valid.eq(valid[4])]

        # -- S1 --------------------------------------------------------------------------
        upd = self.i.payload
        s1_p = Signal(wsum)
        s1_both, s1_crossed, s1_armed = Signal(), Signal(), Signal()
        s1_ts = Signal(TS_BITS)
        s1_ts_plus = Signal(TS_BITS + 1)
        # -- S2 --------------------------------------------------------------------------
        s1_quotable = s1_both & (co.legacy | ~s1_crossed)
        s2_pp = [Signal(len(p), name=f"s2_pp{k}") for k, (p, _) in
                 enumerate(limb_products(s1_p, co.m_norm))]
        s2_quotable, s2_crossed, s2_refresh = Signal(), Signal(), Signal()
        s2_ts = Signal(TS_BITS)
        m.d.comb += [
            timer.legacy.eq(co.legacy),
            timer.interval.eq(co.interval),
            timer.eligible.eq(valid[0] & s1_armed & s1_quotable),
            timer.ts.eq(s1_ts),
            timer.ts_plus.eq(s1_ts_plus),
            timer.commit.eq(advance),
        ]
        # -- S3 --------------------------------------------------------------------------
        pp00, pp01, pp10, pp11 = s2_pp
        s_full = Cat(pp00, pp11) + (pp01 << LIMB) + (pp10 << LIMB)
        s_hi = s_full[wsum : wsum + w.scaled_bits]
        s3_x = Signal(w.scaled_bits)
        s3_f = Signal(w.frac_bits)
        s3_quotable, s3_crossed, s3_refresh = Signal(), Signal(), Signal()
        s3_ts = Signal(TS_BITS)
        # -- S4 --------------------------------------------------------------------------
        x = s3_x
        s4_lo = Signal(w.tprime_bits + LIMB)
        s4_hi = Signal(w.tprime_bits + w.scaled_bits - LIMB)
        bid_below = s3_f < co.th_bid  # [rP < kbr]
        ask_above0 = s3_f >= co.th_zero  # [rP > 0]
        ask_above = s3_f >= co.th_ask  # [rP > kar]
        s4_bid_k = [Signal(pb, name=f"s4_bid_k{i}") for i in range(lv)]
        s4_ask_k = [Signal(pb, name=f"s4_ask_k{i}") for i in range(lv)]
        s4_bid_post, s4_ask_post = Signal(lv), Signal(lv)
        s4_bid_ood, s4_ask_ood = Signal(lv), Signal(lv)
        s4_bid_count, s4_ask_count = Signal(w.level_bits), Signal(w.level_bits)
        s4_quotable, s4_crossed, s4_refresh = Signal(), Signal(), Signal()
        s4_ts = Signal(TS_BITS)

        def in_window(lo: object, hi: object) -> object:
            return (x >= lo) & (x < hi)

        # -- S5 --------------------------------------------------------------------------
        out = Signal(ladder_out_layout(lv, pb))
        m.d.comb += self.o.payload.eq(out)
        base = (s4_lo >> 17) + (s4_hi << 1)  # T*qP (legacy: P >> 1)

        with m.If(advance):
            m.d.sync += [
                # S1
                valid[0].eq(self.i.valid & self.i.ready),
                s1_p.eq(upd.bid + upd.ask),
                s1_both.eq(upd.has_bid & upd.has_ask),
                s1_crossed.eq(upd.has_bid & upd.has_ask & (upd.bid >= upd.ask)),
                s1_armed.eq(self.armed),
                s1_ts.eq(upd.ts),
                s1_ts_plus.eq(upd.ts + co.interval),
                # S2
                valid[1].eq(valid[0]),
                *(sig.eq(p) for sig, (p, _) in zip(s2_pp, limb_products(s1_p, co.m_norm), strict=True)),
                s2_quotable.eq(s1_quotable),
                s2_crossed.eq(s1_crossed),
                s2_refresh.eq(timer.fire),
                s2_ts.eq(s1_ts),
                # S3
                valid[2].eq(valid[1]),
                s3_x.eq(Cat(s_hi[:17] & ~co.low_mask, s_hi[17:])),
                s3_f.eq(Cat(s_full[:wsum], s_hi[:17] & co.low_mask)),
                s3_quotable.eq(s2_quotable),
                s3_crossed.eq(s2_crossed),
                s3_refresh.eq(s2_refresh),
                s3_ts.eq(s2_ts),
                # S4
                valid[3].eq(valid[2]),
                s4_lo.eq(co.tprime * x[:LIMB]),
                s4_hi.eq(co.tprime * x[LIMB:]),
                s4_bid_count.eq(Mux(s3_quotable, co.bid_count, 0)),
                s4_ask_count.eq(Mux(s3_quotable, co.ask_count, 0)),
                s4_quotable.eq(s3_quotable),
                s4_crossed.eq(s3_crossed),
                s4_refresh.eq(s3_refresh),
                s4_ts.eq(s3_ts),
                # S5
                valid[4].eq(valid[3]),
                out.ts.eq(s4_ts),
                out.bid_post.eq(s4_bid_post),
                out.ask_post.eq(s4_ask_post),
                out.bid_count.eq(s4_bid_count),
                out.ask_count.eq(s4_ask_count),
                out.out_of_domain.eq(popcount(Cat(s4_bid_ood, s4_ask_ood))),
                out.no_mid.eq(~s4_quotable),
                out.crossed.eq(s4_crossed),
                out.refresh.eq(s4_refresh),
            ]
            for i in range(lv):
                # S4: candidate selection per level
                bid_dom = Mux(bid_below, in_window(co.bid_lo[1][i], co.bid_hi[1][i]),
                              in_window(co.bid_lo[0][i], co.bid_hi[0][i]))
                ask_dom = Mux(ask_above, in_window(co.ask_lo[2][i], co.ask_hi[2][i]),
                              Mux(ask_above0, in_window(co.ask_lo[1][i], co.ask_hi[1][i]),
                                  in_window(co.ask_lo[0][i], co.ask_hi[0][i])))
                bid_gated = s3_quotable & co.bid_gate[i]
                ask_gated = s3_quotable & co.ask_gate[i]
                m.d.sync += [
                    s4_bid_k[i].eq(Mux(bid_below, co.bid_k[1][i], co.bid_k[0][i])),
                    s4_ask_k[i].eq(Mux(ask_above, co.ask_k[2][i],
                                       Mux(ask_above0, co.ask_k[1][i], co.ask_k[0][i]))),
                    s4_bid_post[i].eq(bid_gated & bid_dom),
                    s4_ask_post[i].eq(ask_gated & ask_dom),
                    s4_bid_ood[i].eq(bid_gated & ~bid_dom),
                    s4_ask_ood[i].eq(ask_gated & ~ask_dom),
                    # S5
                    out.bid_price[i].eq(Mux(s4_bid_post[i], base - s4_bid_k[i], 0)),
                    out.ask_price[i].eq(Mux(s4_ask_post[i], base + s4_ask_k[i], 0)),
                ]
        return m


