"""The refresh rule (docs/spec.md §6) in the model, against hand-computed sequences and the
independent restatement ``sim.reference.SpecRefreshClock``."""

from __future__ import annotations

import random

import numpy as np
import pytest
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.hw.model import RefreshModel
from nanoquote.sim.conformance.reference import SpecRefreshClock


def _run(legacy: bool, interval: int, ts: list[int], armed=None, quotable=None) -> list[bool]:
    n = len(ts)
    armed = [True] * n if armed is None else armed
    quotable = [True] * n if quotable is None else quotable
    out = RefreshModel().run(legacy, interval, np.array(armed), np.array(quotable),
                             np.array(ts, dtype=np.uint64))
    return out.tolist()


def test_legacy_starts_at_zero() -> None:
    # interval 100: ts 50 < 100 no; 100 yes; 150 no; 199 no; 200 yes; 250 no; 300 yes
    assert _run(True, 100, [50, 100, 150, 199, 200, 250, 300]) == [
        False, True, False, False, True, False, True]


def test_exchange_first_update_with_mid_refreshes() -> None:
    assert _run(False, 100, [50, 100, 149, 150]) == [True, False, False, True]
    # the first *quotable* update is the first refresh
    assert _run(False, 100, [10, 20, 30], quotable=[False, True, True]) == [False, True, False]


def test_time_going_backwards_never_refreshes() -> None:
    assert _run(False, 10, [1000, 500, 900, 1009, 1010, 0]) == [
        True, False, False, False, True, False]
    assert _run(False, 0, [1000, 999, 1000, 1000]) == [True, False, True, True]


def test_disarmed_or_no_mid_never_refreshes_nor_moves_the_timer() -> None:
    ts = [0, 100, 200, 250, 300]
    assert _run(False, 100, ts, armed=[False, False, True, True, True]) == [
        False, False, True, False, True]
    assert _run(True, 100, ts, quotable=[True, False, True, True, True]) == [
        False, False, True, False, True]


def test_huge_interval_does_not_overflow() -> None:
    big = (1 << 63) - 1
    assert _run(False, big, [5, big, big + 4, big + 5]) == [True, False, False, True]
    assert _run(True, big, [big - 1, big]) == [False, True]


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_model_matches_spec_clock_random(seed: int) -> None:
    rng = random.Random(seed)
    print(f"seed {seed}")
    for _ in range(60):
        legacy = rng.random() < 0.5
        interval = rng.choice([0, 1, 10, 1000, (1 << 63) - 1, rng.randint(0, 10**6)])
        n = rng.randint(1, 300)
        monotone = rng.random() < 0.5
        t, ts = rng.randint(0, 10**6), []
        for _ in range(n):
            t = min(max(0, t + rng.randint(0 if monotone else -interval - 5, 2 * interval + 5)),
                    (1 << 63) - 1)
            ts.append(t)
        armed = [rng.random() < 0.9 for _ in range(n)]
        quotable = [rng.random() < 0.8 for _ in range(n)]
        cfg = MarketMakerConfig(quote_policy="legacy" if legacy else "exchange",
                                refresh_interval_ns=interval)
        expected = SpecRefreshClock().decide_all(cfg, armed, quotable, ts)
        assert _run(legacy, interval, ts, armed, quotable) == expected, (legacy, interval, ts)
