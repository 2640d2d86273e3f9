"""Money safety: one named regression test per finding of the adversarial review (issue 9),
each with the review's own numbers. Every command runs with every invariant checked
(``LiqMarket``): conservation, no negative cash, reserved money or isolated margin, no fund
below zero, ADL only in a recorded state.

BTC-USDT-SWAP: 1 contract = 0.01 BTC = 100 lots; 100,000.0 = 1,000,000 ticks; 1 USDT = 1e8.
"""

from __future__ import annotations

import random
from decimal import Decimal as D

import pytest

from backstop.engine.deficits import apply_cover_deficits
from backstop.engine.queries import liquidation_ticks, max_margin_reduction, max_withdrawal
from backstop.math.adl import AdlCandidate, rank_candidates
from backstop.model.commands import (
    AdjustMargin,
    CancelOrder,
    Deposit,
    InjectInsuranceFund,
    PlaceOrder,
    SetIndexPrice,
    SetLeverage,
    Withdraw,
)
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import (
    AdlStateChanged,
    AutoDeleveraged,
    DeficitCovered,
    Filled,
    InsuranceFundChanged,
    LiquidationSettled,
    LiquidationStarted,
    OrderCancelled,
    PositionChanged,
    Rejected,
)
from backstop.state.insurance import InsuranceFund
from backstop.state.ledger import cash_key, clearing_key, isolated_key

U = 100_000_000
BTC, ETH = "BTC-USDT-SWAP", "ETH-USDT-SWAP"
CROSS, ISO = MarginMode.CROSS, MarginMode.ISOLATED
BUY, SELL = Side.BUY, Side.SELL
RICH = "100000000"
OKX_BAND = {"price_limit": {"band": "0.05"}}


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def rejected(events, code):
    assert [e.code for e in of(events, Rejected)] == [code], events
    return events[0]


# -- finding 1: unrealized profit can be withdrawn ------------------------------------------

def _profitable_isolated_long(liq_market):
    """0.01 BTC 10× isolated long at 100,000 (margin 100 USDT, fee 0.5) on a 1,100 deposit;
    the index then rises to 150,000 (+500 unrealized)."""
    m = liq_market()
    m.deposit(99, RICH)
    m.deposit(1, "1100")
    m.lever(1, 10, ISO)
    m.trade(1, BUY, 1, "100000", taker_mode=ISO)
    assert m.margin(1) == 100 * U and m.cash(1) == 9_995 * U // 10
    m.ts = 1
    m.index("150000")
    return m


def test_f1_unrealized_profit_cannot_leave_through_a_margin_reduction(liq_market):
    m = _profitable_isolated_long(liq_market)
    pos = m.state.existing_position(1, BTC, ISO)
    inst = m.catalogue.get(BTC)
    # margin 100 stays at or above its IM at the mark (0.01 × 150,000 / 10 = 150): nothing
    # can come out, and never the 500 of profit
    assert max_margin_reduction(m.state, pos, inst) == 0
    rejected(m.run(AdjustMargin(2, 1, BTC, D("-450"))), "51008")
    rejected(m.run(AdjustMargin(2, 1, BTC, D("-0.00000001"))), "51008")
    assert m.margin(1) == 100 * U
    # so the account can withdraw its free cash, 999.5, and not the 1,449.5 of the review
    assert max_withdrawal(m.state, 1, "USDT") == 9_995 * U // 10
    rejected(m.run(Withdraw(3, 1, "USDT", D("1449.5"))), "58350")
    m.ok(Withdraw(3, 1, "USDT", D("999.5")))
    assert m.cash(1) == 0 and m.margin(1) == 100 * U


def test_f1_margin_reduction_bound_counts_a_loss_but_not_a_profit(liq_market):
    m = liq_market()
    m.deposit(99, RICH)
    m.deposit(1, "2000")
    m.lever(1, 10, ISO)
    m.trade(1, BUY, 1, "100000", taker_mode=ISO)
    m.ok(AdjustMargin(1, 1, BTC, D("400")))          # margin 500, IM at the mark 100
    pos, inst = m.state.existing_position(1, BTC, ISO), m.catalogue.get(BTC)
    assert max_margin_reduction(m.state, pos, inst) == 400 * U
    m.index("90000")                                  # upl −100, IM 90: 500 − 100 − 90 = 310
    assert max_margin_reduction(m.state, pos, inst) == 310 * U
    rejected(m.run(AdjustMargin(2, 1, BTC, D("-310.00000001"))), "51008")
    m.ok(AdjustMargin(2, 1, BTC, D("-310")))
    assert m.margin(1) == 190 * U


