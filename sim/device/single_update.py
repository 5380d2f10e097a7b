"""One update through the bit-accurate model, for devices that quote one book at a time.

The software device and the register quote path see one update per call; this wraps
the vectorized model (``nanoquote.hw.model``) for that case and caches the coefficient
stage, which only changes when configuration or inventory does, and the ladders of
recent books: the model is a pure function of configuration, inventory and book prices,
markets revisit the same prices all the time, and a one-row numpy evaluation costs
hundreds of microseconds, far more than the register path around it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.hw.contract.coefficients import PipelineParams
from nanoquote.hw.contract.widths import DatapathWidths
from nanoquote.hw.model import Coefficients, coefficient_stage, ladder
from nanoquote.sim.port_codec import LadderFields

__all__ = ["compute_ladder"]


@lru_cache(maxsize=64)
def _coefficients(params: PipelineParams, position: int, live_bid: int, live_ask: int,
                  max_levels: int, price_bits: int) -> Coefficients:
    return coefficient_stage(params, position, live_bid, live_ask, DatapathWidths(max_levels, price_bits))


def _mask(row: np.ndarray) -> int:
    """A posted-levels row as a bit mask (the model keeps masks as integers)."""
    return int(row)


def compute_ladder(params: PipelineParams, position: int, live_bid_qty: int, live_ask_qty: int,
                   book: BookUpdate, max_levels: int, price_bits: int) -> LadderFields:
    """The ladder the pipeline computes for ``book``'s prices (``ts`` 0 and refresh False:
    the caller stamps them, :meth:`LadderFields.stamped`; the refresh is stateful)."""
    return _book_ladder(params, position, live_bid_qty, live_ask_qty, book.best_bid, book.best_ask,
                        max_levels, price_bits)


@lru_cache(maxsize=4096)
def _book_ladder(params: PipelineParams, position: int, live_bid_qty: int, live_ask_qty: int,
                 best_bid: int | None, best_ask: int | None, max_levels: int, price_bits: int) -> LadderFields:
    """The ladder of one book's prices."""
    coeffs = _coefficients(params, position, live_bid_qty, live_ask_qty, max_levels, price_bits)
    has_bid, has_ask = best_bid is not None, best_ask is not None
    out = ladder(coeffs, np.array([best_bid or 0]), np.array([best_ask or 0]),
                 np.array([has_bid]), np.array([has_ask]))
    return LadderFields(
        0,
        tuple(int(p) for p in out.bid_price[0]), tuple(int(p) for p in out.ask_price[0]),
        _mask(out.bid_post[0]), _mask(out.ask_post[0]), int(out.bid_count[0]), int(out.ask_count[0]),
        int(out.out_of_domain[0]), bool(out.no_mid[0]), bool(out.crossed[0]), False,
        size_blocked=bool(out.size_blocked[0]),
    )
