"""MarketMakerConfig: documented defaults, validation of every field, TOML loading."""

import math
from fractions import Fraction

import pytest
from nanoquote.host.strategy.config import ConfigError, MarketMakerConfig, QuotePolicy


def test_documented_defaults():
    c = MarketMakerConfig()
    assert (c.base_spread_ticks, c.inventory_skew_factor, c.max_inventory, c.order_size) == (2, 0.5, 50, 5)
    assert (c.num_levels, c.min_edge_ticks, c.cancel_distance_ticks, c.tick_size) == (3, 1, 10, 25)
    assert c.refresh_interval_ns == 100_000_000
    assert c.quote_policy is QuotePolicy.EXCHANGE
    assert c.skew_q == 32768


def test_risk_defaults_follow_policy():
    exchange = MarketMakerConfig()
    assert exchange.collar_ticks == 100 and exchange.max_order_qty == 100
    assert exchange.max_quote_updates_per_sec == 50
    legacy = MarketMakerConfig(quote_policy="legacy")
    assert legacy.collar_ticks is None and legacy.max_order_qty is None
    assert legacy.max_quote_updates_per_sec is None
    assert MarketMakerConfig(collar_ticks=None).collar_ticks is None
    assert MarketMakerConfig(quote_policy="legacy", collar_ticks=7).collar_ticks == 7


@pytest.mark.parametrize(
    "field, value",
    [
        ("base_spread_ticks", 0), ("base_spread_ticks", 256), ("base_spread_ticks", 2.0),
        ("base_spread_ticks", True), ("max_inventory", -1), ("max_inventory", 32768),
        ("order_size", 0), ("order_size", 65536), ("num_levels", 0), ("num_levels", 9),
        ("min_edge_ticks", -1), ("min_edge_ticks", 256), ("cancel_distance_ticks", 65536),
        ("tick_size", 0), ("tick_size", 65536), ("refresh_interval_ns", -1),
        ("refresh_interval_ns", 1 << 63), ("inventory_skew_factor", -0.01),
        ("inventory_skew_factor", 1.0001), ("inventory_skew_factor", math.nan),
        ("inventory_skew_factor", math.inf), ("inventory_skew_factor", "0.5"),
        ("quote_policy", "fast"), ("tick_value", 0), ("tick_value", math.inf),
        ("collar_ticks", -1), ("max_order_qty", 0), ("max_quote_updates_per_sec", 0),
        ("max_levels", 0),
    ],
)
def test_rejects_out_of_domain(field, value):
    with pytest.raises(ConfigError) as info:
        MarketMakerConfig(**{field: value})
    message = str(info.value)
    assert repr(field) in message and "allowed" in message


def test_num_levels_limited_by_build_maximum():
    assert MarketMakerConfig(num_levels=8).num_levels == 8
    assert MarketMakerConfig(num_levels=12, max_levels=16).num_levels == 12
    with pytest.raises(ConfigError, match="1..4"):
        MarketMakerConfig(num_levels=5, max_levels=4)


def test_domain_edges_accepted():
    c = MarketMakerConfig(base_spread_ticks=255, max_inventory=32767, order_size=65535,
                          tick_size=65535, refresh_interval_ns=(1 << 63) - 1,
                          inventory_skew_factor=1, min_edge_ticks=255)
    assert c.skew_q == 65536
    assert MarketMakerConfig(max_inventory=0, inventory_skew_factor=0).skew_q == 0


def test_skew_quantization_is_exact_rounding():
    assert MarketMakerConfig(inventory_skew_factor=Fraction(1, 3)).skew_q == 21845
    assert MarketMakerConfig(inventory_skew_factor=0.1).skew_q == round(Fraction(0.1) * 65536)
    # Half-way rounds to even.
    assert MarketMakerConfig(inventory_skew_factor=Fraction(1, 131072)).skew_q == 0
    assert MarketMakerConfig(inventory_skew_factor=Fraction(3, 131072)).skew_q == 2


def test_from_toml(tmp_path):
    path = tmp_path / "mm.toml"
    path.write_text('[strategy]\nbase_spread_ticks = 4\nquote_policy = "legacy"\ntick_value = 5.0\n')
    c = MarketMakerConfig.from_toml(path)
    assert c.base_spread_ticks == 4 and c.is_legacy and c.tick_value == 5.0
    path.write_text("num_levels = 2\n")
    assert MarketMakerConfig.from_toml(path).num_levels == 2


def test_toml_errors(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("num_levels = \n")
    with pytest.raises(ConfigError, match="cannot read"):
        MarketMakerConfig.from_toml(path)
    path.write_text("levels = 2\n")
    with pytest.raises(ConfigError, match="unknown config field"):
        MarketMakerConfig.from_toml(path)
    with pytest.raises(ConfigError, match="cannot read"):
        MarketMakerConfig.from_toml(tmp_path / "missing.toml")