# -- finding 2: ADL moved losses across instruments and broke isolation ---------------------

def _cross_loser_with_eth_and_btc(liq_market, winner_mode):
    """Account 1 is cross long 10 ETH at 2,500 and 0.01 BTC at 100,000 on 500 USDT. Account 5
    is short the 0.01 BTC at 100,000 (``winner_mode``); account 6 short the ETH at 2,500.
    No bids anywhere: the liquidations cannot go through the book."""
    m = liq_market()
    m.index("2500", "ETH-USDT")
    for uid in (5, 6, 99):
        m.deposit(uid, "100000")
    m.deposit(1, "500")
    m.lever(1, 100, CROSS, ETH)
    m.lever(1, 100, CROSS, BTC)
    m.lever(5, 10, winner_mode)
    m.limit(6, SELL, 100, "2500", CROSS, ETH)
    m.market(1, BUY, 100, CROSS, ETH)
    m.limit(5, SELL, 1, "100000", winner_mode)
    m.market(1, BUY, 1, CROSS, BTC)
    return m


@pytest.mark.parametrize("winner_mode", [CROSS, ISO])
def test_f2_adl_price_is_never_set_by_another_instruments_losses(liq_market, winner_mode):
    m = _cross_loser_with_eth_and_btc(liq_market, winner_mode)
    m.ts = 1
    m.index("99000")                       # BTC down 1%: the winner is +10 unrealized
    cash_before = m.cash(5) + m.margin(5) if winner_mode is ISO else m.cash(5)
    free_cash_before = m.cash(5)
    m.ts = 2
    events = m.index("25", "ETH-USDT")     # ETH −99%: account 1 is deeply bankrupt
    adl = [a for a in of(events, AutoDeleveraged) if a.inst_id == BTC]
    assert [(a.uid, a.lots) for a in adl] == [(5, 100)]
    # the review saw 111,792.5 (the cross bankruptcy price with ETH's loss in it); the BTC
    # slice now closes no higher than the winner's own entry, 100,000
    assert adl[0].px_ticks <= 1_000_000
    winner = [p for p in of(events, PositionChanged) if p.uid == 5 and p.inst_id == BTC]
    assert winner[-1].size_lots == 0 and winner[-1].realized_pnl >= 0
    after = m.cash(5) + (m.margin(5) if winner_mode is ISO else 0)
    assert after >= cash_before            # it realized no loss: principal untouched
    assert m.cash(5) >= free_cash_before   # and an isolated winner's cross cash is untouched
    assert m.cash(1) == 0 and m.size(1, CROSS, BTC) == 0 and m.size(1, CROSS, ETH) == 0


# -- finding 3: reserved margin was a number, not money -------------------------------------

def test_f3_cross_liquidation_cancels_the_accounts_isolated_orders_too(liq_market):
    m = liq_market()
    m.deposit(99, RICH)
    m.deposit(1, "120")
    m.lever(1, 100, CROSS)
    m.trade(1, BUY, 10, "100000")                      # 0.1 BTC cross at 100×: IM 100, fee 5
    m.lever(1, 10, ISO)
    placed = m.limit(1, BUY, D("0.1"), "99000", ISO)   # reserves 9.9 IM + 0.0198 fee
    assert m.state.reserved(1, "USDT") == 99_198 * U // 10_000
    m.ts = 1
    events = m.index("99000")                          # −100 on the cross long: liquidated
    cancelled = [(c.ord_id, c.reason) for c in of(events, OrderCancelled) if c.uid == 1]
    # the review's isolated order stayed live and later filled from cash the fund had
    # taken (−150.3); it draws on the same wallet, so it goes with the cross unit
    assert cancelled == [(placed[0].ord_id, "liquidation")]
    assert m.state.reserved(1, "USDT") == 0 and m.cash(1) >= 0
    assert not m.state.open_orders.get(1)


