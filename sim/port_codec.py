"""Raw bit patterns of the pipeline's ports, packed and unpacked from the layouts.

Simulators exchange whole ports as integers (``i__payload``, ``o__payload``, ``cfg``).
Field offsets come from the layouts in ``nanoquote.hw.gateware.layouts``, never typed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data
from nanoquote.hw.contract.coefficients import PipelineParams
from nanoquote.hw.gateware.layouts import (
    ladder_out_layout,
    market_update_layout,
    pipeline_config_layout,
)
from nanoquote.hw.model import LadderArrays

__all__ = ["LadderFields", "PortCodec"]


@dataclass(frozen=True, slots=True)
class LadderFields:
    """One decoded ``LadderOut``."""

    ts: int
    bid_price: tuple[int, ...]
    ask_price: tuple[int, ...]
    bid_post: int
    ask_post: int
    bid_count: int
    ask_count: int
    out_of_domain: int
    no_mid: bool
    crossed: bool
    refresh: bool
    killed: bool = False
    deadman: bool = False
    size_blocked: bool = False

    def stamped(self, ts: int, refresh: bool) -> LadderFields:
        """This ladder with its update's ``ts`` and refresh decision (the pure price part is
        what the software device caches; ``dataclasses.replace`` costs more than a quote)."""
        return LadderFields(ts, self.bid_price, self.ask_price, self.bid_post, self.ask_post, self.bid_count,
                            self.ask_count, self.out_of_domain, self.no_mid, self.crossed, refresh,
                            self.killed, self.deadman, self.size_blocked)

    def diff(self, other: LadderFields) -> list[str]:
        """Names and values of the fields that differ (``self`` = got, ``other`` = expected)."""
        return [f"{name}: got {getattr(self, name)!r}, expected {getattr(other, name)!r}"
                for name in self.__slots__ if getattr(self, name) != getattr(other, name)]


def _offsets(layout: data.StructLayout) -> dict[str, tuple[int, int]]:
    return {name: (f.offset, Shape.cast(f.shape).width) for name, f in layout}


class PortCodec:
    """Packs updates and configurations, packs expected ladders, decodes output ladders."""

    def __init__(self, max_levels: int, price_bits: int) -> None:
        self.max_levels, self.price_bits = max_levels, price_bits
        self.update_layout = market_update_layout(price_bits)
        self.ladder_layout = ladder_out_layout(max_levels, price_bits)
        self.config_layout = pipeline_config_layout(max_levels, price_bits)
        self._upd = _offsets(self.update_layout)
        self._lad = _offsets(self.ladder_layout)

    # -- inputs ------------------------------------------------------------------------
    def config(self, params: PipelineParams) -> int:
        return self.config_layout.const(params.as_dict()).as_bits()

    def updates(
        self, ts: np.ndarray, bid: np.ndarray, ask: np.ndarray, has_bid: np.ndarray,
        has_ask: np.ndarray,
    ) -> list[int]:
        o = self._upd
        return [
            t | (b << o["bid"][0]) | (a << o["ask"][0]) | (hb << o["has_bid"][0])
            | (ha << o["has_ask"][0])
            for t, b, a, hb, ha in zip(
                np.asarray(ts, dtype=np.uint64).tolist(), np.asarray(bid).tolist(),
                np.asarray(ask).tolist(), np.asarray(has_bid, dtype=int).tolist(),
                np.asarray(has_ask, dtype=int).tolist(), strict=True)
        ]

    # -- outputs -----------------------------------------------------------------------
    def ladders(self, model: LadderArrays, ts: np.ndarray, refresh: np.ndarray) -> list[int]:
        """The expected raw ``o.payload`` of each update."""
        o, pb = self._lad, self.price_bits
        bid_off, ask_off = o["bid_price"][0], o["ask_price"][0]

        def prices(arr: np.ndarray) -> list[int]:
            packed = []
            for row in arr.tolist():
                v = 0
                for p in reversed(row):
                    v = (v << pb) | p
                packed.append(v)
            return packed

        cols = zip(
            np.asarray(ts, dtype=np.uint64).tolist(), prices(model.bid_price),
            prices(model.ask_price), model.bid_post.tolist(), model.ask_post.tolist(),
            model.bid_count.tolist(), model.ask_count.tolist(), model.out_of_domain.tolist(),
            model.no_mid.astype(int).tolist(), model.crossed.astype(int).tolist(),
            np.asarray(refresh, dtype=int).tolist(), np.asarray(model.size_blocked, dtype=int).tolist(),
            strict=True,
        )
        sh = {k: v[0] for k, v in o.items()}
        return [
            t | (bp << bid_off) | (ap << ask_off) | (bpo << sh["bid_post"])
            | (apo << sh["ask_post"]) | (bc << sh["bid_count"]) | (ac << sh["ask_count"])
            | (ood << sh["out_of_domain"]) | (nm << sh["no_mid"]) | (cr << sh["crossed"])
            | (rf << sh["refresh"]) | (sb << sh["size_blocked"])
            for t, bp, ap, bpo, apo, bc, ac, ood, nm, cr, rf, sb in cols
        ]

    def decode(self, raw: int) -> LadderFields:
        def field(name: str) -> int:
            off, width = self._lad[name]
            return (raw >> off) & ((1 << width) - 1)

        def prices(name: str) -> tuple[int, ...]:
            v, pb = field(name), self.price_bits
            return tuple((v >> (i * pb)) & ((1 << pb) - 1) for i in range(self.max_levels))

        return LadderFields(
            ts=field("ts"), bid_price=prices("bid_price"), ask_price=prices("ask_price"),
            bid_post=field("bid_post"), ask_post=field("ask_post"),
            bid_count=field("bid_count"), ask_count=field("ask_count"),
            out_of_domain=field("out_of_domain"), no_mid=bool(field("no_mid")),
            crossed=bool(field("crossed")), refresh=bool(field("refresh")),
            killed=bool(field("killed")), deadman=bool(field("deadman")),
            size_blocked=bool(field("size_blocked")),
        )
