"""Realized PnL worked by hand, net-mode flips, and an inverse (BTC-USD-SWAP) round trip with
exact money. 1 USDT or 1 BTC = 1e8 units."""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction

import pytest

from backstop.engine.exchange import Exchange
from backstop.model.commands import Deposit, PlaceOrder, SetIndexPrice
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import Filled, PositionChanged
from backstop.state.ledger import cash_key, clearing_key, fees_key

BTC = "BTC-USDT-SWAP"
INV = "BTC-USD-SWAP"
U = 100_000_000


def order(uid, side, sz, px=None, ord_type=OrderType.LIMIT, inst=BTC, **kw):
    return PlaceOrder(0, uid, inst, side, ord_type, D(sz), None if px is None else D(px), **kw)


def trade(ex, maker, taker, taker_side, sz, px, inst=BTC):
    """``maker`` rests at ``px``; ``taker`` takes it with a market order. Returns the taker's
    PositionChanged."""
    ex.execute(order(maker, taker_side.opposite, sz, px, inst=inst))
    events = ex.execute(order(taker, taker_side, sz, ord_type=OrderType.MARKET, inst=inst))
    assert sum(e.lots for e in events if isinstance(e, Filled)) > 0
    return [e for e in events if isinstance(e, PositionChanged) and e.uid == taker][-1]


def _ceil(f: Fraction) -> int:
    return -((-f.numerator) // f.denominator)


@pytest.fixture
def ex(catalogue):
    ex = Exchange(catalogue, check_invariants=True)
    ex.execute(SetIndexPrice(0, "BTC-USDT", D("100000")))
    ex.execute(SetIndexPrice(0, "BTC-USD", D("100000")))
    for uid in (1, 2):
        ex.execute(Deposit(0, uid, "USDT", D("100000")))
        ex.execute(Deposit(0, uid, "BTC", D("1")))
    return ex


def test_realized_pnl_worked_example(ex):
    # buy 3 contracts at 100,000 and 1 at 104,000: 0.04 BTC at an average of 101,000
    trade(ex, 1, 2, Side.BUY, "3", "100000")
    trade(ex, 1, 2, Side.BUY, "1", "104000")
    pos = ex.state.existing_position(2, BTC, MarginMode.CROSS)
    assert pos.size_lots == 400
    assert pos.cost == (300 * 1_000_000 + 100 * 1_040_000) * 1000     # $4,040 of cost basis
    # sell 2 at 102,000: 0.02 BTC × (102,000 − 101,000) = +$20
    ex.execute(SetIndexPrice(0, "BTC-USDT", D("102000")))
    change = trade(ex, 1, 2, Side.SELL, "2", "102000")
    assert (change.size_lots, change.realized_pnl) == (200, 20 * U)
    assert change.cost == 202_000 * 1000 * 1000                       # half the basis: $2,020
    # cash: 100,000 − taker fees (1.50 + 0.52 + 1.02) + 20 realized
    assert ex.state.ledger.balance(cash_key(2, "USDT")) == (
        100_000 * U - 150_000_000 - 52_000_000 - 102_000_000 + 20 * U)
    # account 1 (short 2 left) realized the opposite −$20 on the 2 it bought back:
    # its basis was −(3×100,000 + 1×104,000)·0.01; closing half at 102,000 loses 0.02 × 1,000
    assert ex.state.existing_position(1, BTC, MarginMode.CROSS).realized_pnl == -20 * U


def test_short_realized_pnl(ex):
    trade(ex, 1, 2, Side.SELL, "2", "100000")                         # account 2 short 0.02 BTC
    ex.execute(SetIndexPrice(0, "BTC-USDT", D("95000")))
    change = trade(ex, 1, 2, Side.BUY, "2", "95000")                   # buys back 5% lower
    # 0.02 BTC × 5,000 = +$100
    assert (change.size_lots, change.cost, change.realized_pnl) == (0, 0, 100 * U)


def test_net_mode_flip_closes_then_opens(ex):
    trade(ex, 1, 2, Side.BUY, "1", "100000")                          # long 1 at 100,000
    ex.execute(SetIndexPrice(0, "BTC-USDT", D("101000")))
    change = trade(ex, 1, 2, Side.SELL, "3", "101000")                 # sells 3 at 101,000
    # closes 1 (+$10) and opens a 2-contract short whose basis is −2 × $1,010
    assert change.size_lots == -200
    assert change.realized_pnl == 10 * U
    assert change.cost == -202_000_000_000


def test_inverse_round_trip_exact_money(ex):
    # account 2 buys $1,000 (10 contracts = 100 lots) of BTC-USD at 100,000 from account 1
    change = trade(ex, 1, 2, Side.BUY, "10", "100000", inst=INV)
    assert change.size_lots == 100
    assert change.cost == -1_000_000          # $1,000 / 100,000 = 0.01 BTC paid
    ex.execute(SetIndexPrice(0, "BTC-USD", D("125000")))
    # and sells it back at 125,000: 1,000·(1/100,000 − 1/125,000) = 0.002 BTC profit
    change = trade(ex, 1, 2, Side.SELL, "10", "125000", inst=INV)
    assert (change.size_lots, change.cost, change.realized_pnl) == (0, 0, 200_000)
    # fees: open 0.01 BTC notional -> taker 500, maker 200; close 0.008 BTC -> taker 400, maker 160
    ledger = ex.state.ledger
    assert ledger.balance(cash_key(2, "BTC")) == U - 500 + 200_000 - 400
    assert ledger.balance(cash_key(1, "BTC")) == U - 200 - 200_000 - 160
    assert ledger.balance(fees_key("BTC")) == 500 + 200 + 400 + 160
    assert ledger.balance(clearing_key(INV, "BTC")) == 0       # nothing left unsettled
    # the USDT books were never touched
    assert ledger.balance(cash_key(2, "USDT")) == 100_000 * U


def test_inverse_round_trip_at_awkward_prices_conserves_exactly(ex):
    # 7 contracts ($700 = 70 lots) bought at 99,999.9 and sold at 123,456.7
    trade(ex, 1, 2, Side.BUY, "7", "99999.9", inst=INV)
    ex.execute(SetIndexPrice(0, "BTC-USD", D("123456.7")))
    change = trade(ex, 1, 2, Side.SELL, "7", "123456.7", inst=INV)
    # each fill's value is one figure both sides share: ceil($700/px) in units of 1e-8 BTC
    paid = _ceil(Fraction(70 * 10**10, 999_999))            # 0.00700000700... -> up
    received = _ceil(Fraction(70 * 10**10, 1_234_567))      # 0.00567000... -> up
    assert change.realized_pnl == paid - received
    fees2 = (_ceil(Fraction(paid * 500, 10**6)) + _ceil(Fraction(received * 500, 10**6)))
    fees1 = (_ceil(Fraction(paid * 200, 10**6)) + _ceil(Fraction(received * 200, 10**6)))
    ledger = ex.state.ledger
    assert ledger.balance(cash_key(2, "BTC")) == U + (paid - received) - fees2
    assert ledger.balance(cash_key(1, "BTC")) == U - (paid - received) - fees1
    # both deposits are accounted for to the unit
    assert (ledger.balance(cash_key(1, "BTC")) + ledger.balance(cash_key(2, "BTC"))
            + ledger.balance(fees_key("BTC"))) == 2 * U