def test_f3_lowering_leverage_re_reserves_resting_orders_or_is_refused(liq_market):
    m = liq_market()
    m.deposit(99, RICH)
    m.deposit(2, "1020")
    m.lever(2, 100, CROSS)
    m.limit(2, BUY, 100, "100000")                     # 1 BTC at 100×: reserves 1,000 + 20 fee
    assert m.state.reserved(2, "USDT") == 1_020 * U
    # at 10× the order needs 10,000 + 20: the account cannot afford it (the review took
    # −985.2 from cash at the fill)
    rejected(m.run(SetLeverage(1, 2, BTC, CROSS, D("10"))), "51008")
    m.deposit(2, "9000")
    m.ok(SetLeverage(2, 2, BTC, CROSS, D("10")))
    assert m.state.reserved(2, "USDT") == 10_020 * U
    m.ts = 3
    m.market(99, SELL, 100)
    assert m.cash(2) >= 0 and m.state.reserved(2, "USDT") == 0


def test_f3_reserved_money_is_a_ledger_account_moved_at_placement_and_released(liq_market):
    m = liq_market()
    m.deposit(2, "10000")
    cash = m.cash(2)
    events = m.limit(2, BUY, 4, "100000")              # 4 × (100 IM at 10× + 0.2 fee)
    assert m.cash(2) == cash - 4_008 * U // 10 and m.state.reserved(2, "USDT") == 4_008 * U // 10
    m.deposit(99, RICH)
    m.market(99, SELL, 1)                              # one lot's share is released
    assert m.state.reserved(2, "USDT") == 3_006 * U // 10
    m.ok(CancelOrder(m.ts, 2, BTC, events[0].ord_id))
    assert m.state.reserved(2, "USDT") == 0


# -- finding 4: user orders had no price limit ----------------------------------------------

def _banded(liq_market):
    m = liq_market(OKX_BAND)
    m.deposit(99, RICH)
    m.deposit(1, "1000")
    return m


def test_f4_limit_order_outside_the_band_is_refused_51006(liq_market):
    m = _banded(liq_market)
    m.index("114000")
    # the review's limit buy at 300,000 with the market near 114,000
    rejected(m.run(PlaceOrder(1, 1, BTC, BUY, OrderType.LIMIT, D("1"), D("300000"))), "51006")
    # buyLmt = 114,000 × 1.05 = 119,700; sellLmt = 108,300
    rejected(m.run(PlaceOrder(1, 1, BTC, BUY, OrderType.LIMIT, D("1"), D("119700.1"))), "51006")
    rejected(m.run(PlaceOrder(1, 1, BTC, SELL, OrderType.LIMIT, D("1"), D("108299.9"))), "51006")
    m.ok(PlaceOrder(1, 1, BTC, BUY, OrderType.LIMIT, D("1"), D("108300")))
    m.ok(PlaceOrder(1, 1, BTC, SELL, OrderType.POST_ONLY, D("1"), D("119700")))


@pytest.mark.parametrize("mode", [CROSS, ISO])
def test_f4_market_sell_stops_at_the_band_not_50_percent_below(liq_market, mode):
    m = _banded(liq_market)
    m.lever(1, 10, mode)
    m.trade(1, BUY, 1, "100000", taker_mode=mode)
    m.deposit(98, RICH)
    m.limit(98, BUY, 1, "96000")                       # inside the band (sellLmt 95,000)
    m.limit(98, BUY, 1, "50000")                       # a bid 50% below the mark may rest...
    events = m.market(1, SELL, 2, mode)                # ...but a market sell stops at sellLmt
    assert [(f.px_ticks, f.lots) for f in of(events, Filled)] == [(960_000, 100)]
    assert [c.reason for c in of(events, OrderCancelled)] == ["market"]
    assert m.cash(1) >= 0 and m.margin(1) >= 0
    # a limit sell below sellLmt is refused outright
    rejected(m.run(PlaceOrder(1, 1, BTC, SELL, OrderType.LIMIT, D("1"), D("50000"), td_mode=mode)),
             "51006")


def test_f4_taker_fills_that_would_bankrupt_the_unit_are_refused(liq_market):
    m = liq_market()
    m.deposit(99, RICH)
    m.deposit(1, "110")
    m.lever(1, 100, ISO)
    m.trade(1, BUY, 10, "100000", taker_mode=ISO)      # 0.1 BTC at 100×: margin 100
    m.deposit(98, RICH)
    m.limit(98, BUY, 10, "98000")                      # 2% below: a 200 loss on 100 margin
    rejected(m.run(PlaceOrder(1, 1, BTC, SELL, OrderType.MARKET, D("10"), td_mode=ISO)), "51008")
    assert m.size(1, ISO) == 1_000


