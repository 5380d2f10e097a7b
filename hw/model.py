"""Bit-accurate model of :class:`~.pipeline.QuotePipeline`, vectorized with numpy.

It computes what every pipeline register holds, with the gateware's widths, so that a
mismatch can be traced to a stage: :func:`coefficient_stage` mirrors the slow path
(``coefficient_unit``) step by step on Python integers, :func:`ladder` the five
per-update stages on numpy arrays of updates, and :class:`RefreshModel` the refresh
timer's state. The conformance tests check it against the golden model
(``nanoquote.host.strategy.quoting``) and the RTL against it.

Per-update stages (S1..S5, one register each; see ``pipeline.py``):

S1  ``P = bid + ask``, ``crossed``, ``quotable``
S2  four 18x18 limb products of ``P * m`` (``m``: normalized reciprocal of ``d = 2T``);
    price-domain windows as ``LOP <= P < HIP``
S3  ``S = P*m``; ``X = qP * 2**l`` (``S >> (pb+1)``, low ``l`` bits cleared) and the
    fraction ``F = S mod 2**(pb+1+l)``; posted masks and out-of-domain counts
S4  ``rP`` comparisons as ``F`` against ``k*m`` give each side's level shift (which
    candidate); two limb products of ``T' * X = T*qP * 2**17``
S5  ``base = T*qP`` (legacy: ``P >> 1``) and ``price = base -/+ K`` per level, masked.

The vectorized functions keep per-update quantities as arrays and solve the per-level
window comparisons for the level index (an interval), which is the same predicate as
comparing level by level; prices are kept as the level-0 value plus the posted mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from nanoquote.hw.contract.coefficients import PipelineParams
from nanoquote.hw.contract.widths import LIMB, DatapathWidths

__all__ = [
    "Coefficients",
    "coefficient_stage",
    "restoring_divide",
    "LadderArrays",
    "ladder",
    "RefreshModel",
]

_M18 = (1 << LIMB) - 1


def _wrap(value: int, bits: int) -> int:
    """Two's complement wrap of ``value`` to a signed ``bits``-bit register."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def restoring_divide(dividend: int, divisor: int, quot_bits: int) -> tuple[int, int]:
    """The slow path's bit-serial restoring division (exact when ``dividend < divisor << quot_bits``)."""
    rem, quot = dividend, 0
    for j in reversed(range(quot_bits)):
        trial = rem - (divisor << j)
        bit = trial >= 0
        quot = (quot << 1) | bit
        if bit:
            rem = trial
    return quot, rem


@dataclass(frozen=True)
class Coefficients:
    """Everything the per-update path reads from the coefficient stage.

    Candidate 0 is the bid offset ``max(kbq, e)`` and the ask offset ``max(-kaq, e)``; the
    other candidates are the same ladder moved out by whole levels: ``candidate_steps``
    = (bid ``[rP < kbr]``, ask ``[rP > 0]``, ask ``[rP > kar]``) levels, each 0 or 1.
    Level ``j`` of candidate 0: ``K = K0 + j*T`` (mod ``2**pb``; bid ``T*qP - K``, ask
    ``T*qP + K``) and the window ``LOP0 + j*step <= P < HIP0 + j*step`` with ``step = +2T``
    for bids and ``-2T`` for asks.
    """

    legacy: int
    m_norm: int
    low_mask: int
    tprime: int
    th_bid: int
    th_ask: int
    th_zero: int
    tick: int
    candidate_steps: tuple[int, int, int]
    bid_k0: int
    ask_k0: int
    bid_lop0: int
    bid_hip0: int
    ask_lop0: int
    ask_hip0: int
    bid_count: int
    ask_count: int
    refresh_interval: int
    #: the maximum order quantity blocks every level (docs/spec.md §8; a config-only bit)
    size_block: int
    widths: DatapathWidths = field(repr=False)

    @property
    def bid_gate(self) -> int:
        return (1 << self.bid_count) - 1

    @property
    def ask_gate(self) -> int:
        return (1 << self.ask_count) - 1


