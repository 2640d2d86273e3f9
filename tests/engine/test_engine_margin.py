"""Isolated margin, leverage, margin adjustments and withdrawals, with exact money.

BTC-USDT-SWAP at 100,000: 1 contract = $1,000; at the default 10x its IM is $100; the taker
fee on it is $0.50 and the maker fee $0.20. 1 USDT = 1e8 units.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from backstop.engine.exchange import Exchange
from backstop.model.commands import (
    AdjustMargin,
    Deposit,
    PlaceOrder,
    SetIndexPrice,
    SetLeverage,
    Withdraw,
)
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import LeverageSet, MarginAdjusted, PositionChanged, Rejected, Withdrawn
from backstop.state.ledger import cash_key, isolated_key

BTC = "BTC-USDT-SWAP"
U = 100_000_000
CROSS, ISO = MarginMode.CROSS, MarginMode.ISOLATED


def order(uid, side, sz, px=None, ord_type=OrderType.LIMIT, **kw):
    return PlaceOrder(0, uid, BTC, side, ord_type, D(sz), None if px is None else D(px), **kw)


def market(uid, side, sz, **kw):
    return order(uid, side, sz, ord_type=OrderType.MARKET, **kw)


@pytest.fixture
def ex(catalogue):
    ex = Exchange(catalogue, check_invariants=True)
    ex.execute(SetIndexPrice(0, "BTC-USDT", D("100000")))
    ex.execute(Deposit(0, 1, "USDT", D("1000000")))   # account 1: the market maker
    ex.execute(Deposit(0, 2, "USDT", D("1000")))      # account 2: the trader
    return ex


def cash(ex, uid):
    return ex.state.ledger.balance(cash_key(uid, "USDT"))


def iso(ex, uid):
    return ex.state.ledger.balance(isolated_key(uid, BTC, "USDT"))


def code(events):
    assert len(events) == 1 and isinstance(events[0], Rejected), events
    return events[0].code


@pytest.fixture
def long_iso(ex):
    """Account 2 buys 1 contract isolated at 100,000 (10x): $100 moves cash -> isolated."""
    ex.execute(order(1, Side.SELL, "5", "100000"))
    events = ex.execute(market(2, Side.BUY, "1", td_mode=ISO))
    (mine,) = [e for e in events if isinstance(e, PositionChanged) and e.uid == 2]
    assert (mine.mgn_mode, mine.size_lots, mine.margin) == ("isolated", 100, 100 * U)
    assert iso(ex, 2) == 100 * U
    assert cash(ex, 2) == 1000 * U - 100 * U - 50_000_000      # $1,000 − $100 IM − $0.50 fee
    return ex


def test_isolated_close_releases_margin_and_pays_pnl(long_iso):
    ex = long_iso
    ex.execute(SetIndexPrice(0, "BTC-USDT", D("101000")))
    ex.execute(order(1, Side.BUY, "1", "101000"))
    events = ex.execute(market(2, Side.SELL, "1", td_mode=ISO))
    (mine,) = [e for e in events if isinstance(e, PositionChanged) and e.uid == 2]
    # 0.01 BTC × (101,000 − 100,000) = +$10 realized; the $100 margin comes back
    assert (mine.size_lots, mine.margin, mine.realized_pnl) == (0, 0, 10 * U)
    assert iso(ex, 2) == 0
    # $1,000 − $0.50 (open fee) + $10 (pnl) − $0.505 (taker 0.05% of $1,010)
    assert cash(ex, 2) == 1000 * U - 50_000_000 + 10 * U - 50_500_000
    assert ex.state.existing_position(2, BTC, ISO) is None


def test_isolated_partial_close_releases_its_share(ex):
    ex.execute(order(1, Side.SELL, "5", "100000"))
    ex.execute(market(2, Side.BUY, "2", td_mode=ISO))
    assert iso(ex, 2) == 200 * U
    ex.execute(order(1, Side.BUY, "5", "100000"))
    ex.execute(market(2, Side.SELL, "0.5", td_mode=ISO))
    assert iso(ex, 2) == 150 * U                                  # 1.5/2 of $200 stays


def test_adjust_margin_add_and_reduce(long_iso):
    ex = long_iso
    before = cash(ex, 2)
    assert ex.execute(AdjustMargin(0, 2, BTC, D("50"))) == [MarginAdjusted(0, 2, BTC, 50 * U)]
    assert (iso(ex, 2), cash(ex, 2)) == (150 * U, before - 50 * U)
    # reducing by $60 would leave $90 < $100 IM
    assert code(ex.execute(AdjustMargin(0, 2, BTC, D("-60")))) == "51008"
    assert ex.execute(AdjustMargin(0, 2, BTC, D("-50"))) == [MarginAdjusted(0, 2, BTC, -50 * U)]
    assert (iso(ex, 2), cash(ex, 2)) == (100 * U, before)
    # adding more than the available cash ($899.50)
    assert code(ex.execute(AdjustMargin(0, 2, BTC, D("899.50000001")))) == "51008"
    assert ex.execute(AdjustMargin(0, 2, BTC, D("899.5")))[0].amount == 89_950_000_000


def test_adjust_margin_needs_an_isolated_position(ex):
    assert code(ex.execute(AdjustMargin(0, 2, BTC, D("10")))) == "51000"
    assert code(ex.execute(AdjustMargin(0, 2, "NOPE-USDT-SWAP", D("10")))) == "51001"


def test_set_leverage_changes_the_im_of_new_orders(ex):
    assert ex.execute(SetLeverage(0, 2, BTC, CROSS, D("20"))) == [LeverageSet(0, 2, BTC, "cross", 2000)]
    ex.execute(order(2, Side.BUY, "1", "100000"))
    assert ex.state.reserved(2, "USDT") == 50_2 * U // 10         # $1,000 at 20x + $0.20 fee
    # 66.66x on a fresh mode is within BTC-USDT's 100x: IM rounds up
    assert ex.execute(SetLeverage(0, 2, BTC, ISO, D("66.66")))[0].lever_cents == 6666


def test_isolated_leverage_lowered_tops_up_margin_from_cash(long_iso):
    ex = long_iso
    before = cash(ex, 2)
    events = ex.execute(SetLeverage(0, 2, BTC, ISO, D("5")))
    assert events == [LeverageSet(0, 2, BTC, "isolated", 500)]
    # IM at 5x on $1,000 = $200; the position held $100 (equity at mark = $100): top up $100
    assert iso(ex, 2) == 200 * U
    assert cash(ex, 2) == before - 100 * U


def test_isolated_leverage_raised_keeps_the_margin(long_iso):
    ex = long_iso
    ex.execute(SetLeverage(0, 2, BTC, ISO, D("20")))
    assert iso(ex, 2) == 100 * U


def test_isolated_leverage_top_up_without_cash_51008(long_iso):
    ex = long_iso
    # at 1x the IM is $1,000: $900 more than the position has, with $899.50 available
    assert code(ex.execute(SetLeverage(0, 2, BTC, ISO, D("1")))) == "51008"
    assert iso(ex, 2) == 100 * U


def test_cross_leverage_lowered_needs_available_51008(ex):
    ex.execute(order(1, Side.SELL, "5", "100000"))
    ex.execute(market(2, Side.BUY, "5"))     # $5,000 at 10x: $500 IM of $999.50 − fees
    # at 2x the IM is $2,500: not available
    assert code(ex.execute(SetLeverage(0, 2, BTC, CROSS, D("2")))) == "51008"
    # at 5x the IM is $1,000: $500 more, with $1,000 − $2.50 − $500 = $497.50 available
    assert code(ex.execute(SetLeverage(0, 2, BTC, CROSS, D("5")))) == "51008"
    assert ex.execute(SetLeverage(0, 2, BTC, CROSS, D("6")))[0].lever_cents == 600


def test_withdrawal_limited_to_available_58350(ex):
    ex.execute(order(1, Side.SELL, "5", "100000"))
    ex.execute(market(2, Side.BUY, "1"))
    # cash $999.50, IM $100: available $899.50
    assert code(ex.execute(Withdraw(0, 2, "USDT", D("899.50000001")))) == "58350"
    assert ex.execute(Withdraw(0, 2, "USDT", D("899.5"))) == [Withdrawn(0, 2, "USDT", 89_950_000_000)]
    assert cash(ex, 2) == 100 * U
    assert code(ex.execute(Withdraw(0, 2, "USDT", D("0.00000001")))) == "58350"


def test_unrealized_profit_cannot_be_withdrawn(ex):
    ex.execute(order(1, Side.SELL, "5", "100000"))
    ex.execute(market(2, Side.BUY, "1"))
    ex.execute(SetIndexPrice(0, "BTC-USDT", D("150000")))
    # upl +$500, IM $150: available 999.50 + 500 − 150 = $1,349.50, but only the $999.50 cash
    # can leave
    assert code(ex.execute(Withdraw(0, 2, "USDT", D("999.50000001")))) == "58350"
    assert ex.execute(Withdraw(0, 2, "USDT", D("999.5")))[0].amount == 99_950_000_000


def test_open_orders_reduce_the_withdrawable_amount(ex):
    ex.execute(order(2, Side.BUY, "2", "99000"))        # freezes $198 IM + $0.396 maker fee
    assert code(ex.execute(Withdraw(0, 2, "USDT", D("801.60400001")))) == "58350"
    assert ex.execute(Withdraw(0, 2, "USDT", D("801.604")))[0].amount == 801_604 * U // 1000


def test_withdrawal_of_a_currency_never_deposited(ex):
    assert code(ex.execute(Withdraw(0, 2, "BTC", D("0.1")))) == "58350"


def test_isolated_maker_with_exactly_its_im_stays_solvent(catalogue):
    ex = Exchange(catalogue, check_invariants=True)
    ex.execute(SetIndexPrice(0, "BTC-USDT", D("100000")))
    ex.execute(Deposit(0, 1, "USDT", D("10000")))
    ex.execute(Deposit(0, 3, "USDT", D("100")))
    # account 3: $100 is the IM of 1 contract at 10x but not the $0.20 maker fee: refused
    assert code(ex.execute(order(3, Side.SELL, "1", "100000", td_mode=ISO))) == "51008"
    ex.execute(Deposit(0, 3, "USDT", D("0.2")))
    assert ex.execute(order(3, Side.SELL, "1", "100000", td_mode=ISO))[0].sz_lots == 100
    # filled as maker: $100 moves to isolated margin and the $0.20 maker fee comes from cash
    ex.execute(market(1, Side.BUY, "1"))
    assert cash(ex, 3) >= 0
