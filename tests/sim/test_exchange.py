"""The exchange simulator: queue position, partial fills, races, rejects and fees, by hand.

Every case is small enough to compute on paper; the comments give the arithmetic.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from nanoquote.host.strategy.orders import CancelOrder, NewOrder, Side
from nanoquote.sim.exchange import Exchange, ExchangeConfig
from nanoquote.sim.market import BookEvent, TradeEvent

BID, ASK = 100_000, 100_025
CONFIG = ExchangeConfig(tick=25, entry_latency_ns=10, ack_latency_ns=5, fill_latency_ns=7,
                        cancel_latency_ns=3, hidden_queue_qty=20, fee_per_lot=Fraction(1, 10),
                        maker_rebate_per_lot="0.25")


def _exchange(bid_qty: int = 8, ask_qty: int = 10, bid: int = BID, ask: int = ASK) -> Exchange:
    exchange = Exchange(CONFIG)
    exchange.on_market(BookEvent(0, bid, ask, bid_qty, ask_qty))
    return exchange


def _rest(exchange: Exchange, order_id: int, side: Side, price: int, qty: int, now: int = 1) -> None:
    (answer,) = exchange.submit(NewOrder(order_id, side, price, qty), now - 1, now)
    assert answer.kind == "ack", answer


def _fills(messages) -> list[tuple[int, int]]:
    return [(m.order_id, m.qty) for m in messages if m.kind == "fill"]


def _ahead(exchange: Exchange) -> dict[int, tuple[int, int]]:
    return {r.id: (r.ahead, r.remaining) for r in exchange.resting()}


def test_two_orders_at_one_price_queue_behind_the_displayed_size():
    exchange = _exchange(ask_qty=10)
    _rest(exchange, 1, Side.SELL, ASK, 5)
    _rest(exchange, 2, Side.SELL, ASK, 3)
    assert _ahead(exchange) == {1: (10, 5), 2: (10, 3)}  # both behind the 10 displayed
    # 8 lots lifted: all from the 10 ahead, nothing reaches us
    assert _fills(exchange.on_market(TradeEvent(2, ASK, 8, Side.BUY))) == []
    assert _ahead(exchange) == {1: (2, 5), 2: (2, 3)}
    # 4 lots: the 2 others still ahead, then 2 of order 1 (partial fill)
    assert _fills(exchange.on_market(TradeEvent(3, ASK, 4, Side.BUY))) == [(1, 2)]
    assert _ahead(exchange) == {1: (0, 3), 2: (0, 3)}
    # 10 lots: order 1's last 3, then order 2's 3; 4 left over for others behind
    assert _fills(exchange.on_market(TradeEvent(4, ASK, 10, Side.BUY))) == [(1, 3), (2, 3)]
    assert exchange.resting() == ()
    assert exchange.true_position == -8  # 2 + 3 + 3 lots sold


def test_a_trade_smaller_than_the_queue_ahead_fills_nothing_and_a_trade_through_fills_all():
    exchange = _exchange(bid_qty=8)
    _rest(exchange, 1, Side.BUY, BID, 4)  # at the best: 8 ahead
    _rest(exchange, 2, Side.BUY, BID - 25, 6)  # behind the best: the hidden 20 ahead
    assert _ahead(exchange) == {1: (8, 4), 2: (20, 6)}
    assert _fills(exchange.on_market(TradeEvent(2, BID, 7, Side.SELL))) == []
    assert _ahead(exchange) == {1: (1, 4), 2: (20, 6)}  # a print at BID leaves BID-25's queue alone
    # a sell print two ticks down trades through both bids: each fills completely at its price
    messages = exchange.on_market(TradeEvent(3, BID - 50, 1, Side.SELL))
    assert [(m.order_id, m.price, m.qty) for m in messages] == [(1, BID, 4), (2, BID - 25, 6)]
    assert exchange.true_position == 10


def test_the_book_moving_through_an_order_fills_it_and_a_shrinking_queue_moves_it_up():
    exchange = _exchange(ask_qty=10)
    _rest(exchange, 1, Side.SELL, ASK, 5)
    _rest(exchange, 2, Side.SELL, ASK + 25, 2)
    exchange.on_market(BookEvent(2, BID, ASK, 8, 6))  # 4 of the 10 ahead left the queue
    assert _ahead(exchange) == {1: (6, 5), 2: (20, 2)}
    exchange.on_market(BookEvent(3, BID, ASK, 8, 9))  # newcomers join behind: still 6 ahead
    assert _ahead(exchange)[1] == (6, 5)
    messages = exchange.on_market(BookEvent(4, ASK, ASK + 50, 3, 3))  # bid now at order 1's ask
    assert [(m.order_id, m.price, m.qty, m.sent_ns, m.arrive_ns) for m in messages] == [(1, ASK, 5, 4, 11)]
    # order 2 at ASK+25 is now better than the best ask: nobody ahead of it
    assert _ahead(exchange) == {2: (0, 2)}
    assert _fills(exchange.on_market(TradeEvent(5, ASK + 25, 1, Side.BUY))) == [(2, 1)]


def test_an_order_inside_the_spread_has_nobody_ahead():
    exchange = _exchange(bid=BID, ask=BID + 50)
    _rest(exchange, 1, Side.SELL, BID + 25, 3)
    assert _ahead(exchange) == {1: (0, 3)}
    assert _fills(exchange.on_market(TradeEvent(2, BID + 25, 2, Side.BUY))) == [(1, 2)]


@pytest.mark.parametrize("fill_first", [True, False], ids=["fill-then-cancel", "cancel-then-trade"])
def test_a_cancel_racing_a_fill(fill_first):
    exchange = _exchange(ask_qty=1)
    _rest(exchange, 1, Side.SELL, ASK, 5)
    sent = 100
    arrival = exchange.arrival_ns(sent)
    assert arrival == 110
    trade_ts = arrival - 5 if fill_first else arrival + 5
    answers = []
    for ts in sorted((trade_ts, arrival)):
        if ts == arrival:
            answers += exchange.cancel(CancelOrder(1), sent, arrival)
        else:
            answers += exchange.on_market(TradeEvent(ts, ASK, 20, Side.BUY))
    got = [(m.kind, m.order_id, m.qty, m.reason, m.sent_ns, m.arrive_ns) for m in answers]
    if fill_first:  # the order is gone when the cancel arrives: "unknown order"
        assert got == [("fill", 1, 5, None, 105, 112), ("cancel-reject", 1, None, "unknown-order", 110, 113)]
        assert exchange.true_position == -5
    else:  # cancelled first: the print finds nothing of ours
        assert got == [("cancel", 1, None, None, 110, 113)]
        assert exchange.true_position == 0
    assert exchange.resting() == ()


def test_a_partial_fill_then_a_cancel_of_the_rest():
    exchange = _exchange(ask_qty=1)
    _rest(exchange, 1, Side.SELL, ASK, 5)
    assert _fills(exchange.on_market(TradeEvent(2, ASK, 3, Side.BUY))) == [(1, 2)]  # 1 ahead, then 2 of 5
    assert [m.kind for m in exchange.cancel(CancelOrder(1), 2, 12)] == ["cancel"]
    assert exchange.true_position == -2


def test_post_only_off_grid_and_other_rejects():
    exchange = _exchange()
    _rest(exchange, 1, Side.SELL, ASK + 50, 1)
    cases = [
        (NewOrder(2, Side.BUY, ASK, 1), "post-only"),  # at the best ask: would take
        (NewOrder(3, Side.SELL, BID, 1), "post-only"),  # at the best bid
        (NewOrder(4, Side.BUY, BID - 12, 1), "off-grid"),  # legacy's half-tick price
        (NewOrder(5, Side.BUY, BID, 0), "bad-quantity"),
        (NewOrder(1, Side.BUY, BID, 1), "duplicate-id"),
        (NewOrder(2, Side.BUY, BID, 1), "duplicate-id"),  # a rejected id is used too
        (NewOrder(6, Side.BUY, 0, 1), "bad-price"),
    ]
    for order, reason in cases:
        (answer,) = exchange.submit(order, 1, 11)
        assert (answer.kind, answer.reason, answer.arrive_ns) == ("reject", reason, 16), order
    # crossing our own resting ask is refused as well (no self-trade); a price below it rests
    wide = _exchange(bid=BID, ask=BID + 100)
    _rest(wide, 1, Side.SELL, BID + 50, 1)
    (answer,) = wide.submit(NewOrder(2, Side.BUY, BID + 50, 1), 1, 11)
    assert answer.reason == "post-only"
    _rest(wide, 3, Side.BUY, BID + 25, 1)
    assert dict(exchange.rejects) == {"post-only": 2, "off-grid": 1, "bad-quantity": 1, "duplicate-id": 2,
                                      "bad-price": 1}


def test_fees_and_maker_rebates_are_exact_per_lot():
    exchange = _exchange(ask_qty=1)
    _rest(exchange, 1, Side.SELL, ASK, 7)
    (fill,) = exchange.on_market(TradeEvent(2, ASK, 4, Side.BUY))  # 1 ahead, 3 for us
    # 3 lots: fee 3 * 1/10 = 3/10, rebate 3 * 1/4 = 3/4, net fee -9/20 (a maker earns)
    assert (fill.qty, fill.fee, fill.rebate, fill.net_fee) == (3, Fraction(3, 10), Fraction(3, 4), Fraction(-9, 20))
    no_rebate = Exchange(ExchangeConfig(fee_per_lot="0.35", maker_rebate_per_lot=0))
    no_rebate.on_market(BookEvent(0, BID, ASK, 1, 1))
    no_rebate.submit(NewOrder(1, Side.BUY, BID, 2), 0, 0)
    (fill,) = no_rebate.on_market(TradeEvent(1, BID, 3, Side.SELL))
    assert (fill.qty, fill.net_fee) == (2, Fraction(7, 10))


def test_the_log_holds_every_message_in_and_out():
    exchange = _exchange(ask_qty=1)
    exchange.submit(NewOrder(1, Side.SELL, ASK, 2), 0, 10)
    exchange.on_market(TradeEvent(20, ASK, 5, Side.BUY))
    exchange.cancel(CancelOrder(1), 21, 31)
    assert [(m.direction, m.kind, m.sent_ns, m.arrive_ns) for m in exchange.messages] == [
        ("in", "new", 0, 10), ("out", "ack", 10, 15), ("out", "fill", 20, 27),
        ("in", "cancel", 21, 31), ("out", "cancel-reject", 31, 34)]


@pytest.mark.parametrize("field, value", [("tick", 0), ("entry_latency_ns", -1), ("fee_per_lot", 0.1),
                                          ("maker_rebate_per_lot", "-1"), ("fee_per_lot", "abc"),
                                          ("hidden_queue_qty", True)])
def test_bad_configurations_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        ExchangeConfig(**{field: value})
