"""Independent expectations for the pipeline: golden ladder and refresh rule (docs/spec.md §6).

The golden ladder is ``nanoquote.host.strategy.quoting.build_ladder`` itself, laid out as the
pipeline's ``LadderOut`` fields (one row per update) so outputs compare field by field.
The refresh rule is restated here from docs/spec.md §6 in plain Python, separately from
the model's :class:`~nanoquote.hw.model.RefreshModel`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.quoting import BookUpdate, build_ladder

__all__ = ["ExpectedLadder", "golden_ladder", "SpecRefreshClock"]


@dataclass(frozen=True, slots=True)
class ExpectedLadder:
    """One update's expected ``LadderOut`` fields (prices 0 where not posted)."""

    bid_price: tuple[int, ...]
    ask_price: tuple[int, ...]
    bid_post: int
    ask_post: int
    bid_count: int
    ask_count: int
    out_of_domain: int
    no_mid: bool
    crossed: bool
    size_blocked: bool = False


def golden_ladder(
    config: MarketMakerConfig,
    book: BookUpdate,
    position: int,
    live_bid_qty: int,
    live_ask_qty: int,
    max_levels: int,
    price_max: int,
) -> ExpectedLadder:
    """``build_ladder`` in ``LadderOut`` shape, padded to ``max_levels``."""
    lad = build_ladder(config, book, position, live_bid_qty, live_ask_qty, price_max=price_max)

    def side(prices: Sequence[int | None]) -> tuple[tuple[int, ...], int]:
        padded = list(prices) + [None] * (max_levels - len(prices))
        mask = sum(1 << i for i, p in enumerate(padded) if p is not None)
        return tuple(p or 0 for p in padded), mask

    bid_price, bid_post = side(lad.bids)
    ask_price, ask_post = side(lad.asks)
    # docs/spec.md §8, restated: order_size above max_order_qty blocks every level
    size_blocked = (lad.mid is not None and config.max_order_qty is not None
                    and config.order_size > config.max_order_qty)
    if size_blocked:
        bid_price, bid_post = side([])
        ask_price, ask_post = side([])
    return ExpectedLadder(
        bid_price=bid_price,
        ask_price=ask_price,
        bid_post=bid_post,
        ask_post=ask_post,
        bid_count=lad.bid_count,
        ask_count=lad.ask_count,
        out_of_domain=lad.out_of_domain,
        no_mid=lad.mid is None,
        crossed=lad.crossed,
        size_blocked=size_blocked,
    )


class SpecRefreshClock:
    """``should_refresh_quotes`` and ``generate_quotes`` bookkeeping of docs/spec.md §6.

    Refresh when armed, with a quotable mid, and ``now - last_quote_time >=
    refresh_interval_ns``; time going backwards never refreshes. Legacy starts with
    ``last_quote_time = 0``; exchange always refreshes on its first update with a mid.
    """

    def __init__(self) -> None:
        self.last_quote_time: int | None = None

    def decide(self, config: MarketMakerConfig, armed: bool, has_mid: bool, now: int) -> bool:
        if not (armed and has_mid):
            return False
        last = self.last_quote_time
        if last is None:
            if not config.is_legacy:
                self.last_quote_time = now
                return True
            last = 0
        elapsed = now - last
        if elapsed < 0 or elapsed < config.refresh_interval_ns:
            return False
        self.last_quote_time = now
        return True

    def decide_all(
        self, config: MarketMakerConfig, armed: Iterable[bool], has_mid: Iterable[bool],
        now: Iterable[int],
    ) -> list[bool]:
        return [self.decide(config, a, h, t) for a, h, t in zip(armed, has_mid, now, strict=True)]
