"""BaseStrategy: exact average cost, realized P&L on reductions and flips, marks, fees."""

from fractions import Fraction

import pytest
from nanoquote.host.strategy.base_strategy import BaseStrategy
from nanoquote.host.strategy.orders import Fill, Side


def strategy():
    return BaseStrategy("t", 1, tick_size=25, tick_value=12.5)


def test_average_cost_is_exact():
    s = strategy()
    s.apply_fill(Fill(1, Side.BUY, 100, 1))
    s.apply_fill(Fill(2, Side.BUY, 101, 2))
    assert s.avg_entry == Fraction(302, 3) and s.position == 3


def test_realized_on_reduction_and_flip():
    s = strategy()
    s.apply_fill(Fill(1, Side.BUY, 1000, 4, fee=1.0))
    s.apply_fill(Fill(2, Side.SELL, 1050, 1, fee=0.5))  # +50 raw = 2 ticks on 1 lot = 25.0
    assert s.realized_pnl == pytest.approx(25.0 - 1.5)
    assert s.position == 3 and s.avg_entry == 1000
    s.apply_fill(Fill(3, Side.SELL, 975, 5))  # close 3 at -25 raw (-37.5), open -2 at 975
    assert s.realized_pnl == pytest.approx(25.0 - 37.5 - 1.5)
    assert s.position == -2 and s.avg_entry == 975 and s.round_trips == 1
    s.apply_fill(Fill(4, Side.BUY, 925, 2))  # short covered 50 raw lower: +2 ticks * 2 lots
    assert s.position == 0 and s.avg_entry is None and s.round_trips == 2
    assert s.realized_pnl == pytest.approx(25.0 - 37.5 + 50.0 - 1.5)
    assert s.fill_count == 4 and s.fees == pytest.approx(1.5)


def test_unrealized_marked_to_mid():
    s = strategy()
    assert s.unrealized_pnl == 0.0
    s.apply_fill(Fill(1, Side.SELL, 2000, 2))
    s.update_mark(1950)
    assert s.unrealized_pnl == pytest.approx(2 * 2 * 12.5)
    s.update_mark(None)  # no mid: unchanged
    assert s.unrealized_pnl == pytest.approx(50.0)
    assert s.total_pnl == pytest.approx(50.0)


def test_money_uses_tick_size_not_hundredths():
    s = BaseStrategy("t", 1, tick_size=10, tick_value=5.0)
    s.apply_fill(Fill(1, Side.BUY, 1000, 1))
    s.apply_fill(Fill(2, Side.SELL, 1003, 1))
    assert s.realized_pnl == pytest.approx(0.3 * 5.0)
