"""Funding settlement and the mark price, checked by hand."""

from __future__ import annotations

from backstop.model.commands import SettleFunding
from backstop.model.enums import MarginMode, Side
from backstop.model.events import FundingPaid, FundingRateSet, InsuranceFundChanged, MarkPriceUpdated

U = 100_000_000
BTC = "BTC-USDT-SWAP"
CROSS, ISO = MarginMode.CROSS, MarginMode.ISOLATED
BUY, SELL = Side.BUY, Side.SELL


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_positive_rate_longs_pay_shorts_zero_sum_but_dust(liq_market):
    m = liq_market(index="100000.3")
    for uid in (1, 2, 3):
        m.deposit(uid, "100000")
    m.lever(1, 10, ISO)
    m.limit(3, SELL, "0.07", "100000.3")        # 7 lots short
    m.market(1, BUY, "0.03", ISO)               # 3 lots long, isolated
    m.market(2, BUY, "0.04")                    # 4 lots long, cross
    before = {uid: (m.cash(uid), m.margin(uid)) for uid in (1, 2, 3)}
    fund_before = m.fund()
    events = m.run(SettleFunding(1, BTC))
    # no premium samples → rate = the interest 0.01% (10,000 in 1e-8)
    assert [r.rate_e8 for r in of(events, FundingRateSet)] == [10_000]
    # notional in 1e-8 USDT: lots × 1,000,003 ticks × 1,000; × 0.0001:
    #   A: 3 lots → 300,000.9 → pays 300,001 (rounded up), from its isolated margin
    #   B: 4 lots → 400,001.2 → pays 400,002
    #   C: 7 lots → 700,002.1 → receives 700,002 (rounded down); dust 1 → fund
    paid = {(p.uid, p.mgn_mode): p.amount for p in of(events, FundingPaid)}
    assert paid == {(1, "isolated"): -300_001, (2, "cross"): -400_002, (3, "cross"): 700_002}
    assert m.margin(1) == before[1][1] - 300_001 and m.cash(1) == before[1][0]
    assert m.cash(2) == before[2][0] - 400_002
    assert m.cash(3) == before[3][0] + 700_002
    assert m.fund() - fund_before == 1
    assert sum(paid.values()) + (m.fund() - fund_before) == 0
    # the dust, then the settlement's regular_update snapshot of the fund
    assert [(r.type, r.amt) for r in of(events, InsuranceFundChanged)] == [
        ("platform_revenue", 1), ("regular_update", 0)]


def _quote(m, bid, ask, uid=50):
    m.deposit(uid, "100000000")
    m.limit(uid, BUY, 1, bid)
    m.limit(uid, SELL, 1, ask)


def test_premium_samples_from_book_mid_and_rate_clamped_to_cap(liq_market):
    m = liq_market()
    _quote(m, "110000", "110010")
    m.index("100000")
    # mid = (1,100,000 + 1,100,100) / 2 = 1,100,050 ticks; premium = 100,050 / 1,000,000 =
    # 10.005% = 10,005,000 in 1e-8
    assert m.state.premiums_e8[BTC] == [10_005_000]
    rate = of(m.run(SettleFunding(1, BTC)), FundingRateSet)
    assert [r.rate_e8 for r in rate] == [375_000]  # the BTC cap, 0.375%
    assert m.state.premiums_e8[BTC] == []


def test_negative_premium_clamped_to_floor_and_mild_premium(liq_market):
    m = liq_market()
    _quote(m, "89990", "90010")
    m.index("100000")  # premium −10% → −0.375%
    assert [r.rate_e8 for r in of(m.run(SettleFunding(1, BTC)), FundingRateSet)] == [-375_000]
    m2 = liq_market()
    _quote(m2, "100090", "100110")
    m2.index("100000")
    # premium 0.1% (100,000 e-8): rate = 0.1% + clamp(0.01% − 0.1%, ±0.05%) = 0.05%
    assert m2.state.premiums_e8[BTC] == [100_000]
    assert [r.rate_e8 for r in of(m2.run(SettleFunding(1, BTC)), FundingRateSet)] == [50_000]


def test_mark_is_index_plus_clamped_ema_basis(liq_market):
    m = liq_market({"mark": {"smoothing": "0.5", "basis_clamp": "0.005"}}, index=None)
    _quote(m, "100100", "100300")
    # mid 100,200, index 100,000 → sample +200 USDT (2,000 ticks); EMA from 0 with weight ½:
    # basis 1,000 ticks → mark 100,100.0
    mark = of(m.index("100000"), MarkPriceUpdated)[0]
    assert (mark.index_ticks, mark.mark_ticks) == (1_000_000, 1_001_000)
    # again: 1,000 + (2,000 − 1,000)/2 = 1,500 → 100,150.0
    assert of(m.index("100000"), MarkPriceUpdated)[0].mark_ticks == 1_001_500
    # a mid of 101,000 (sample 10,000 ticks): 1,500 + 4,250 = 5,750, clamped to 0.5% of the
    # index = 500 USDT = 5,000 ticks → mark 100,500.0
    for ord_id in sorted(m.state.open_orders[50]):
        m.cancel(50, ord_id)
    _quote(m, "100900", "101100")
    assert of(m.index("100000"), MarkPriceUpdated)[0].mark_ticks == 1_005_000