def coefficient_stage(
    params: PipelineParams,
    position: int,
    live_bid_qty: int,
    live_ask_qty: int,
    widths: DatapathWidths | None = None,
) -> Coefficients:
    """The slow path, step for step as ``coefficient_unit`` computes it (same widths)."""
    w = widths or DatapathWidths()
    wsum = w.sum_bits
    legacy = params.legacy
    t, b, e, m_inv = params.tick, params.base_spread, params.min_edge, params.max_inventory
    size, n = params.order_size, min(params.num_levels, w.max_levels)
    m_host = params.two_tick_recip & ((1 << w.recip_in_bits) - 1)
    coef = params.skew_coef
    d = 2 * t

    # step 1
    neg = position < 0
    abs_pos = -position if neg else position
    bt = b * t
    xb1, xa1 = m_inv - position, m_inv + position
    t768 = 768 * t
    qmax = ((m_host << wsum) - (m_host << 1)) >> w.recip_in_shift  # floor(PMAX / T)
    # step 2
    a = min(abs_pos, m_inv)
    ln = 1 if legacy else (t - 1).bit_length() + 1  # smallest l with d <= 2**l
    xb, xa = xb1 - live_bid_qty, xa1 - live_ask_qty
    kb_num0, ka_num0 = t768 + bt, t768 - bt
    half = bt >> 1
    qmax_eff = w.price_max if legacy else qmax
    # steps 3-5: t = a*C in limbs, z = floor(a*c), exact; normalized reciprocal
    prod = a * coef
    z = (prod >> 47) & ((1 << w.skew_int_bits) - 1)
    exact = (prod & ((1 << 47) - 1)) < (1 << 15)
    m_norm = (1 << wsum) if legacy else (m_host + (1 << (17 - ln)) - 1) >> (17 - ln)
    tprime = (1 << 16) if legacy else t << (17 - ln)
    # step 6: ceil(w), floor(w) (exchange), skew ticks (legacy)
    ceil_w = -z if neg else z + (not exact)
    floor_w = -z - (not exact) if neg else z
    z_leg = z & ((1 << 17) - 1)
    skew_ticks = -z_leg if neg else z_leg
    # step 7: Kb + 768T, Ka + 768T; legacy skew in raw units
    kb_num = (kb_num0 + ceil_w) & ((1 << w.div_bits) - 1)
    ka_num = (ka_num0 + floor_w) & ((1 << w.div_bits) - 1)
    skew_raw = skew_ticks * t
    # steps 8..: restoring divisions by d
    qb, rb = restoring_divide(kb_num, d, w.div_quot_bits)
    qa, ra = restoring_divide(ka_num, d, w.div_quot_bits)
    kbq, kbq1 = qb - w.div_offset, qb - w.div_offset + 1
    nkaq, nkaq1 = w.div_offset - qa, w.div_offset + 1 - qa
    # offsets per candidate: max(kbq + [rP<kbr], e), max([rP>kar] - kaq, [rP>0] + e)
    if legacy:
        off_b, off_a = half + skew_raw, half - skew_raw  # raw units; candidates coincide
        steps = (0, 0, 0)
    else:
        ob = (max(kbq, e), max(kbq1, e))
        oa = (max(nkaq, e), max(nkaq, e + 1), max(nkaq1, e + 1))
        off_b, off_a = ob[0], oa[0]
        steps = (int(ob[1] != ob[0]), int(oa[1] != oa[0]), int(oa[2] != oa[1]))
    th_bid, th_ask, th_zero = rb * m_norm, (ra + 1) * m_norm, m_norm
    d_eff = 2 if legacy else d
    db = w.domain_bits
    # level-0 constant and window: qP in [lo, hi] <=> P in [lo*d_eff, (hi+1)*d_eff)
    qd = (qmax_eff + 1) * d_eff
    if legacy:
        k0_b, k0_a = off_b & w.price_max, off_a & w.price_max
        od_b, od_a = off_b << 1, off_a << 1
    else:
        k0_b, k0_a = (t * off_b) & w.price_max, (t * off_a) & w.price_max
        od_b, od_a = d * off_b, d * off_a
    bid_lop0, bid_hip0 = _wrap(od_b + d_eff, db), _wrap(od_b + qd, db)  # qP in [off+1, off+Qm]
    ask_lop0, ask_hip0 = _wrap(d_eff - od_a, db), _wrap(qd - od_a, db)  # qP in [1-off, Qm-off]

    # gating: a thermometer of i*size comparisons, no division
    if m_inv == 0:
        bid_count = ask_count = 0
    elif legacy:
        bid_count = n if position < m_inv else 0
        ask_count = n if position > -m_inv else 0
    else:
        bid_count = sum(1 for j in range(1, n + 1) if xb >= j * size)
        ask_count = sum(1 for j in range(1, n + 1) if xa >= j * size)

    return Coefficients(
        legacy=legacy,
        m_norm=m_norm,
        low_mask=(1 << ln) - 1,
        tprime=tprime,
        th_bid=th_bid,
        th_ask=th_ask,
        th_zero=th_zero,
        tick=t,
        candidate_steps=steps,
        bid_k0=k0_b,
        ask_k0=k0_a,
        bid_lop0=bid_lop0,
        bid_hip0=bid_hip0,
        ask_lop0=ask_lop0,
        ask_hip0=ask_hip0,
        bid_count=bid_count,
        ask_count=ask_count,
        refresh_interval=params.refresh_interval,
        size_block=int(params.max_order_qty != 0 and size > params.max_order_qty),
        widths=w,
    )


