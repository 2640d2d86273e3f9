"""The README quickstart, run as written, with its results checked by hand."""

from __future__ import annotations

import importlib
from decimal import Decimal as D

from backstop.engine.exchange import Exchange
from backstop.model.commands import Deposit, PlaceOrder, SetIndexPrice
from backstop.model.enums import OrderType, Side
from backstop.model.events import Deposited, Filled, MarkPriceUpdated, OrderPlaced, PositionChanged


def test_readme_import_path():
    assert importlib.import_module("backstop").Exchange is Exchange


def test_readme_quickstart():
    ex = Exchange(check_invariants=True)
    assert ex.execute(Deposit(ts=0, uid=1, ccy="USDT", amount=D("100000"))) == [
        Deposited(0, 1, "USDT", 100_000 * 100_000_000)]
    ex.execute(Deposit(ts=0, uid=2, ccy="USDT", amount=D("100000")))
    placed = ex.execute(PlaceOrder(ts=1, uid=1, inst_id="BTC-USDT-SWAP", side=Side.SELL,
                                   ord_type=OrderType.LIMIT, sz=D("10"), px=D("106800")))
    assert [type(e) for e in placed] == [OrderPlaced]
    events = ex.execute(PlaceOrder(ts=2, uid=2, inst_id="BTC-USDT-SWAP", side=Side.BUY,
                                   ord_type=OrderType.MARKET, sz=D("4")))
    assert [type(e) for e in events] == [OrderPlaced, Filled, PositionChanged, PositionChanged]
    fill = events[1]
    # 4 contracts = 400 lots at 106,800.0 = 1,068,000 ticks
    assert (fill.px_ticks, fill.lots, fill.taker_uid, fill.maker_uid) == (1_068_000, 400, 2, 1)
    # notional 0.04 BTC × 106,800 = $4,272: taker 0.05% = $2.136, maker 0.02% = $0.8544
    assert (fill.taker_fee, fill.maker_fee) == (213_600_000, 85_440_000)
    buyer, seller = events[2], events[3]
    assert (buyer.uid, buyer.size_lots, buyer.cost) == (2, 400, 4272 * 100_000_000)
    assert (seller.uid, seller.size_lots, seller.cost) == (1, -400, -4272 * 100_000_000)

    marks = ex.execute(SetIndexPrice(ts=3, inst_family="BTC-USDT", px=D("100000")))
    assert marks == [MarkPriceUpdated(3, "BTC-USDT-SWAP", 1_000_000, 1_000_000)]

    replayed = Exchange.replay(ex.log)
    assert replayed.state_hash() == ex.state_hash()
    assert len(ex.log) == 5