# -- finding 5: ADL without a trigger -------------------------------------------------------

def test_f5_unfilled_liquidation_with_a_rich_fund_records_pos_adl_start(liq_market):
    m = liq_market({"insurance_fund": {"initial": {"BTC-USDT": "5000000"}}})
    m.ten_x_long()
    for uid in (10, 11):
        m.deposit(uid, "1000000")
        m.limit(uid, SELL, 50, "100000")
        m.market(99, BUY, 50)
    m.ts = 1
    events = m.index("90400")                          # liquidatable, no bids within 3%
    changes = [(c.adl_type, c.balance) for c in of(events, AdlStateChanged)]
    assert changes[0] == ("pos_adl_start", 5_000_000 * U)
    records = [(r.type, r.adl_type) for r in of(events, InsuranceFundChanged)]
    assert ("adl", "pos_adl_start") in records
    # ADL at the mark 90,400 (the fund is healthy); the trader's 400 above bankruptcy went
    # to the fund, not to the ADL counterparties
    assert {a.px_ticks for a in of(events, AutoDeleveraged)} == {904_000}
    settled = of(events, LiquidationSettled)[0]
    assert settled.to_fund == 400 * U and m.fund() == 5_000_400 * U


def test_f5_no_adl_without_adl_in_the_waterfall(liq_market):
    m = liq_market({"waterfall": {"order": ["insurance_fund", "socialize"]},
                    "insurance_fund": {"initial": {"BTC-USDT": "5000000"}}})
    m.ten_x_long()
    m.ts = 1
    events = m.index("90400")
    # no bid anywhere: nothing can take the position, and nothing is deleveraged either
    assert [s.route for s in of(events, LiquidationStarted)] == ["waterfall"]
    assert of(events, AutoDeleveraged) == [] and of(events, AdlStateChanged) == []


# -- finding 6: the trailing peak missed the balance carried into the window ----------------

def test_f6_trailing_peak_includes_the_balance_carried_into_the_window():
    hour = 3_600_000
    fund = InsuranceFund("SWAP:BTC-USDT", "SWAP", "BTC-USDT", "USDT", 8 * hour)
    fund.apply_record(0, "platform_revenue", 1_000, 1_000)
    record = fund.apply_record(9 * hour, "bankruptcy_loss", -400, 600)
    assert (record.max_bal, record.max_bal_ts) == (1_000, hour)   # carried in at the window start
    assert fund.is_declining_too_fast(9 * hour, 600, D("0.30"))   # 40% > 30%


def test_f6_rate_adl_starts_on_a_drop_after_a_quiet_period(liq_market):
    m = liq_market({"insurance_fund": {"initial": {"BTC-USDT": "40000"}}})
    m.ten_x_long()
    m.deposit(98, RICH)
    m.limit(98, BUY, 100, "76500")
    m.ts = 9 * 3_600_000                               # nine quiet hours after genesis
    events = m.index("78000")                          # the fund pays 13,500 of 40,000
    assert [c.adl_type for c in of(events, AdlStateChanged)] == ["rate_adl_start"]


# -- finding 7: rankings (hand-computed orders are in test_liq_adl.py) ----------------------

def test_f7_random_and_pro_rata_rank_everyone_but_close_only_winners(liq_market):
    loser = AdlCandidate(1, BTC, "cross", -100, -5, 10, 10, 100, 1, 10, 100, 101, 1, -10_100)
    winner = AdlCandidate(2, BTC, "cross", -100, 5, 10, 10, 100, 1, 10, 100, 99, 1, -9_900)
    assert {c.uid for c in rank_candidates("random", [loser, winner], random.Random(1))} == {1, 2}
    assert [c.uid for c in rank_candidates("pro_rata", [winner, loser], random.Random(1))] == [1, 2]


# -- finding 8: bad input raised instead of being refused -----------------------------------

BAD_NUMBERS = [D("1e30"), D("1e1000"), D("-1"), D("0"), D("NaN"), D("sNaN"), D("Infinity"),
               "10", None, 10.5]


