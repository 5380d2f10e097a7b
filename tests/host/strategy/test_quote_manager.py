"""QuoteManager lifecycle, error reporting and deterministic listing (docs/spec.md §7)."""

from nanoquote.host.strategy.orders import OrderState, Side
from nanoquote.host.strategy.quote_manager import EventResult, QuoteManager


def submit(qm, side=Side.BUY, price=100, qty=5):
    order_id = qm.next_order_id()
    assert qm.on_order_submit(order_id, side, price, qty) is EventResult.OK
    return order_id


def test_ids_are_sequential_and_never_reused():
    qm = QuoteManager()
    assert [qm.next_order_id() for _ in range(3)] == [1, 2, 3]
    qm.clear()
    assert qm.next_order_id() == 4


def test_lifecycle_submit_ack_fill_cancel():
    qm = QuoteManager()
    a = submit(qm, Side.BUY, 100, 5)
    b = submit(qm, Side.SELL, 110, 3)
    assert qm.get(a).state is OrderState.PENDING_ACK
    assert qm.on_order_ack(a) is EventResult.OK and qm.get(a).state is OrderState.OPEN
    assert (qm.open_bid_qty, qm.open_ask_qty) == (5, 3)
    assert qm.on_fill(a, 2) is EventResult.OK and qm.get(a).remaining == 3
    assert qm.open_bid_qty == 3
    assert qm.request_cancel(a) is EventResult.OK and qm.get(a).state is OrderState.PENDING_CANCEL
    assert qm.open_bid_qty == 3  # pending-cancel is still live
    assert qm.on_fill(a, 1) is EventResult.OK  # a fill racing the cancel
    assert qm.on_cancel(a) is EventResult.OK and a not in qm
    assert qm.open_bid_qty == 0
    assert qm.on_fill(b, 3) is EventResult.OK and b not in qm  # fill before ack, to zero
    assert qm.open_ask_qty == 0 and len(qm) == 0 and qm.error_count == 0


def test_reject_removes_pending_order():
    qm = QuoteManager()
    a = submit(qm, qty=4)
    assert qm.on_order_reject(a) is EventResult.OK and a not in qm and qm.open_bid_qty == 0
    b = submit(qm, qty=4)
    qm.on_order_ack(b)
    assert qm.on_order_reject(b) is EventResult.REJECT_OF_LIVE_ORDER and b in qm and qm.open_bid_qty == 4
    # after a kill (pending-cancel) the order is still one the exchange accepted: kept
    qm.request_cancel(b, ts=5)
    assert qm.on_order_reject(b) is EventResult.REJECT_OF_LIVE_ORDER and b in qm and qm.open_bid_qty == 4
    c = submit(qm, qty=2)
    qm.on_fill(c, 1)  # filled before any ack: accepted by the exchange as well
    assert qm.on_order_reject(c) is EventResult.REJECT_OF_LIVE_ORDER and qm.get(c).remaining == 1


def test_cancel_reject_reopens_and_timeouts_are_reported_once():
    qm = QuoteManager()
    a, b = submit(qm, qty=3), submit(qm, qty=3)
    assert qm.on_cancel_reject(a) is EventResult.INVALID_STATE  # no cancel was sent
    qm.request_cancel(a, ts=100)
    qm.request_cancel(b, ts=150)
    assert qm.overdue_cancels(now=1100, timeout=1000) == []
    assert [o.id for o in qm.overdue_cancels(now=1101, timeout=1000)] == [a]
    assert [o.id for o in qm.overdue_cancels(now=5000, timeout=1000)] == [b]  # a reported once
    assert qm.on_cancel_reject(a) is EventResult.OK and qm.get(a).state is OrderState.OPEN
    qm.request_cancel(a, ts=6000)  # sent again: its timeout starts again
    assert [o.id for o in qm.overdue_cancels(now=7001, timeout=1000)] == [a]
    assert qm.on_cancel(b) is EventResult.OK and qm.on_cancel_reject(b) is EventResult.FINISHED


def test_ack_after_cancel_request_stays_pending_cancel():
    qm = QuoteManager()
    a = submit(qm)
    qm.request_cancel(a)
    assert qm.on_order_ack(a) is EventResult.OK and qm.get(a).state is OrderState.PENDING_CANCEL


def test_errors_are_reported_and_change_nothing():
    qm = QuoteManager()
    a = submit(qm, Side.BUY, 100, 5)
    qm.on_order_ack(a)
    done = submit(qm, Side.SELL, 120, 1)
    qm.on_fill(done, 1)
    before = ([(o.id, o.remaining, o.state) for o in qm.orders()], qm.open_bid_qty, qm.open_ask_qty)
    assert qm.on_order_ack(999) is EventResult.UNKNOWN_ID
    assert qm.on_fill(999, 1) is EventResult.UNKNOWN_ID
    assert qm.on_cancel(999) is EventResult.UNKNOWN_ID
    assert qm.on_order_ack(done) is EventResult.FINISHED
    assert qm.on_fill(done, 1) is EventResult.FINISHED
    assert qm.on_order_reject(done) is EventResult.FINISHED
    assert qm.on_order_ack(a) is EventResult.DUPLICATE
    assert qm.on_order_submit(a, Side.BUY, 100, 5) is EventResult.DUPLICATE
    assert qm.on_order_submit(done, Side.BUY, 100, 5) is EventResult.DUPLICATE
    assert qm.on_fill(a, 1, Side.SELL) is EventResult.WRONG_SIDE
    assert qm.on_fill(a, 0) is EventResult.INVALID_QUANTITY
    assert qm.request_cancel(999) is EventResult.UNKNOWN_ID
    after = ([(o.id, o.remaining, o.state) for o in qm.orders()], qm.open_bid_qty, qm.open_ask_qty)
    assert before == after
    assert qm.error_count == 12
    assert qm.error_counts[EventResult.FINISHED] == 3


def test_overfill_removes_order_and_keeps_totals_consistent():
    qm = QuoteManager()
    a = submit(qm, qty=5)
    assert qm.on_fill(a, 7) is EventResult.OVERFILL
    assert a not in qm and qm.open_bid_qty == 0 and qm.error_count == 1


def test_listing_order_is_by_side_then_price_priority_then_id():
    qm = QuoteManager()
    ids = [submit(qm, side, price) for side, price in
           [(Side.SELL, 105), (Side.BUY, 99), (Side.BUY, 100), (Side.SELL, 104), (Side.BUY, 100)]]
    listed = [(o.side, o.price, o.id) for o in qm.orders()]
    assert listed == [(Side.BUY, 100, ids[2]), (Side.BUY, 100, ids[4]), (Side.BUY, 99, ids[1]),
                      (Side.SELL, 104, ids[3]), (Side.SELL, 105, ids[0])]
    assert [o.id for o in qm.bid_orders] == [ids[2], ids[4], ids[1]]
    assert [o.id for o in qm.ask_orders] == [ids[3], ids[0]]


def test_external_ids_and_repeated_cancel_requests():
    qm = QuoteManager()
    assert qm.on_order_submit(10, Side.SELL, 101, 2) is EventResult.OK
    assert qm.next_order_id() == 11
    assert qm.live_qty(Side.SELL) == 2 and qm.live_qty("buy") == 0
    assert qm.on_order_submit(qm.next_order_id(), Side.BUY, 99, 0) is EventResult.INVALID_QUANTITY
    assert qm.request_cancel(10) is EventResult.OK
    assert qm.request_cancel(10) is EventResult.OK  # sending a cancel again is harmless
    assert qm.error_count == 1
