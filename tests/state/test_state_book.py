"""The order book: price-time priority, partial fills, cancel, read-only planning, STP, depth."""

from __future__ import annotations

import pytest

from backstop.state.book import (
    BUY,
    SELL,
    STP_CANCEL_BOTH,
    STP_CANCEL_MAKER,
    STP_CANCEL_TAKER,
    OrderBook,
    RestingOrder,
)


def _book(*orders: tuple[int, int, int, int, int]) -> OrderBook:
    """Orders as ``(ord_id, owner, side, px, lots)``, rested in the given (time) order."""
    book = OrderBook()
    for ord_id, owner, side, px, lots in orders:
        book.rest(RestingOrder(ord_id, owner, side, px, lots))
    return book


def _fills(plan):
    return [(maker.ord_id, qty, px) for maker, qty, px in plan.fills]


def _snapshot(book: OrderBook):
    return (
        list(book.bid_prices), list(book.ask_prices),
        {px: [(o.ord_id, o.remaining) for o in level.values()] for px, level in book.bids.items()},
        {px: [(o.ord_id, o.remaining) for o in level.values()] for px, level in book.asks.items()},
        {i: o.remaining for i, o in book.orders.items()},
    )


def test_empty_book():
    book = OrderBook()
    assert book.best_bid() is None and book.best_ask() is None
    assert not book.is_crossed()
    assert book.depth(BUY, 5) == [] and book.depth(SELL, 5) == []
    plan = book.plan_match(BUY, None, 10, owner=1)
    assert plan.fills == [] and plan.filled_lots == 0


def test_best_prices_and_crossed_detection():
    book = _book((1, 1, BUY, 99, 5), (2, 1, BUY, 100, 5), (3, 2, SELL, 102, 5), (4, 2, SELL, 101, 5))
    assert book.best_bid() == 100
    assert book.best_ask() == 101
    assert not book.is_crossed()
    book.rest(RestingOrder(5, 3, BUY, 101, 1))   # the caller is meant to prevent this
    assert book.is_crossed()


def test_would_cross():
    book = _book((1, 1, BUY, 100, 5), (2, 2, SELL, 102, 5))
    assert book.would_cross(BUY, 102) and book.would_cross(BUY, 103)
    assert not book.would_cross(BUY, 101)
    assert book.would_cross(SELL, 100) and not book.would_cross(SELL, 101)


def test_price_priority_then_time_priority():
    # asks: 101 (ids 3 then 4, in time order), 100 (id 5, rested last but better priced)
    book = _book((3, 1, SELL, 101, 2), (4, 2, SELL, 101, 2), (5, 3, SELL, 100, 2))
    plan = book.plan_match(BUY, None, 5, owner=9)
    # best price first (id 5 at 100), then the older order at 101 (id 3), then id 4 partly
    assert _fills(plan) == [(5, 2, 100), (3, 2, 101), (4, 1, 101)]
    assert plan.filled_lots == 5


def test_sell_taker_walks_bids_from_the_highest():
    book = _book((1, 1, BUY, 98, 1), (2, 1, BUY, 100, 1), (3, 1, BUY, 99, 1))
    plan = book.plan_match(SELL, None, 3, owner=2)
    assert [px for _o, _q, px in plan.fills] == [100, 99, 98]


def test_limit_price_stops_the_walk():
    book = _book((1, 1, SELL, 100, 3), (2, 1, SELL, 101, 3), (3, 1, SELL, 102, 3))
    plan = book.plan_match(BUY, 101, 10, owner=2)
    assert _fills(plan) == [(1, 3, 100), (2, 3, 101)]
    assert plan.filled_lots == 6     # 4 lots would have to rest or be cancelled by the engine
    plan = book.plan_match(SELL, 100, 10, owner=2)   # no bids at all
    assert plan.filled_lots == 0


def test_market_order_sweeps_several_levels_and_apply_updates_the_book():
    book = _book((1, 1, SELL, 100, 2), (2, 1, SELL, 101, 3), (3, 1, SELL, 102, 4), (4, 1, SELL, 103, 5))
    plan = book.plan_match(BUY, None, 8, owner=2)
    assert _fills(plan) == [(1, 2, 100), (2, 3, 101), (3, 3, 102)]
    book.apply_plan(plan)
    # levels 100 and 101 emptied and removed; 102 keeps 1 lot of order 3; 103 untouched
    assert book.ask_prices == [102, 103]
    assert set(book.asks) == {102, 103}
    assert book.orders[3].remaining == 1
    assert 1 not in book.orders and 2 not in book.orders
    assert book.depth(SELL, 5) == [(102, 1, 1), (103, 5, 1)]


