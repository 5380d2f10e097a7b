"""Seeded test vectors for the pipeline: random scenarios and the exhaustive grid.

Random scenarios mix the corners of every domain (tick 1 and 65535, M = 0 and 32767,
skew 0, 1 and non-dyadic, prices near 1 and near the maximum, missing, crossed and
locked books, time going backwards) with uniform draws. The exhaustive grid covers, for
a grid of configurations, every position in ``[-M-2, M+2]`` times every residue of
``bid + ask`` modulo ``2T`` (the only per-update quantity the datapath's rounding
depends on), at low, middle and high absolute price levels, plus fixed corner books.
For ticks too large to enumerate (40001, 65535) it takes the residues within 2 of every
point where the datapath's comparisons change (``rP`` against 0, ``T``, ``kbr``, ``kar``,
``2T - 1``).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.domain import POSITION_MAX
from nanoquote.sim.conformance.scenario import Segment

__all__ = ["random_config", "random_timestamps", "random_segment", "random_scenario", "exhaustive_scenario",
           "corner_books", "boundary_residues", "Grid", "FULL_GRID", "SMALL_GRID", "TS_LIMIT"]

#: Timestamps stay in the golden model's domain, 0 .. 2**63-1.
TS_LIMIT = (1 << 63) - 1


def random_config(rng: random.Random, policy: str, max_levels: int) -> MarketMakerConfig:
    t = rng.choice([1, 2, 3, 4, 7, 25, 100, 1000, 32768, 65535, rng.randint(1, 200),
                    rng.randint(1, 65535)])
    skew = rng.choice([0, 1, Fraction(1, 3), Fraction(1, 2), rng.random(),
                       Fraction(rng.randint(0, 65536), 65536)])
    size = rng.choice([1, 2, 5, 65535, rng.randint(1, 100), rng.randint(1, 65535)])
    return MarketMakerConfig(
        base_spread_ticks=rng.choice([1, 2, 3, 255, rng.randint(1, 10), rng.randint(1, 255)]),
        inventory_skew_factor=skew,
        max_inventory=rng.choice([0, 1, 2, 5, 50, 32767, rng.randint(1, 100),
                                  rng.randint(0, 32767)]),
        order_size=size,
        # the size limit of docs/spec.md §8: off, at the boundary either way, or anywhere
        max_order_qty=rng.choice([None, None, size, max(1, size - 1), rng.randint(1, 65535)]),
        num_levels=rng.randint(1, max_levels),
        min_edge_ticks=rng.choice([0, 1, 2, 255, rng.randint(0, 10), rng.randint(0, 255)]),
        tick_size=t,
        refresh_interval_ns=rng.choice([0, 1, 1000, 10**8, TS_LIMIT, rng.randint(0, 1 << 40)]),
        quote_policy=policy,
        max_levels=max_levels,
    )


def _position(rng: random.Random, m: int) -> int:
    """Positions around the limits, in the validated domain (docs/spec.md §1: within +-32767)."""
    p = rng.choice([0, m, -m, m + 1, -m - 1, 32767, -32767, rng.randint(-m - 2, m + 2),
                    rng.randint(-32767, 32767)])
    return max(-POSITION_MAX, min(POSITION_MAX, p))


def _live(rng: random.Random, size: int) -> int:
    return rng.choice([0, 0, size, rng.randint(0, 3 * size), rng.randint(0, (1 << 32) - 1)])


def random_timestamps(g: np.random.Generator, kind: np.ndarray, ts0: int, interval: int) -> np.ndarray:
    """Timestamps from ``ts0``: per update (by ``kind``) a repeat, a step back, a rare leap
    of up to 2**61, or an advance of up to twice the refresh interval; never below 0 or
    above :data:`TS_LIMIT`.

    Vectorised: the floor at 0 is the Lindley recursion ``s = max(0, s + d)`` in closed
    form, ``s_k = S_k - min(0, min_{j<=k} S_j)`` over the prefix sums ``S``; the start is
    lowered when the walk would otherwise pass :data:`TS_LIMIT`.
    """
    n = len(kind)
    scale = max(1, min(interval, 1 << 40))
    # by kind: repeat, step back, else advance (one draw); then the leaps
    high = np.array([1, scale + 1] + [2 * scale + 2] * 6, dtype=np.int64)
    delta = g.integers(0, high[kind]) * np.array([0, -1] + [1] * 6)[kind]
    leap = np.flatnonzero((kind == 2) & (g.random(n) < 0.1))
    # leaps sum to at most 2**61 per segment, so the int64 prefix sums cannot overflow
    leap_bits = max(1, 61 - len(leap).bit_length())
    delta[leap] = g.integers(0, 1 << 62, len(leap), dtype=np.int64) >> (
        62 - g.integers(1, leap_bits + 1, len(leap)))
    walk = np.cumsum(delta, dtype=np.int64)
    top = int(walk.max(initial=0)) + max(0, -int(walk.min(initial=0)))
    start = min(max(ts0, 0), TS_LIMIT - top)
    prefix = walk + start
    floor = np.minimum(np.minimum.accumulate(prefix), 0)
    return (prefix - floor).astype(np.uint64)


def random_segment(
    rng: random.Random, config: MarketMakerConfig, n: int, ts0: int, price_bits: int,
    armed: bool | None = None,
) -> Segment:
    """``n`` random updates under ``config`` starting at time ``ts0``."""
    g = np.random.default_rng(rng.getrandbits(64))
    pmax = (1 << price_bits) - 1
    t = config.tick_size
    level = rng.choice([rng.randint(1, 2000), rng.randint(1, pmax), pmax - rng.randint(0, 4000),
                        rng.randint(1, 10**7)])
    drift = g.integers(-4 * t, 4 * t + 1, n)
    bid = np.clip(level + drift, 1, pmax)
    kind = g.integers(0, 8, n)
    # by kind: whole ticks, 1-3 raw, locked, crossed, wide, else up to two ticks (one draw)
    low = np.array([1, 1, 0, 1, 0, 1, 1, 1])
    high = np.array([6, 4, 1, 2 * t + 2, 64 * t + 64, 2 * t + 2, 2 * t + 2, 2 * t + 2])
    spread = g.integers(low[kind], high[kind]) * np.array([t, 1, 1, -1, 1, 1, 1, 1])[kind]
    ask = np.clip(bid + spread, 1, pmax)
    corner = g.random(n) < 0.02
    bid = np.where(corner, g.choice([1, 2, pmax - 1, pmax], n), bid)
    corner = g.random(n) < 0.02
    ask = np.where(corner, g.choice([1, 2, pmax - 1, pmax], n), ask)
    has_bid = g.random(n) >= 0.04
    has_ask = g.random(n) >= 0.04
    ts = random_timestamps(g, kind, ts0, config.refresh_interval_ns)
    return Segment(
        config=config,
        position=_position(rng, config.max_inventory),
        live_bid=_live(rng, config.order_size),
        live_ask=_live(rng, config.order_size),
        armed=rng.random() >= 0.1 if armed is None else armed,
        ts=ts,
        bid=bid.astype(np.int64),
        ask=ask.astype(np.int64),
        has_bid=has_bid,
        has_ask=has_ask,
    )


def random_scenario(
    rng: random.Random, policy: str, n_vectors: int, max_levels: int, price_bits: int,
    segment_size: tuple[int, int] = (16, 400), configs_per_run: int = 0,
) -> list[Segment]:
    """Segments of random length until ``n_vectors`` updates; a new config every segment
    (or only ``configs_per_run`` distinct configs, cycling, when that is > 0)."""
    segments: list[Segment] = []
    configs = [random_config(rng, policy, max_levels) for _ in range(configs_per_run)]
    ts, left = rng.randint(0, 1 << 40), n_vectors
    while left > 0:
        n = min(left, rng.randint(*segment_size))
        cfg = configs[len(segments) % len(configs)] if configs else random_config(
            rng, policy, max_levels)
        seg = random_segment(rng, cfg, n, ts, price_bits)
        segments.append(seg)
        ts = int(seg.ts[-1]) if rng.random() < 0.9 else rng.randint(0, 1 << 40)
        left -= n
    return segments


# -- exhaustive grid -------------------------------------------------------------------

@dataclass(frozen=True)
class Grid:
    """Axes of the exhaustive grid: every (skew, B, M, T) combination; the other fields
    cycle through their values from one configuration to the next."""

    skew: tuple[Fraction, ...] = (Fraction(0), Fraction(1), Fraction(1, 3))
    base_spread: tuple[int, ...] = (1, 2, 7)
    max_inventory: tuple[int, ...] = (0, 1, 5)
    tick: tuple[int, ...] = (1, 3, 25, 1000)
    min_edge: tuple[int, ...] = (0, 1, 3)
    order_size: tuple[int, ...] = (1, 2, 5)
    refresh_interval: tuple[int, ...] = (0, 5, 1000)
    #: Ticks too large for every residue: only the residues where the datapath's
    #: comparisons (``rP`` against 0, ``kbr``, ``kar``) change, and their neighbours.
    large_tick: tuple[int, ...] = (40001, 65535)


#: The grid of ``nanoquote conformance --exhaustive``.
FULL_GRID = Grid()
#: A grid small enough for the unit tests (every residue of small ticks).
SMALL_GRID = Grid(tick=(1, 2, 7), base_spread=(1, 2, 3), max_inventory=(0, 1, 3),
                  large_tick=(65535,))


def corner_books(t: int, pmax: int) -> list[tuple[int, int, bool, bool]]:
    """Fixed books: domain edges, missing sides, crossed and locked."""
    return [
        (1, 2, True, True), (1, pmax, True, True), (pmax - 1, pmax, True, True),
        (1, 1 + t, True, True), (pmax - t, pmax, True, True), (pmax, pmax, True, True),
        (1, 1, True, True), (5 * t, 5 * t, True, True), (5 * t + 1, 5 * t, True, True),
        (pmax, 1, True, True), (1000, 999, True, True), (1000, 1003, False, True),
        (1000, 1003, True, False), (1000, 1003, False, False), (pmax, pmax, False, True),
    ]


def boundary_residues(config: MarketMakerConfig, position: int) -> list[int]:
    """Residues of ``P mod 2T`` around every point where the exchange datapath's
    comparisons change (``rP`` against 0, ``kbr`` and ``kar``; docs/datapath.md)."""
    t, m, d = config.tick_size, config.max_inventory, 2 * config.tick_size
    bt = config.base_spread_ticks * t
    s = max(-m, min(m, position))
    w = Fraction(2 * s * config.skew_q * config.base_spread_ticks * t, m * 65536) if m else 0
    kbr = (bt + math.ceil(w)) % d
    kar = (math.floor(w) - bt) % d
    points = {0, t, kbr, kar, d - 1}
    return sorted({(p + k) % d for p in points for k in range(-2, 3)})


def _books_for_residues(
    t: int, pmax: int, phase: int, residues: Iterable[int] | None = None
) -> Iterator[tuple[int, int]]:
    """For every residue r of P = bid + ask modulo 2T (or those given), one uncrossed book
    with P = r (mod 2T), at a low, middle or high absolute level and with varying spread
    (by ``phase``)."""
    d = 2 * t
    for r in range(d) if residues is None else residues:
        level = (r + phase) % 3
        spread = (1, 2, t, d + 1, 3 * t)[(r + phase) % 5]
        if (r - spread) % 2:  # P and the spread have the same parity
            spread += 1
        base = (3 * spread + 2, 1 << (pmax.bit_length() - 1), 2 * pmax - 3 * spread - d)[level]
        p = base - ((base - r) % d)  # largest P <= base with P = r (mod d)
        if p < spread + 2:
            p += d * -(-(spread + 2 - p) // d)
        bid, ask = (p - spread) // 2, (p + spread) // 2
        yield max(bid, 1), min(ask, pmax)


def exhaustive_scenario(
    policy: str, max_levels: int, price_bits: int, grid: Grid = FULL_GRID
) -> list[Segment]:
    """The exhaustive grid (see module docstring); deterministic, no seed."""
    pmax = (1 << price_bits) - 1
    segments: list[Segment] = []
    ts = 0
    combos = itertools.product(grid.skew, grid.base_spread, grid.max_inventory,
                               grid.tick + grid.large_tick)
    for k, (skew, b, m, t) in enumerate(combos):
        cfg = MarketMakerConfig(
            base_spread_ticks=b, inventory_skew_factor=skew, max_inventory=m,
            order_size=grid.order_size[k % len(grid.order_size)],
            num_levels=1 + k % max_levels,
            min_edge_ticks=grid.min_edge[(k // 3) % len(grid.min_edge)], tick_size=t,
            refresh_interval_ns=grid.refresh_interval[k % len(grid.refresh_interval)],
            quote_policy=policy, max_levels=max_levels,
        )
        # the size limit: off, at order_size (passes) or one below it (blocks every level)
        size = cfg.order_size
        cfg = cfg.replace(max_order_qty=(None, size, size - 1 or None)[(k // 2) % 3])
        for j, pos in enumerate(range(-m - 2, m + 3)):
            live_bid, live_ask = ((0, 0), (cfg.order_size, 0), (0, 2 * cfg.order_size + 1))[j % 3]
            residues = boundary_residues(cfg, pos) if t in grid.large_tick else None
            books = list(_books_for_residues(t, pmax, j, residues))
            books += [(b_, a_) for b_, a_, hb, ha in corner_books(t, pmax) if hb and ha]
            n = len(books)
            extra = [(b_, a_, hb, ha) for b_, a_, hb, ha in corner_books(t, pmax)
                     if not (hb and ha)]
            bid = np.array([x for x, _ in books] + [e[0] for e in extra], dtype=np.int64)
            ask = np.array([y for _, y in books] + [e[1] for e in extra], dtype=np.int64)
            has_bid = np.array([True] * n + [e[2] for e in extra])
            has_ask = np.array([True] * n + [e[3] for e in extra])
            step = np.arange(len(bid), dtype=np.uint64) * np.uint64(1 + j % 7)
            segments.append(Segment(cfg, pos, live_bid, live_ask, j % 4 != 3,
                                    np.uint64(ts) + step, bid, ask, has_bid, has_ask))
            ts += 7 * len(bid) + 3
    return segments