@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=str)
def test_f8_every_number_field_refuses_bad_values(liq_market, bad):
    m = liq_market()
    m.deposit(1, "1000")
    commands = [
        Deposit(1, 1, "USDT", bad), Withdraw(1, 1, "USDT", bad),
        PlaceOrder(1, 1, BTC, BUY, OrderType.LIMIT, bad, D("100000")),
        PlaceOrder(1, 1, BTC, BUY, OrderType.LIMIT, D("1"), bad),
        SetLeverage(1, 1, BTC, CROSS, bad), AdjustMargin(1, 1, BTC, bad),
        SetIndexPrice(1, "BTC-USDT", bad), InjectInsuranceFund(1, "BTC-USDT", bad),
    ]
    for command in commands:
        events = m.run(command)
        assert len(events) == 1 and events[0].code.startswith("51"), (command, events)


@pytest.mark.parametrize("uid", [0, -1, True, "1", 2**63])
def test_f8_uids_below_one_or_not_integers_are_refused(liq_market, uid):
    m = liq_market()
    rejected(m.run(Deposit(1, uid, "USDT", D("100"))), "51000")
    assert m.cash(0) == 0


def test_f8_unknown_currency_is_refused(liq_market):
    m = liq_market()
    rejected(m.run(Deposit(1, 1, "FOO", D("100"))), "51000")
    assert m.state.ledger.balance(cash_key(1, "FOO")) == 0


def test_f8_duplicate_live_client_order_id_is_refused_51016(liq_market):
    m = liq_market()
    m.deposit(1, "10000")
    m.ok(PlaceOrder(1, 1, BTC, BUY, OrderType.LIMIT, D("1"), D("99000"), cl_ord_id="a1"))
    rejected(m.run(PlaceOrder(2, 1, BTC, BUY, OrderType.LIMIT, D("1"), D("99000"), cl_ord_id="a1")),
             "51016")
    m.deposit(2, "10000")
    m.ok(PlaceOrder(3, 2, BTC, BUY, OrderType.LIMIT, D("1"), D("99000"), cl_ord_id="a1"))


# -- finding 10 is tests/state/test_state_invariants.py::test_negative_cash_is_not_excused...

# -- displayed figures agree with the engine (finding 9's engine side) ----------------------

def test_displayed_liquidation_price_is_where_the_engine_fires(liq_market):
    m = liq_market()
    m.ten_x_long()
    pos = m.state.existing_position(1, BTC, ISO)
    liq = liquidation_ticks(m.state, pos)
    m.deposit(98, RICH)
    m.limit(98, BUY, 100, "80000")
    m.ts = 1
    assert of(m.index(str(D(liq + 1) / 10)), LiquidationSettled) == []
    assert of(m.index(str(D(liq) / 10)), LiquidationSettled) != []


# -- isolation: an isolated close beyond bankruptcy -----------------------------------------

def test_resting_close_beyond_bankruptcy_is_refused(liq_market):
    m = liq_market({"insurance_fund": {"initial": {"BTC-USDT": "100000"}}})
    m.ten_x_long(deposit="20000")     # 1 BTC, margin 10,000: bankrupt at 90,000
    # a resting sell 1,000 past bankruptcy would hand a colluding taker the fund's money
    rejected(m.run(PlaceOrder(1, 1, BTC, SELL, OrderType.LIMIT, D("100"), D("89000"), td_mode=ISO)),
             "51008")
    m.ok(PlaceOrder(1, 1, BTC, SELL, OrderType.LIMIT, D("100"), D("90100"), td_mode=ISO))


def test_a_negative_isolated_margin_is_covered_by_the_fund_never_by_the_cash(liq_market):
    """Defence in depth: however an isolated margin ends a command below zero, the deficit is
    the fund's (then socialized), never the account's cross cash."""
    m = liq_market({"insurance_fund": {"initial": {"BTC-USDT": "100000"}}})
    m.ten_x_long(deposit="20000")
    state, key = m.state, isolated_key(1, BTC, "USDT")
    state.ledger.transfer(key, clearing_key(BTC, "USDT"), 10_500 * U)   # a hole of 500
    cash = m.cash(1)
    cost = state.existing_position(1, BTC, ISO).cost
    hole = PositionChanged(1, 1, BTC, "isolated", 10_000, cost, -500 * U, 0)
    events = apply_cover_deficits(state, m.config, [hole], 1)
    assert [(d.uid, d.mgn_mode, d.from_fund, d.socialized) for d in of(events, DeficitCovered)] == [
        (1, "isolated", 500 * U, 0)]
    assert m.margin(1) == 0 and m.cash(1) == cash and m.fund() == 99_500 * U
