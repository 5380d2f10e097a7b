"""The bit-accurate model (nanoquote.hw.model) and the host coefficients against the golden model.

Every expectation is independent of the model: the golden ``build_ladder`` (through
``sim.scenario.expect``), exact ``Fraction`` arithmetic, or hand-computed values.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.hw.contract.coefficients import (
    SKEW_COEF_BITS,
    PipelineParams,
    recip_bits,
    skew_coefficient,
    two_tick_reciprocal,
)
from nanoquote.hw.contract.widths import DatapathWidths
from nanoquote.hw.model import coefficient_stage, ladder
from nanoquote.sim.conformance.reference import golden_ladder
from nanoquote.sim.conformance.scenario import expect
from nanoquote.sim.conformance.vectors import SMALL_GRID, exhaustive_scenario, random_scenario
from nanoquote.sim.port_codec import PortCodec

WIDTHS = DatapathWidths()
PMAX = WIDTHS.price_max


def _assert_model_matches(segments, seed: int | None = None) -> int:
    exp = expect(segments, WIDTHS)
    bad = exp.model_mismatches
    if bad:
        codec = PortCodec(WIDTHS.max_levels, WIDTHS.price_bits)
        k = bad[0]
        s_idx, i = exp.origin[k]
        seg = segments[s_idx]
        diff = codec.decode(exp.model[k]).diff(codec.decode(exp.golden[k]))
        pytest.fail(f"seed {seed}: {len(bad)} model mismatches; first #{k}: config {seg.config}, "
                    f"position {seg.position}, live {seg.live_bid}/{seg.live_ask}, book "
                    f"{seg.books()[i]}: {diff}")
    return len(exp.golden)


@pytest.mark.parametrize("policy", ["exchange", "legacy"])
@pytest.mark.parametrize("seed", [1, 2])
def test_model_matches_golden_random(policy: str, seed: int) -> None:
    rng = random.Random(seed)
    segments = random_scenario(rng, policy, 15_000, 8, 31, segment_size=(10, 120))
    print(f"seed {seed}")
    assert _assert_model_matches(segments, seed) == 15_000


@pytest.mark.parametrize("policy", ["exchange", "legacy"])
def test_model_matches_golden_small_exhaustive_grid(policy: str) -> None:
    """Every position in [-M-2, M+2] x every residue of bid+ask mod 2T, small grid."""
    segments = exhaustive_scenario(policy, 8, 31, SMALL_GRID)
    assert _assert_model_matches(segments) > 15_000


def test_model_other_build_parameters() -> None:
    """A 3-level, 24-bit-price build: the widths follow the parameters."""
    widths = DatapathWidths(3, 24)
    rng = random.Random(5)
    for policy in ("exchange", "legacy"):
        for seg in random_scenario(rng, policy, 3000, 3, 24, segment_size=(20, 100)):
            params = seg.params(24)
            co = coefficient_stage(params, seg.position, seg.live_bid, seg.live_ask, widths)
            out = ladder(co, seg.bid, seg.ask, seg.has_bid, seg.has_ask)
            for k, book in enumerate(seg.books()):
                g = golden_ladder(seg.config, book, seg.position, seg.live_bid, seg.live_ask,
                                  3, widths.price_max)
                got = (tuple(out.bid_price[k]), tuple(out.ask_price[k]), int(out.bid_post[k]),
                       int(out.ask_post[k]), int(out.out_of_domain[k]))
                assert got == (g.bid_price, g.ask_price, g.bid_post, g.ask_post,
                               g.out_of_domain), (seg.config, seg.position, book)


_configs = st.builds(
    MarketMakerConfig,
    base_spread_ticks=st.integers(1, 255),
    inventory_skew_factor=st.one_of(st.sampled_from([0, 1, Fraction(1, 3)]),
                                    st.fractions(0, 1, max_denominator=1 << 20)),
    max_inventory=st.one_of(st.integers(0, 3), st.integers(0, 32767)),
    order_size=st.integers(1, 65535),
    num_levels=st.integers(1, 8),
    min_edge_ticks=st.integers(0, 255),
    tick_size=st.one_of(st.integers(1, 4), st.integers(1, 65535)),
    quote_policy=st.sampled_from(["exchange", "legacy"]),
)


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(config=_configs, position=st.integers(-32767, 32767),
       live=st.tuples(st.integers(0, (1 << 32) - 1), st.integers(0, 200)),
       bid=st.integers(1, PMAX), ask=st.integers(1, PMAX),
       sides=st.sampled_from([(True, True)] * 6 + [(False, True), (True, False)]))
def test_model_matches_golden_hypothesis(config, position, live, bid, ask, sides) -> None:
    params = PipelineParams.from_config(config)
    co = coefficient_stage(params, position, live[0], live[1])
    out = ladder(co, np.array([bid]), np.array([ask]), np.array([sides[0]]), np.array([sides[1]]))
    book = BookUpdate(0, bid if sides[0] else None, ask if sides[1] else None)
    g = golden_ladder(config, book, position, live[0], live[1], 8, PMAX)
    assert tuple(out.bid_price[0]) == g.bid_price
    assert tuple(out.ask_price[0]) == g.ask_price
    assert (int(out.bid_post[0]), int(out.ask_post[0])) == (g.bid_post, g.ask_post)
    assert (int(out.bid_count[0]), int(out.ask_count[0])) == (g.bid_count, g.ask_count)
    assert int(out.out_of_domain[0]) == g.out_of_domain
    assert (bool(out.no_mid[0]), bool(out.crossed[0])) == (g.no_mid, g.crossed)


# -- host coefficients ------------------------------------------------------------------


@pytest.mark.parametrize("tick", [1, 2, 3, 7, 25, 4096, 40001, 65534, 65535])
def test_two_tick_reciprocal_gives_exact_floor_division(tick: int) -> None:
    m = two_tick_reciprocal(tick)
    assert m < 1 << recip_bits() and m == math.ceil(Fraction(1 << 49, 2 * tick))
    d = 2 * tick
    rng = random.Random(tick)
    top = 2 * PMAX  # largest P = bid + ask
    samples = [0, 1, d - 1, d, d + 1, top, top - 1] + [rng.randint(0, top) for _ in range(2000)]
    samples += [k * d + r for k in (top // d - 1, top // d) for r in (0, d - 1) if k * d + r <= top]
    for p in samples:
        assert (p * m) >> 49 == p // d, (tick, p)


def test_reciprocal_needs_49_bits_at_tick_1() -> None:
    assert two_tick_reciprocal(1) == 1 << 48
    assert recip_bits() == 49


@pytest.mark.parametrize("legacy", [False, True])
def test_skew_coefficient_floor_and_exactness(legacy: bool) -> None:
    """floor(a*C / 2**47) = floor(a*c), and a*c is an integer iff (a*C mod 2**47) < 2**15."""
    rng = random.Random(11 + legacy)
    cases = [(65536, 255, 65535, 1), (65536, 1, 1, 32767), (21845, 3, 25, 50), (0, 2, 25, 50)]
    cases += [(rng.randint(0, 65536), rng.randint(1, 255), rng.randint(1, 65535),
               rng.randint(1, 32767)) for _ in range(300)]
    for q, b, t, m in cases:
        coef = skew_coefficient(legacy, q, b, t, m)
        assert coef < 1 << SKEW_COEF_BITS
        c = Fraction(q * b * (1 if legacy else 2 * t), m * 65536)
        for a in {0, 1, m, rng.randint(0, m), m // 3, m - 1}:
            if a < 0:
                continue
            prod = a * coef
            assert prod >> 47 == math.floor(a * c), (q, b, t, m, a)
            assert ((prod & ((1 << 47) - 1)) < (1 << 15)) == ((a * c).denominator == 1)


def test_skew_coefficient_zero_without_inventory() -> None:
    assert skew_coefficient(False, 65536, 2, 25, 0) == 0


def test_pipeline_params_from_config_fields() -> None:
    cfg = MarketMakerConfig(quote_policy="legacy", tick_size=25, base_spread_ticks=2,
                            inventory_skew_factor=0.5, max_inventory=50, num_levels=3)
    p = PipelineParams.from_config(cfg)
    assert p.legacy == 1 and p.tick == 25 and p.num_levels == 3 and p.max_inventory == 50
    assert p.two_tick_recip == math.ceil(Fraction(1 << 49, 50))
    assert p.skew_coef == math.ceil(Fraction(32768 * 2, 50 * 65536) * (1 << 47))
    assert p.refresh_interval == 100_000_000


def test_model_hand_computed_default_config() -> None:
    """docs/spec.md §2 defaults, exchange: B=2, T=25, q=0.5, M=50, N=3, e=1; flat position.

    bid 1000, ask 1050: mid 1025, r = 1025, bid0 = 25*floor((1025-25)/25) = 1000,
    ask0 = 25*ceil(1050/25) = 1050; min-edge: floor((1025-25)/25)*25 = 1000, ceil(1050/25)*25.
    """
    cfg = MarketMakerConfig(num_levels=3)
    co = coefficient_stage(PipelineParams.from_config(cfg), 0, 0, 0)
    out = ladder(co, np.array([1000]), np.array([1050]), np.array([True]), np.array([True]))
    assert tuple(out.bid_price[0][:3]) == (1000, 975, 950)
    assert tuple(out.ask_price[0][:3]) == (1050, 1075, 1100)
    # long 25 of 50: skew = 25*0.5*2*25/50 = 12.5 raw: r = 1012.5 -> bid0 = 975, ask0 = 1050
    co = coefficient_stage(PipelineParams.from_config(cfg), 25, 0, 0)
    out = ladder(co, np.array([1000]), np.array([1050]), np.array([True]), np.array([True]))
    assert int(out.bid_price[0][0]) == 975 and int(out.ask_price[0][0]) == 1050