@dataclass
class LadderArrays:
    """Model outputs for ``n`` updates: the fields of ``LadderOut`` except ``ts``/``refresh``.

    Posting is kept as bit masks (bit ``i`` = level ``i``, as on the ``*_post`` ports) and
    prices as the level-0 value before masking (``*_top``): level ``i`` is
    ``(top -/+ i*T) mod 2**pb`` where posted, else 0. :attr:`bid_price` and
    :attr:`ask_price` expand them to ``(n, max_levels)`` arrays.
    """

    bid_top: np.ndarray
    ask_top: np.ndarray
    bid_post: np.ndarray
    ask_post: np.ndarray
    bid_count: np.ndarray
    ask_count: np.ndarray
    out_of_domain: np.ndarray
    no_mid: np.ndarray
    crossed: np.ndarray
    tick: int
    max_levels: int
    price_max: int
    #: a ladder with a mid whose levels the size limit blocked (posts already cleared)
    size_blocked: np.ndarray

    def __len__(self) -> int:
        return len(self.bid_top)

    def level_price(self, side: str, level: int, out: np.ndarray | None = None) -> np.ndarray:
        """Prices of one level (``side`` ``"bid"`` or ``"ask"``) for every update: the
        level's price where posted, else 0 (into ``out``, uint64, when given)."""
        top, post = (self.bid_top, self.bid_post) if side == "bid" else (self.ask_top, self.ask_post)
        step = (-level if side == "bid" else level) * self.tick
        if out is None:
            out = np.empty(len(top), dtype=np.uint64)
        # modulo 2**64 then masked: the same low bits as (top + step) mod 2**pb
        np.add(np.asarray(top, dtype=np.int64).view(np.uint64), np.uint64(step % (1 << 64)), out=out)
        np.bitwise_and(out, np.uint64(self.price_max), out=out)
        posted = np.right_shift(post, np.uint64(level)) & np.uint64(1)
        np.multiply(out, posted, out=out)
        return out

    @property
    def bid_price(self) -> np.ndarray:
        """``(n, max_levels)`` bid prices (0 where not posted)."""
        return np.stack([self.level_price("bid", i) for i in range(self.max_levels)], axis=1)

    @property
    def ask_price(self) -> np.ndarray:
        """``(n, max_levels)`` ask prices (0 where not posted)."""
        return np.stack([self.level_price("ask", i) for i in range(self.max_levels)], axis=1)

    @property
    def quotable(self) -> np.ndarray:
        return ~self.no_mid


_ARRAY_FIELDS = ("bid_top", "ask_top", "bid_post", "ask_post", "bid_count", "ask_count",
                 "out_of_domain", "no_mid", "crossed")


def ladder(
    coeffs: Coefficients,
    bid: np.ndarray,
    ask: np.ndarray,
    has_bid: np.ndarray,
    has_ask: np.ndarray,
    chunk: int = 1 << 15,
) -> LadderArrays:
    """Vectorized S1..S5 for arrays of updates under one coefficient set.

    Works in cache-sized chunks; the result arrays are preallocated and filled in place.
    """
    n = len(bid)
    bid = np.asarray(bid, dtype=np.int64)
    ask = np.asarray(ask, dtype=np.int64)
    has_bid = np.asarray(has_bid, dtype=bool)
    has_ask = np.asarray(has_ask, dtype=bool)
    w = coeffs.widths
    out = LadderArrays(
        bid_top=np.empty(n, np.int64), ask_top=np.empty(n, np.int64),
        bid_post=np.empty(n, np.uint64), ask_post=np.empty(n, np.uint64),
        bid_count=np.empty(n, np.int64), ask_count=np.empty(n, np.int64),
        out_of_domain=np.empty(n, np.int64), no_mid=np.empty(n, bool), crossed=np.empty(n, bool),
        tick=coeffs.tick, max_levels=w.max_levels, price_max=w.price_max,
        size_blocked=np.zeros(n, bool),
    )
    for i in range(0, n, chunk):
        part = slice(i, i + chunk)
        vals = _ladder_chunk(coeffs, bid[part], ask[part], has_bid[part], has_ask[part])
        for name, v in zip(_ARRAY_FIELDS, vals, strict=True):
            getattr(out, name)[part] = v
    if coeffs.size_block:  # S4: the size limit clears every posted mask
        out.bid_post[:] = 0
        out.ask_post[:] = 0
        np.logical_not(out.no_mid, out=out.size_blocked)
    return out


