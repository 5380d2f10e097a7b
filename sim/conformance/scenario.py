"""Scenarios for the pipeline: segments of updates under one set of port values.

A :class:`Segment` fixes ``cfg``, ``position``, ``live_*_qty`` and ``armed`` for a run of
updates; a scenario is a list of segments played back to back (the refresh state carries
over, as in the hardware). :func:`expect` computes, for every update, the golden ladder
and refresh decision packed as the expected raw ``o.payload``, and the bit-accurate
model's packing of the same, so every backend is checked against the golden model and
the model is checked on the same vectors. :class:`Scoreboard` compares a backend's
outputs in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.hw.contract.coefficients import PipelineParams
from nanoquote.hw.contract.widths import DatapathWidths
from nanoquote.hw.model import RefreshModel, coefficient_stage, ladder
from nanoquote.sim.conformance.reference import SpecRefreshClock, golden_ladder
from nanoquote.sim.port_codec import LadderFields, PortCodec

__all__ = ["Segment", "Expectation", "expect", "Scoreboard", "GoldenRows", "chunked"]


@dataclass
class Segment:
    """Updates played under one set of configuration and feedback port values."""

    config: MarketMakerConfig
    position: int
    live_bid: int
    live_ask: int
    armed: bool
    ts: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    has_bid: np.ndarray
    has_ask: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def params(self, price_bits: int) -> PipelineParams:
        return PipelineParams.from_config(self.config, price_bits)

    def books(self) -> list[BookUpdate]:
        return [BookUpdate(t, b if hb else None, a if ha else None) for t, b, a, hb, ha in zip(
            self.ts.tolist(), self.bid.tolist(), self.ask.tolist(), self.has_bid.tolist(),
            self.has_ask.tolist(), strict=True)]


@dataclass
class Expectation:
    """Expected raw outputs of a scenario, in order, and where model and golden differ."""

    golden: list[int] = field(default_factory=list)
    model: list[int] = field(default_factory=list)
    #: (segment index, index within the segment) of every vector
    origin: list[tuple[int, int]] = field(default_factory=list)

    @property
    def model_mismatches(self) -> list[int]:
        return [k for k, (g, m) in enumerate(zip(self.golden, self.model, strict=True)) if g != m]


def expect(segments: list[Segment], widths: DatapathWidths, with_golden: bool = True) -> Expectation:
    """Golden and model expectations of a whole scenario (refresh state carried across)."""
    codec = PortCodec(widths.max_levels, widths.price_bits)
    out = Expectation()
    model_clock, spec_clock = RefreshModel(), SpecRefreshClock()
    for s_idx, seg in enumerate(segments):
        params = seg.params(widths.price_bits)
        coeffs = coefficient_stage(params, seg.position, seg.live_bid, seg.live_ask, widths)
        lad = ladder(coeffs, seg.bid, seg.ask, seg.has_bid, seg.has_ask)
        armed = np.full(len(seg), seg.armed)
        refresh = model_clock.run(bool(params.legacy), params.refresh_interval, armed,
                                  lad.quotable, seg.ts)
        out.model += codec.ladders(lad, seg.ts, refresh)
        out.origin += [(s_idx, k) for k in range(len(seg))]
        if not with_golden:
            continue
        rows = [golden_ladder(seg.config, book, seg.position, seg.live_bid, seg.live_ask,
                              widths.max_levels, widths.price_max) for book in seg.books()]
        g_refresh = [spec_clock.decide(seg.config, seg.armed, not row.no_mid, t)
                     for row, t in zip(rows, seg.ts.tolist(), strict=True)]
        out.golden += codec.ladders(GoldenRows(rows), seg.ts, np.array(g_refresh, dtype=bool))
    if not with_golden:
        out.golden = list(out.model)
    return out


class GoldenRows:
    """Golden rows shaped like ``LadderArrays`` for :meth:`PortCodec.ladders`."""

    def __init__(self, rows: list) -> None:
        self.bid_price = np.array([r.bid_price for r in rows], dtype=np.int64).reshape(len(rows), -1)
        self.ask_price = np.array([r.ask_price for r in rows], dtype=np.int64).reshape(len(rows), -1)
        self.bid_post = np.array([r.bid_post for r in rows], dtype=np.uint64)
        self.ask_post = np.array([r.ask_post for r in rows], dtype=np.uint64)
        self.bid_count = np.array([r.bid_count for r in rows], dtype=np.int64)
        self.ask_count = np.array([r.ask_count for r in rows], dtype=np.int64)
        self.out_of_domain = np.array([r.out_of_domain for r in rows], dtype=np.int64)
        self.no_mid = np.array([r.no_mid for r in rows], dtype=bool)
        self.crossed = np.array([r.crossed for r in rows], dtype=bool)
        self.size_blocked = np.array([r.size_blocked for r in rows], dtype=bool)


@dataclass
class Scoreboard:
    """In-order comparison of a backend's raw outputs with the expected ones."""

    expected: list[int]
    codec: PortCodec
    max_reports: int = 10
    received: int = 0
    #: indices of the vectors whose output differed, was missing or was extra
    mismatched: list[int] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)

    @property
    def mismatches(self) -> int:
        return len(self.mismatched)

    def push(self, raw: int) -> None:
        k = self.received
        self.received += 1
        if k >= len(self.expected):
            self.mismatched.append(k)
            self._report(f"unexpected extra output #{k}: {self.codec.decode(raw)}")
        elif raw != self.expected[k]:
            self.mismatched.append(k)
            got: LadderFields = self.codec.decode(raw)
            self._report(f"vector #{k}: " + "; ".join(got.diff(self.codec.decode(self.expected[k]))))

    def finish(self) -> None:
        missing = range(self.received, len(self.expected))
        if missing:
            self.mismatched.extend(missing)
            self._report(f"{len(missing)} outputs missing (from vector #{missing[0]})")

    def _report(self, text: str) -> None:
        if len(self.reports) < self.max_reports:
            self.reports.append(text)


def chunked(segments: list[Segment], chunk_vectors: int) -> Iterator[list[Segment]]:
    """Consecutive groups of whole segments with about ``chunk_vectors`` updates each."""
    group: list[Segment] = []
    size = 0
    for seg in segments:
        group.append(seg)
        size += len(seg)
        if size >= chunk_vectors:
            yield group
            group, size = [], 0
    if group:
        yield group