def test_partial_fill_keeps_time_priority():
    book = _book((1, 1, SELL, 100, 5), (2, 2, SELL, 100, 5))
    book.apply_plan(book.plan_match(BUY, 100, 3, owner=3))
    assert book.orders[1].remaining == 2
    # the partly filled order is still first in its level
    plan = book.plan_match(BUY, 100, 3, owner=3)
    assert _fills(plan) == [(1, 2, 100), (2, 1, 100)]


def test_plan_match_does_not_mutate():
    book = _book((1, 1, SELL, 100, 2), (2, 2, SELL, 101, 3), (3, 4, BUY, 99, 1), (4, 3, SELL, 101, 1))
    before = _snapshot(book)
    plan = book.plan_match(BUY, None, 100, owner=3, stp=STP_CANCEL_MAKER)
    assert plan.filled_lots == 5 and plan.stp_cancelled   # order 4 is the taker's own
    assert _snapshot(book) == before


def test_cancel():
    book = _book((1, 1, BUY, 100, 5), (2, 2, BUY, 100, 5), (3, 2, BUY, 99, 1))
    removed = book.cancel(1)
    assert removed is not None and removed.ord_id == 1 and removed.remaining == 5
    assert book.depth(BUY, 5) == [(100, 5, 1), (99, 1, 1)]
    assert book.cancel(1) is None          # not resting any more
    assert book.cancel(12345) is None      # never existed
    book.cancel(2)
    assert book.bid_prices == [99] and 100 not in book.bids
    assert book.best_bid() == 99


def test_depth_aggregates_levels_best_first():
    book = _book((1, 1, BUY, 100, 2), (2, 2, BUY, 100, 3), (3, 1, BUY, 98, 1), (4, 1, BUY, 99, 4),
                 (5, 3, SELL, 105, 7), (6, 3, SELL, 103, 1), (7, 4, SELL, 103, 2))
    assert book.depth(BUY, 2) == [(100, 5, 2), (99, 4, 1)]
    assert book.depth(BUY, 10) == [(100, 5, 2), (99, 4, 1), (98, 1, 1)]
    assert book.depth(SELL, 10) == [(103, 3, 2), (105, 7, 1)]


# --------------------------------------------------------------------- self-trade prevention

def _stp_book() -> OrderBook:
    # asks at 100: order 1 of someone else, then order 2 of the taker (owner 7), then order 3
    return _book((1, 1, SELL, 100, 1), (2, 7, SELL, 100, 5), (3, 2, SELL, 100, 5))


def test_stp_cancel_maker_skips_and_cancels_own_order():
    book = _stp_book()
    plan = book.plan_match(BUY, None, 4, owner=7, stp=STP_CANCEL_MAKER)
    assert _fills(plan) == [(1, 1, 100), (3, 3, 100)]
    assert [o.ord_id for o in plan.stp_cancelled] == [2]
    assert not plan.taker_stp_cancelled
    book.apply_plan(plan)
    assert 2 not in book.orders
    assert book.orders[3].remaining == 2


def test_stp_cancel_taker_stops_at_own_order_and_keeps_it():
    book = _stp_book()
    plan = book.plan_match(BUY, None, 4, owner=7, stp=STP_CANCEL_TAKER)
    assert _fills(plan) == [(1, 1, 100)]
    assert plan.stp_cancelled == []
    assert plan.taker_stp_cancelled
    assert plan.filled_lots == 1
    book.apply_plan(plan)
    assert book.orders[2].remaining == 5


def test_stp_cancel_both():
    book = _stp_book()
    plan = book.plan_match(BUY, None, 4, owner=7, stp=STP_CANCEL_BOTH)
    assert _fills(plan) == [(1, 1, 100)]
    assert [o.ord_id for o in plan.stp_cancelled] == [2]
    assert plan.taker_stp_cancelled
    book.apply_plan(plan)
    assert 2 not in book.orders and book.orders[3].remaining == 5


@pytest.mark.parametrize("stp", [STP_CANCEL_MAKER, STP_CANCEL_TAKER, STP_CANCEL_BOTH])
def test_no_stp_effect_against_other_owners(stp):
    book = _book((1, 1, SELL, 100, 2), (2, 2, SELL, 101, 2))
    plan = book.plan_match(BUY, None, 3, owner=3, stp=stp)
    assert _fills(plan) == [(1, 2, 100), (2, 1, 101)]
    assert not plan.stp_cancelled and not plan.taker_stp_cancelled
