"""Packed data layouts of the quote pipeline's ports.

The same layout object describes the gateware port and packs/unpacks values on the
host and in testbenches (``layout.const({...}).as_bits()``, ``layout.from_bits(raw)``),
so a field order is written down exactly once. Widths depend on the build parameters,
hence factories; ``MarketUpdate``, ``LadderOut`` and ``PipelineConfig`` are the layouts
of the default build (8 levels, 31-bit prices).
"""

from __future__ import annotations

import dataclasses
from functools import cache

from amaranth.hdl import signed, unsigned
from amaranth.lib import data
from nanoquote.hw.contract.coefficients import (
    DEFAULT_MAX_LEVELS,
    DEFAULT_PRICE_BITS,
    TS_BITS,
    PipelineParams,
)
from nanoquote.hw.contract.register_map import register_map
from nanoquote.hw.contract.widths import DatapathWidths, bits_for

__all__ = [
    "market_update_layout",
    "ladder_out_layout",
    "pipeline_config_layout",
    "MarketUpdate",
    "LadderOut",
    "PipelineConfig",
]


@cache
def market_update_layout(price_bits: int = DEFAULT_PRICE_BITS) -> data.StructLayout:
    """One top-of-book update; a missing side has its ``has_*`` bit clear."""
    return data.StructLayout({
        "ts": unsigned(TS_BITS),
        "bid": unsigned(price_bits),
        "ask": unsigned(price_bits),
        "has_bid": unsigned(1),
        "has_ask": unsigned(1),
    })


@cache
def ladder_out_layout(
    max_levels: int = DEFAULT_MAX_LEVELS, price_bits: int = DEFAULT_PRICE_BITS
) -> data.StructLayout:
    """The ladder for one update: per-level prices (0 where not posted) and flags.

    ``bid_count``/``ask_count`` are the gated level counts (0 without a quotable mid);
    ``out_of_domain`` counts gated levels not posted because their price is outside
    ``1 .. 2**price_bits - 1``; ``no_mid``: nothing to quote around; ``crossed``: both
    sides present and ``bid >= ask``; ``refresh``: the strategy's refresh timer fired;
    ``killed``: blocked by the kill switch (nothing posted, docs/spec.md §8), ``deadman``:
    that kill was latched by the dead-man timer. The pipeline leaves both 0; the top level
    that holds the kill latch sets them. ``size_blocked``: a ladder with a mid whose every
    level the maximum order quantity blocked (none posted; counts and ``out_of_domain``
    as without the limit).
    """
    w = DatapathWidths(max_levels, price_bits)
    return data.StructLayout({
        "ts": unsigned(TS_BITS),
        "bid_price": data.ArrayLayout(unsigned(price_bits), max_levels),
        "ask_price": data.ArrayLayout(unsigned(price_bits), max_levels),
        "bid_post": unsigned(max_levels),
        "ask_post": unsigned(max_levels),
        "bid_count": unsigned(w.level_bits),
        "ask_count": unsigned(w.level_bits),
        "out_of_domain": unsigned(w.ood_bits),
        "no_mid": unsigned(1),
        "crossed": unsigned(1),
        "refresh": unsigned(1),
        "killed": unsigned(1),
        "deadman": unsigned(1),
        "size_blocked": unsigned(1),
    })


@cache
def pipeline_config_layout(
    max_levels: int = DEFAULT_MAX_LEVELS, price_bits: int = DEFAULT_PRICE_BITS
) -> data.StructLayout:
    """Configuration port: the register map's ``config`` fields, in ``PipelineParams`` order.

    Each field is as wide as the values a commit accepts (``num_levels``: ``1 ..
    max_levels``), so the datapath carries no bit the register block cannot let through.
    """
    config = register_map(max_levels, price_bits).fields_of("config")
    order = [f.name for f in dataclasses.fields(PipelineParams)]
    if sorted(order) != sorted(config):
        raise ValueError(f"PipelineParams fields {order} are not the register map's config fields {list(config)}")
    fields = {}
    for name in order:
        _, f = config[name]
        width = f.width if f.commit_range is None else bits_for(f.commit_range[1])
        fields[name] = signed(width) if f.signed else unsigned(width)
    return data.StructLayout(fields)


MarketUpdate = market_update_layout()
LadderOut = ladder_out_layout()
PipelineConfig = pipeline_config_layout()
