"""Order types, matching through the engine, self-trade prevention and trading fees.

BTC-USDT-SWAP at index 100,000: 1 contract = 0.01 BTC = $1,000 = 100 lots; 1 USDT = 1e8
units; default leverage 10x, so a resting contract freezes $100 of IM.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from backstop.engine.exchange import Exchange
from backstop.model.commands import CancelOrder, Deposit, PlaceOrder, SetIndexPrice
from backstop.model.enums import MarginMode, OrderType, SelfTradeMode, Side
from backstop.model.events import Filled, OrderCancelled, OrderPlaced, PositionChanged
from backstop.state.book import BUY, SELL
from backstop.state.ledger import cash_key, fees_key

BTC = "BTC-USDT-SWAP"
INV = "BTC-USD-SWAP"
U = 100_000_000


def order(uid, side, sz, px=None, ord_type=OrderType.LIMIT, inst=BTC, **kw):
    return PlaceOrder(0, uid, inst, side, ord_type, D(sz), None if px is None else D(px), **kw)


def kinds(events):
    return [type(e).__name__ for e in events]


@pytest.fixture
def ex(catalogue):
    ex = Exchange(catalogue, check_invariants=True)
    ex.execute(SetIndexPrice(0, "BTC-USDT", D("100000")))
    ex.execute(SetIndexPrice(0, "BTC-USD", D("100000")))
    for uid in (1, 2, 3):
        ex.execute(Deposit(0, uid, "USDT", D("100000")))
        ex.execute(Deposit(0, uid, "BTC", D("1")))
    return ex


@pytest.fixture
def asks(ex):
    """Account 1 offers 1 @ 100,000.0, 1 @ 100,000.1, 2 @ 100,000.2 (ticks 1,000,000..2)."""
    ids = [ex.execute(order(1, Side.SELL, sz, px))[0].ord_id
           for sz, px in (("1", "100000"), ("1", "100000.1"), ("2", "100000.2"))]
    assert ex.state.books[BTC].depth(SELL, 5) == [(1_000_000, 100, 1), (1_000_001, 100, 1),
                                                  (1_000_002, 200, 1)]
    return ids


def test_limit_order_rests_and_freezes_its_im(ex):
    events = ex.execute(order(2, Side.BUY, "1", "99000"))
    assert kinds(events) == ["OrderPlaced"]
    placed = events[0]
    assert (placed.px_ticks, placed.sz_lots, placed.side, placed.ord_type) == (990_000, 100, "buy", "limit")
    assert ex.state.books[BTC].depth(BUY, 1) == [(990_000, 100, 1)]
    # $990 notional at 10x: $99 IM + $0.198 maker fee (0.02%) frozen
    assert ex.state.reserved(2, "USDT") == 99_198 * U // 1000
    # cancelling releases it
    cancelled = ex.execute(CancelOrder(0, 2, BTC, placed.ord_id))
    assert cancelled == [OrderCancelled(0, placed.ord_id, 2, BTC, 100, "user")]
    assert ex.state.reserved(2, "USDT") == 0
    assert ex.state.books[BTC].depth(BUY, 1) == []


def test_order_ids_increase(ex):
    a = ex.execute(order(2, Side.BUY, "1", "99000"))[0].ord_id
    b = ex.execute(order(3, Side.BUY, "1", "99000"))[0].ord_id
    assert b == a + 1


def test_limit_order_fills_partly_then_rests_the_rest(ex, asks):
    events = ex.execute(order(2, Side.BUY, "3", "100000"))
    assert kinds(events) == ["OrderPlaced", "Filled", "PositionChanged", "PositionChanged"]
    assert events[1].lots == 100 and events[1].px_ticks == 1_000_000
    # 2 contracts rest at 100,000: $2,000 at 10x = $200 IM + $0.40 maker fee frozen
    assert ex.state.books[BTC].depth(BUY, 1) == [(1_000_000, 200, 1)]
    assert ex.state.reserved(2, "USDT") == 200_4 * U // 10


def test_market_order_sweeps_several_levels(ex, asks):
    events = ex.execute(order(2, Side.BUY, "3", ord_type=OrderType.MARKET))
    fills = [e for e in events if isinstance(e, Filled)]
    assert [(f.px_ticks, f.lots, f.maker_ord_id) for f in fills] == [
        (1_000_000, 100, asks[0]), (1_000_001, 100, asks[1]), (1_000_002, 100, asks[2])]
    assert ex.state.books[BTC].depth(SELL, 5) == [(1_000_002, 100, 1)]
    pos = ex.state.existing_position(2, BTC, MarginMode.CROSS)
    # cost basis = Σ lots·ticks·1000 = 100·(1,000,000 + 1,000,001 + 1,000,002)·1000
    assert pos.size_lots == 300 and pos.cost == 100 * 3_000_003 * 1000
    assert not any(isinstance(e, OrderCancelled) for e in events)


def test_market_order_remainder_is_cancelled(ex, asks):
    events = ex.execute(order(2, Side.BUY, "10", ord_type=OrderType.MARKET))
    assert sum(e.lots for e in events if isinstance(e, Filled)) == 400
    last = events[-1]
    assert isinstance(last, OrderCancelled)
    assert (last.remaining_lots, last.reason) == (600, "market")
    assert ex.state.books[BTC].depth(SELL, 5) == []
    assert ex.state.books[BTC].depth(BUY, 5) == []      # nothing rested


def test_market_order_on_an_empty_book_is_placed_and_cancelled(ex):
    events = ex.execute(order(2, Side.SELL, "1", ord_type=OrderType.MARKET))
    assert kinds(events) == ["OrderPlaced", "OrderCancelled"]
    assert events[1].remaining_lots == 100 and events[1].reason == "market"


def test_ioc_fills_what_it_can_within_its_price_and_cancels_the_rest(ex, asks):
    events = ex.execute(order(2, Side.BUY, "5", "100000.1", OrderType.IOC))
    assert [(f.px_ticks, f.lots) for f in events if isinstance(f, Filled)] == [
        (1_000_000, 100), (1_000_001, 100)]
    assert isinstance(events[-1], OrderCancelled)
    assert (events[-1].remaining_lots, events[-1].reason) == (300, "ioc")
    assert ex.state.books[BTC].depth(SELL, 5) == [(1_000_002, 200, 1)]   # beyond its limit
    assert ex.state.books[BTC].depth(BUY, 5) == []
    assert ex.state.reserved(2, "USDT") == 0


def test_post_only_that_would_cross_is_placed_then_cancelled(ex, asks):
    before = ex.state.books[BTC].depth(SELL, 5)
    events = ex.execute(order(2, Side.BUY, "1", "100000", OrderType.POST_ONLY))
    assert kinds(events) == ["OrderPlaced", "OrderCancelled"]
    assert events[1].reason == "post_only" and events[1].remaining_lots == 100
    assert events[1].ord_id == events[0].ord_id
    assert ex.state.books[BTC].depth(SELL, 5) == before
    assert ex.state.existing_position(2, BTC, MarginMode.CROSS) is None
    assert ex.state.reserved(2, "USDT") == 0


def test_post_only_that_does_not_cross_rests(ex, asks):
    events = ex.execute(order(2, Side.BUY, "1", "99999.9", OrderType.POST_ONLY))
    assert kinds(events) == ["OrderPlaced"]
    assert ex.state.books[BTC].best_bid() == 999_999


def test_fok_is_all_or_nothing(ex, asks):
    before = ex.state.books[BTC].depth(SELL, 5)
    # 4 contracts are offered up to 100,000.2; 5 cannot fill whole
    events = ex.execute(order(2, Side.BUY, "5", "100000.2", OrderType.FOK))
    assert kinds(events) == ["OrderPlaced", "OrderCancelled"]
    assert events[1].reason == "fok" and events[1].remaining_lots == 500
    assert ex.state.books[BTC].depth(SELL, 5) == before
    # 4 contracts within 100,000.1 are only 2: also refused whole
    events = ex.execute(order(2, Side.BUY, "3", "100000.1", OrderType.FOK))
    assert events[-1].reason == "fok"
    # 4 within 100,000.2: fills entirely, nothing cancelled
    events = ex.execute(order(2, Side.BUY, "4", "100000.2", OrderType.FOK))
    assert sum(e.lots for e in events if isinstance(e, Filled)) == 400
    assert not any(isinstance(e, OrderCancelled) for e in events)
    assert ex.state.books[BTC].depth(SELL, 5) == []


def test_maker_frozen_margin_released_as_it_fills(ex):
    placed = ex.execute(order(1, Side.SELL, "4", "100000"))[0]
    # $4,000 at 10x = $400 IM, plus the $0.80 maker fee it pays when filled (0.02%)
    assert ex.state.reserved(1, "USDT") == 400_8 * U // 10
    ex.execute(order(2, Side.BUY, "1", ord_type=OrderType.MARKET))
    assert ex.state.reserved(1, "USDT") == 300_6 * U // 10  # 3/4 left: $300 + $0.60
    ex.execute(order(2, Side.BUY, "3", ord_type=OrderType.MARKET))
    assert ex.state.reserved(1, "USDT") == 0
    assert placed.ord_id not in ex.state.open_orders.get(1, {})


# ----------------------------------------------------------------- self-trade prevention

def test_stp_cancel_maker_cancels_own_resting_order_and_trades_on(ex):
    own = ex.execute(order(2, Side.SELL, "1", "100000"))[0]
    other = ex.execute(order(1, Side.SELL, "1", "100000.1"))[0]
    events = ex.execute(order(2, Side.BUY, "1", ord_type=OrderType.MARKET))
    assert OrderCancelled(0, own.ord_id, 2, BTC, 100, "self_trade") in events
    fills = [e for e in events if isinstance(e, Filled)]
    assert [(f.maker_ord_id, f.maker_uid, f.lots) for f in fills] == [(other.ord_id, 1, 100)]


def test_stp_cancel_taker_keeps_the_resting_order(ex):
    own = ex.execute(order(2, Side.SELL, "1", "100000"))[0]
    events = ex.execute(order(2, Side.BUY, "1", "100000", stp_mode=SelfTradeMode.CANCEL_TAKER))
    assert kinds(events) == ["OrderPlaced", "OrderCancelled"]
    assert events[1].reason == "self_trade" and events[1].ord_id == events[0].ord_id
    assert own.ord_id in ex.state.books[BTC].orders
    assert ex.state.books[BTC].depth(BUY, 1) == []      # the taker did not rest either


def test_stp_cancel_both(ex):
    own = ex.execute(order(2, Side.SELL, "1", "100000"))[0]
    events = ex.execute(order(2, Side.BUY, "1", "100000", stp_mode=SelfTradeMode.CANCEL_BOTH))
    reasons = [(e.ord_id, e.reason) for e in events if isinstance(e, OrderCancelled)]
    assert reasons == [(own.ord_id, "self_trade"), (events[0].ord_id, "self_trade")]
    assert ex.state.books[BTC].orders == {}
    assert ex.state.reserved(2, "USDT") == 0


# ----------------------------------------------------------------- fees

FEES = [
    # inst, contracts, price, taker fee units, maker fee units
    # 2 BTC-USDT contracts at 100,000 = $2,000: taker 0.05% = $1, maker 0.02% = $0.40
    (BTC, "2", "100000", 100_000_000, 40_000_000),
    # one lot (0.0001 BTC) at 100,000.1 = $10.00001: taker 500,000.5 units -> 500,001 (up),
    # maker 200,000.2 -> 200,001 (up)
    (BTC, "0.01", "100000.1", 500_001, 200_001),
    # 1 BTC-USD contract ($100) at 100,000 = 0.001 BTC = 100,000 units: taker 50, maker 20
    (INV, "1", "100000", 50, 20),
    # 0.1 BTC-USD contract ($10) at 99,999.9: notional ceil(1e10/999,999) = 10,001 units;
    # taker 5.0005 -> 6, maker 2.0002 -> 3
    (INV, "0.1", "99999.9", 6, 3),
]


@pytest.mark.parametrize(("inst", "sz", "px", "taker_fee", "maker_fee"), FEES)
def test_fees_go_to_the_fee_account(ex, inst, sz, px, taker_fee, maker_fee):
    ccy = "USDT" if inst == BTC else "BTC"
    cash1, cash2 = (ex.state.ledger.balance(cash_key(u, ccy)) for u in (1, 2))
    ex.execute(order(1, Side.SELL, sz, px, inst=inst))
    events = ex.execute(order(2, Side.BUY, sz, ord_type=OrderType.MARKET, inst=inst))
    (fill,) = [e for e in events if isinstance(e, Filled)]
    assert (fill.taker_fee, fill.maker_fee) == (taker_fee, maker_fee)
    assert (fill.taker_uid, fill.maker_uid, fill.taker_side) == (2, 1, "buy")
    assert ex.state.ledger.balance(fees_key(ccy)) == taker_fee + maker_fee
    # cross positions at the fill price: cash changes by the fee only
    assert ex.state.ledger.balance(cash_key(2, ccy)) == cash2 - taker_fee
    assert ex.state.ledger.balance(cash_key(1, ccy)) == cash1 - maker_fee
    changes = [e for e in events if isinstance(e, PositionChanged)]
    assert [(c.uid, c.realized_pnl) for c in changes] == [(2, 0), (1, 0)]


def test_placed_event_echoes_the_client_id(ex):
    events = ex.execute(order(2, Side.BUY, "1", "99000", cl_ord_id="bot7"))
    assert isinstance(events[0], OrderPlaced) and events[0].cl_ord_id == "bot7"
