"""``nanoquote demo`` runs the golden strategy end to end on a seeded market."""

from nanoquote.host.apps.demo import run_demo
from nanoquote.host.strategy.config import MarketMakerConfig

from nanoquote.cli import main


def test_demo_is_deterministic_and_consistent():
    a = run_demo(3, 800, MarketMakerConfig())
    b = run_demo(3, 800, MarketMakerConfig())
    assert (a.orders, a.cancels, a.fills) == (b.orders, b.cancels, b.fills)
    s = a.strategy
    assert a.updates == 800 and a.orders > 0 and a.fills > 0
    assert s.quote_manager.error_count == 0
    assert abs(s.position) <= s.config.max_inventory
    assert s.base.fill_count == a.fills


def test_demo_command_prints_summary(capsys):
    assert main(["demo", "--updates", "300", "--seed", "2", "--policy", "legacy"]) == 0
    out = capsys.readouterr().out
    assert "policy=legacy seed=2" in out and "book updates      300" in out