#: ``_MASKS[k] = 2**k - 1`` as uint64, ``k = 0..64``.
_MASKS = np.array([(1 << k) - 1 for k in range(65)], dtype=np.uint64)


def _level_mask(first: np.ndarray, last1: np.ndarray, levels: int) -> np.ndarray:
    """Bits ``first .. last1-1`` set (``0 <= first <= last1 <= levels``)."""
    if levels < 63:
        mask = np.left_shift(1, last1)
        mask -= np.left_shift(1, first)
        return mask.view(np.uint64)
    return _MASKS[last1] ^ _MASKS[first]


def _window(
    p: np.ndarray, shift: np.ndarray | None, lo0: int, hi0: int, step: int, count: np.ndarray,
    levels: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Posted mask and out-of-domain count of one side.

    The gateware tests ``LOP0 + j*step <= P < HIP0 + j*step`` for every window ``j`` of
    candidate 0 and posts level ``i`` if window ``i + shift`` holds (the chosen candidate
    is ``shift`` levels further out). These are the same comparisons solved for ``i``:
    an interval of levels, intersected with the gated levels ``0 .. count-1``.
    """
    s = abs(step) or 1  # step 0 only for tick 0, outside the validated domain (no warning)
    qh = np.subtract(p, hi0)
    qh //= s
    ql = np.subtract(p, lo0)
    ql //= s
    if step > 0:  # (i+shift)*s <= P - LOP0 and (i+shift)*s > P - HIP0
        first, last1 = qh, ql
        first += 1
        last1 += 1
    else:  # (i+shift)*s >= LOP0 - P and (i+shift)*s < HIP0 - P
        first, last1 = np.negative(ql, out=ql), np.negative(qh, out=qh)
    if shift is not None:
        first -= shift
        last1 -= shift
    np.maximum(first, 0, out=first)
    np.minimum(first, count, out=first)
    np.maximum(last1, first, out=last1)
    np.minimum(last1, count, out=last1)
    mask = _level_mask(first, last1, levels)
    ood = np.subtract(count, last1, out=last1)
    ood += first
    return mask, ood


def _ladder_chunk(
    c: Coefficients, bid: np.ndarray, ask: np.ndarray, has_bid: np.ndarray, has_ask: np.ndarray
) -> tuple[np.ndarray, ...]:
    w = c.widths
    wsum, pmask, levels = w.sum_bits, w.price_max, w.max_levels
    # S1
    p = bid + ask
    has_both = has_bid & has_ask
    crossed = bid >= ask
    crossed &= has_both
    quotable = has_both if c.legacy else has_both & ~crossed
    # S2: 18x18 limb products (each < 2**36)
    p0, p1 = p & _M18, p >> LIMB
    m0, m1 = c.m_norm & _M18, c.m_norm >> LIMB
    # S3: S = p00 + (p01 + p10) << 18 + p11 << 36, kept as S >> wsum and S mod 2**wsum
    low = p0 * m1
    low += p1 * m0
    low <<= LIMB
    low += p0 * m0  # < 2**53
    p1 *= m1
    p1 <<= 2 * LIMB - wsum
    s_hi = low >> wsum
    s_hi += p1
    x = s_hi & ~c.low_mask
    # S4: the fraction F = S mod 2**(wsum+l) against k*m: bid [rP < kbr] moves the
    # ladder out by db levels, ask [rP > 0] by da1 and [rP > kar] by da2 more.
    db, da1, da2 = c.candidate_steps
    shift_b: np.ndarray | None = None
    shift_a: np.ndarray | None = None
    if db or da1 or da2:
        f = s_hi & c.low_mask
        f <<= wsum
        f |= low & ((1 << wsum) - 1)
        if db:
            shift_b = f < c.th_bid
        if da1:
            shift_a = (f >= c.th_zero).astype(np.int64)
        if da2:
            shift_a = (f >= c.th_ask) if shift_a is None else shift_a + (f >= c.th_ask)
    # S2 (windows on P) .. S5 (selection by the shift)
    cnt_b = quotable * c.bid_count
    cnt_a = quotable * c.ask_count
    step = 2 * c.tick
    bid_post, ood_b = _window(p, shift_b, c.bid_lop0, c.bid_hip0, step, cnt_b, levels)
    ask_post, ood_a = _window(p, shift_a, c.ask_lop0, c.ask_hip0, -step, cnt_a, levels)
    ood_b += ood_a
    # S4/S5: base = T*qP = T' * X / 2**17 from two limb products; level-0 prices
    base = x & _M18
    base *= c.tprime
    base >>= 17
    x >>= LIMB
    x *= c.tprime
    x <<= 1
    base += x
    bid_top = base - c.bid_k0
    ask_top = base + c.ask_k0
    if shift_b is not None:
        bid_top -= c.tick * shift_b
    if shift_a is not None:
        ask_top += c.tick * shift_a
    bid_top &= pmask
    ask_top &= pmask
    return (bid_top, ask_top, bid_post, ask_post, cnt_b, cnt_a, ood_b, ~quotable, crossed)


@dataclass
class RefreshModel:
    """The refresh timer (docs/spec.md §6) as the pipeline keeps it: one decision per update.

    ``refresh = armed & quotable & (first | ts >= last + interval)`` where ``first`` is
    "exchange policy and no refresh since reset"; a refresh sets ``last = ts``. Legacy
    starts with ``last = 0``. Unsigned 65-bit arithmetic: no overflow, and time going
    backwards (``ts < last``) never refreshes.
    """

    last: int = 0
    quoted: bool = False

    def step(self, legacy: bool, interval: int, armed: bool, quotable: bool, ts: int) -> bool:
        fire = armed and quotable and (
            (not legacy and not self.quoted) or ts >= self.last + interval
        )
        if fire:
            self.last, self.quoted = ts, True
        return fire

    def run(
        self, legacy: bool, interval: int, armed: np.ndarray, quotable: np.ndarray, ts: np.ndarray
    ) -> np.ndarray:
        """Decisions for a batch, in any time order, without a step per update.

        A refresh at ``f`` sets ``last = ts[f]`` and the next one is the first candidate
        (armed and quotable) with ``ts >= ts[f] + interval``. Every candidate between
        them is below that bound (it would have refreshed otherwise), so every refresh is
        a running maximum of the candidates' times, and the next refresh is where the
        running maximum ``peak`` first reaches the bound: one ``searchsorted`` for all
        candidates, then a walk along the refreshes. With ``interval == 0`` a candidate
        refreshes exactly when it is at least every earlier candidate (and ``last``).
        """
        cand = np.flatnonzero(np.asarray(armed, dtype=bool) & np.asarray(quotable, dtype=bool))
        out = np.zeros(len(ts), dtype=bool)
        if len(cand) == 0:
            return out
        ts_c = np.asarray(ts, dtype=np.uint64)[cand]
        first = not legacy and not self.quoted
        if interval == 0:
            earlier = np.concatenate((np.zeros(1, np.uint64), np.maximum.accumulate(ts_c)[:-1]))
            fire = ts_c >= np.maximum(earlier, np.uint64(self.last))
            fire[0] |= first
            fired = np.flatnonzero(fire)
            if len(fired):
                out[cand[fired]] = True
                self.last, self.quoted = int(ts_c[fired[-1]]), True
            return out
        peak = np.maximum.accumulate(ts_c)
        top = (1 << 64) - 1
        if first:
            k = 0
        elif self.last + interval > top:
            return out
        else:
            k = int(np.searchsorted(peak, np.uint64(self.last + interval), side="left"))
        if k >= len(cand):
            return out
        reachable = ts_c <= np.uint64(top - interval)  # ts + interval fits in 64 bits
        bound = np.where(reachable, ts_c + np.uint64(min(interval, top)), 0)
        following = np.searchsorted(peak, bound, side="left")
        following[~reachable] = len(cand)
        chain, nxt, n = [], following.tolist(), len(cand)
        while k < n:
            chain.append(k)
            k = nxt[k]
        fired = np.array(chain, dtype=np.int64)
        out[cand[fired]] = True
        self.last, self.quoted = int(ts_c[fired[-1]]), True
        return out
