"""Named liquidation scenarios with hand-checked numbers (readable units in the comments).

Every market here keeps mark == index (``mark.smoothing = 0``) unless it says otherwise.
BTC-USDT-SWAP: 1 BTC = 100 contracts = 10_000 lots; taker fee 0.05%, maker 0.02%;
tier 1 (≤ 1000 contracts) MMR 0.4%, so MM + liquidation fee = 0.45% of the notional.
"""

from __future__ import annotations

from decimal import Decimal as D

from backstop.math.margin import find_tier
from backstop.model.commands import InjectInsuranceFund, PlaceOrder
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import (
    InsuranceFundChanged,
    LiquidationSettled,
    LiquidationStarted,
    LiquidationWarning,
    PositionChanged,
    Rejected,
)

U = 100_000_000  # money units per USDT (or per BTC)
BTC = "BTC-USDT-SWAP"
ETH = "ETH-USDT-SWAP"
CROSS, ISO = MarginMode.CROSS, MarginMode.ISOLATED
BUY, SELL = Side.BUY, Side.SELL
RICH = "100000000"  # the counterparty's deposit: never in danger


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_gap_15_percent_below_bankruptcy_fund_pays_gap_times_size(liq_market):
    m = liq_market({"insurance_fund": {"initial": {"BTC-USDT": "1000000"}}})
    m.ten_x_long()
    assert m.cash(1) == 0 and m.margin(1) == 10_000 * U
    m.deposit(98, RICH)
    m.limit(98, BUY, 100, "76500")
    m.ts = 1
    # bankruptcy = 100,000 − 10,000 / 1 BTC = 90,000; 15% below it is 76,500 (= the bid)
    events = m.index("76500")
    started = of(events, LiquidationStarted)
    assert [(s.uid, s.lots, s.bankruptcy_ticks, s.route) for s in started] == [(1, 10_000, 900_000, "book")]
    loss = of(events, InsuranceFundChanged)
    # the fund pays (90,000 − 76,500) × 1 BTC = 13,500 USDT, and nothing else moves it
    assert [(r.type, r.amt) for r in loss] == [("bankruptcy_loss", -13_500 * U)]
    assert m.fund() == (1_000_000 - 13_500) * U
    settled = of(events, LiquidationSettled)[0]
    assert (settled.from_fund, settled.to_fund, settled.socialized) == (13_500 * U, 0, 0)
    # the trader ends with nothing at all, not a negative balance
    assert m.cash(1) == 0 and m.margin(1) == 0 and m.size(1, ISO) == 0


def test_fill_better_than_bankruptcy_deposits_surplus_and_fee(liq_market):
    m = liq_market({"insurance_fund": {"initial": {"BTC-USDT": "1000"}}})
    m.ten_x_long(deposit="11050")  # 1,000 USDT of cash stays outside the isolated margin
    m.deposit(98, RICH)
    m.limit(98, BUY, 100, "90300")
    m.ts = 1
    # at 90,400: equity 10,000 − 9,600 = 400 ≤ MM + fee = 0.45% × 90,400 = 406.8 → liquidated
    events = m.index("90400")
    assert of(events, LiquidationStarted)[0].category == "full_liquidation"
    # filled at 90,300, 300 above the bankruptcy price 90,000: 300 USDT goes to the fund; of it
    # the liquidation fee is 0.05% × 90,400 = 45.2 USDT (the rest is surplus, 254.8)
    settled = of(events, LiquidationSettled)[0]
    assert settled.to_fund == 300 * U and settled.from_fund == 0
    assert settled.fee == 45_20_000_000  # 45.2 USDT
    deposits = [(r.type, r.amt) for r in of(events, InsuranceFundChanged)]
    assert deposits == [("liquidation_balance_deposit", 300 * U)]
    assert m.fund() == 1_300 * U
    # the whole isolated margin is gone; the cash outside it is untouched
    assert m.margin(1) == 0 and m.size(1, ISO) == 0
    assert m.cash(1) == 1_000 * U


def test_cross_account_one_position(liq_market):
    m = liq_market({"insurance_fund": {"initial": {"BTC-USDT": "1000"}}})
    m.ten_x_long(deposit="12050", mode=CROSS)  # cash after the open: 12,000
    assert m.cash(1) == 12_000 * U
    m.deposit(98, RICH)
    m.limit(98, BUY, 100, "88100")
    m.ts = 1
    # cross bankruptcy: 100,000 − 12,000 = 88,000. At 88,300: equity 12,000 − 11,700 = 300
    # ≤ 0.45% × 88,300 = 397.35 → liquidated, filled at 88,100: 100 USDT left → the fund
    events = m.index("88300")
    started = of(events, LiquidationStarted)
    assert [(s.mgn_mode, s.bankruptcy_ticks) for s in started] == [("cross", 880_000)]
    assert of(events, LiquidationSettled)[0].to_fund == 100 * U
    assert m.fund() == 1_100 * U
    assert m.cash(1) == 0 and m.size(1) == 0


def test_cross_account_two_positions_largest_mm_first(liq_market):
    m = liq_market({"insurance_fund": {"initial": {"BTC-USDT": "1000"}}})
    m.index("2500", "ETH-USDT")
    m.deposit(99, RICH)
    # 10,000 (BTC IM) + 50 (fee) + 2,500 (ETH IM, 10 ETH at 2,500) + 12.5 (fee) = 12,562.5
    m.deposit(1, "12562.5")
    m.lever(1, 10, CROSS)
    m.lever(1, 10, CROSS, ETH)
    m.trade(1, BUY, 100, "100000")           # 1 BTC
    m.trade(1, BUY, 100, "2500", inst=ETH)    # 100 contracts × 0.1 ETH = 10 ETH
    assert m.cash(1) == 12_500 * U
    m.deposit(98, RICH)
    m.limit(98, BUY, 100, "87950")
    m.ts = 1
    # at BTC 88,000: equity 12,500 − 12,000 = 500 ≤ MM + fees = 396 (BTC) + 112.5 (ETH) = 508.5.
    # BTC has the larger MM + fee and goes first; filled at 87,950 the account keeps
    # 12,500 − 12,050 = 450, pays the liquidation fee 0.05% × 88,000 = 44 → 406 > 112.5 (ETH's
    # MM + fee), so ETH survives and the BTC slice pays only its fee.
    events = m.index("88000")
    assert [s.inst_id for s in of(events, LiquidationStarted)] == [BTC]
    assert of(events, LiquidationSettled)[0].to_fund == 44 * U
    assert m.fund() == 1_044 * U
    assert m.cash(1) == 406 * U
    assert m.size(1) == 0 and m.size(1, inst=ETH) == 10_000


def tier4_long(m, style):
    """50 BTC (5,000 contracts: tier 4, MMR 1.5%, max 40×) long at 100,000 with 20×:
    IM 250,000 + fee 2,500."""
    m.deposit(99, RICH)
    m.deposit(1, "252500")
    m.lever(1, 20, ISO)
    m.trade(1, BUY, 5000, "100000", taker_mode=ISO)
    inst = m.catalogue.get(BTC)
    assert find_tier(inst.tiers, m.size(1, ISO)).tier == 4
    m.deposit(98, RICH)
    m.limit(98, BUY, 3000, "96300")
    m.limit(98, BUY, 2000, "96200")
    m.ts = 1


def test_okx_tiers_partial_liquidation_drops_tier_4_to_tier_2(liq_market):
    m = liq_market({"insurance_fund": {"initial": {"BTC-USDT": "1000"}}})
    tier4_long(m, "okx_tiers")
    # at 96,400: equity 250,000 − 50 × 3,600 = 70,000 ≤ tier 4's 1.55% × 4,820,000 = 74,710,
    # and above tier 1's 0.45% × 4,820,000 = 21,690 → cut to the top of tier 2 (2,000
    # contracts): 3,000 contracts = 30 BTC.
    events = m.index("96400")
    started = of(events, LiquidationStarted)
    assert [(s.category, s.lots) for s in started] == [("partial_liquidation", 300_000)]
    inst = m.catalogue.get(BTC)
    assert m.size(1, ISO) == 200_000 and find_tier(inst.tiers, 200_000).tier == 2
    # 30 BTC sold at 96,300: margin released 30/50 × 250,000 = 150,000, loss 30 × 3,700 =
    # 111,000 → cash 39,000; the fee 0.05% × 30 × 96,400 = 1,446 goes to the fund
    assert of(events, LiquidationSettled)[0].to_fund == 1_446 * U
    assert m.fund() == 2_446 * U
    assert m.cash(1) == (39_000 - 1_446) * U
    assert m.margin(1) == 100_000 * U


def test_full_style_takes_everything(liq_market):
    m = liq_market({"liquidation": {"style": "full"},
                    "insurance_fund": {"initial": {"BTC-USDT": "1000"}}})
    tier4_long(m, "full")
    events = m.index("96400")
    started = of(events, LiquidationStarted)
    assert [(s.category, s.lots, s.bankruptcy_ticks) for s in started] == [
        ("full_liquidation", 500_000, 950_000)]
    # bankruptcy 100,000 − 250,000/50 = 95,000; fills 30 BTC at 96,300 and 20 at 96,200:
    # surplus 30 × 1,300 + 20 × 1,200 = 63,000 USDT, all to the fund
    settled = of(events, LiquidationSettled)[0]
    assert settled.to_fund == 63_000 * U
    assert settled.fee == 2_410 * U  # 0.05% × 50 × 96,400
    assert m.fund() == 64_000 * U
    assert m.size(1, ISO) == 0 and m.margin(1) == 0 and m.cash(1) == 0


def test_progressive_takes_a_share_then_waits_and_freezes_orders(liq_market):
    m = liq_market({"liquidation": {"style": "progressive", "progressive_share": "0.2",
                                    "progressive_cooldown_ms": 30_000},
                    "insurance_fund": {"initial": {"BTC-USDT": "1000"}}})
    m.ten_x_long(deposit="10150")  # 100 USDT of free cash
    m.deposit(98, RICH)
    m.limit(98, BUY, 100, "90300")
    m.ts = 1_000
    events = m.index("90400")
    # 20% of 1 BTC = 0.2 BTC = 2,000 lots, partial
    assert [(s.category, s.lots) for s in of(events, LiquidationStarted)] == [
        ("partial_liquidation", 2_000)]
    # the fee: 0.05% × 0.2 × 90,400 = 9.04 USDT
    assert of(events, LiquidationSettled)[0].to_fund == 904_000_000
    assert m.size(1, ISO) == 8_000
    # still liquidatable (equity 8,000 − 7,680 = 320 ≤ 0.45% × 0.8 × 90,400 = 325.44) but in
    # the cooldown nothing happens, and the account may not place orders (50020)
    m.ts = 1_000 + 29_999
    assert of(m.check(), LiquidationStarted) == []
    assert m.size(1, ISO) == 8_000
    rejected = m.run(PlaceOrder(m.ts, 1, BTC, BUY, OrderType.LIMIT, D("1"), D("80000")))
    assert [r.code for r in of(rejected, Rejected)] == ["50020"]
    # once the cooldown ends the next share goes: 20% of 8,000 lots = 1,600
    m.ts = 1_000 + 30_000
    events = m.check()
    assert [(s.category, s.lots) for s in of(events, LiquidationStarted)] == [
        ("partial_liquidation", 1_600)]
    assert m.size(1, ISO) == 6_400


def test_liquidation_warnings_once_and_again_after_recovery(liq_market):
    m = liq_market({"liquidation": {"warning_ratio": "3.0"}})
    m.ten_x_long()
    # ratio = (10,000 + P − 100,000) / (0.0045 P); below 3 once P < 91,231.6
    m.ts = 1
    assert of(m.index("91300"), LiquidationWarning) == []  # 1,300 / 410.85 = 3.16
    m.ts = 2
    warned = of(m.index("91200"), LiquidationWarning)      # 1,200 / 410.4 = 2.9240
    assert [(w.uid, w.inst_id, w.mgn_mode, w.mgn_ratio) for w in warned] == [
        (1, BTC, "isolated", "2.9240")]
    m.ts = 3
    assert of(m.index("91100"), LiquidationWarning) == []  # still below: no repeat
    m.ts = 4
    assert of(m.index("95000"), LiquidationWarning) == []  # recovered
    m.ts = 5
    again = of(m.index("91000"), LiquidationWarning)       # 1,000 / 409.5 = 2.4420
    assert [w.mgn_ratio for w in again] == ["2.4420"]


def test_inverse_contract_liquidation_exact_coin_amounts(liq_market):
    m = liq_market({"insurance_fund": {"initial": {"BTC-USD": "1"}}}, family="BTC-USD")
    # BTC-USD-SWAP: 1 contract = 100 USD = 10 lots. 100 contracts = 10,000 USD long at 100,000
    # = 0.1 BTC of notional; 10× → IM 0.01 BTC, taker fee 0.05% → 0.00005 BTC.
    inv = "BTC-USD-SWAP"
    m.deposit(99, "100", "BTC")
    m.deposit(1, "0.01005", "BTC")
    m.lever(1, 10, ISO, inv)
    m.trade(1, BUY, 100, "100000", taker_mode=ISO, inst=inv)
    assert m.cash(1, "BTC") == 0 and m.margin(1, inv, "BTC") == 1_000_000
    m.deposit(98, "100", "BTC")
    m.limit(98, BUY, 100, "80000", inst=inv)
    m.ts = 1
    events = m.index("80000", "BTC-USD")
    # bankruptcy: 10,000 / (0.1 + 0.01) = 90,909.09 → rounded up to the tick, 90,909.1
    assert of(events, LiquidationStarted)[0].bankruptcy_ticks == 909_091
    # sold at 80,000: 10,000/80,000 − 10,000/100,000 = 0.025 BTC lost, 0.01 BTC of margin:
    # the fund pays 0.015 BTC exactly
    records = of(events, InsuranceFundChanged)
    assert [(r.fund_id, r.ccy, r.type, r.amt) for r in records] == [
        ("SWAP:BTC-USD", "BTC", "bankruptcy_loss", -1_500_000)]
    assert m.fund("SWAP:BTC-USD", "BTC") == U - 1_500_000
    assert m.cash(1, "BTC") == 0 and m.margin(1, inv, "BTC") == 0


def test_inverse_surplus_rounds_against_the_trader(liq_market):
    m = liq_market({"insurance_fund": {"initial": {"BTC-USD": "1"}}}, family="BTC-USD")
    inv = "BTC-USD-SWAP"
    m.deposit(99, "100", "BTC")
    m.deposit(1, "0.01005", "BTC")
    m.lever(1, 10, ISO, inv)
    m.trade(1, BUY, 100, "100000", taker_mode=ISO, inst=inv)
    m.deposit(98, "100", "BTC")
    m.limit(98, BUY, 100, "91100", inst=inv)
    m.ts = 1
    # liquidation price 10,000 × 1.0045 / (0.01 + 0.1) = 91,318.2; at 91,200 it triggers.
    # Sold at 91,100: value 10,000 / 91,100 = 0.10976948402 BTC, floored (buyer's value) to
    # 0.10976949 in 1e-8 → the trader keeps 0.01 − (0.10976949 − 0.1) = 0.00023051 BTC,
    # which all goes to the fund.
    events = m.index("91200", "BTC-USD")
    assert of(events, LiquidationSettled)[0].to_fund == 23_051
    assert m.fund("SWAP:BTC-USD", "BTC") == U + 23_051


def test_inject_insurance_fund_and_history_peak_over_8h(liq_market):
    m = liq_market()
    hour = 3_600_000
    first = m.ok(InjectInsuranceFund(0, "BTC-USDT", D("20000")))
    assert [(r.type, r.amt, r.balance, r.max_bal, r.max_bal_ts) for r in first] == [
        ("platform_revenue", 20_000 * U, 20_000 * U, 20_000 * U, 0)]
    second = m.ok(InjectInsuranceFund(hour, "BTC-USDT", D("10000")))
    assert [(r.balance, r.max_bal, r.max_bal_ts) for r in second] == [(30_000 * U, 30_000 * U, hour)]
    # a bankruptcy loss at 2 h: balance 30,000 − 13,500 = 16,500, the peak still 30,000 at 1 h
    m.ten_x_long()
    m.deposit(98, RICH)
    m.limit(98, BUY, 100, "76500")
    m.ts = 2 * hour
    loss = [r for r in of(m.index("76500"), InsuranceFundChanged) if r.type == "bankruptcy_loss"]
    assert [(r.amt, r.balance, r.max_bal, r.max_bal_ts) for r in loss] == [
        (-13_500 * U, 16_500 * U, 30_000 * U, hour)]
    # 10 h: the 1 h peak is out of the 8 h window; the peak is the newest balance
    late = m.ok(InjectInsuranceFund(10 * hour, "BTC-USDT", D("1")))
    assert [(r.balance, r.max_bal, r.max_bal_ts) for r in late] == [
        (16_501 * U, 16_501 * U, 10 * hour)]
    history = m.state.funds["SWAP:BTC-USDT"].history
    assert history[-1].type == "platform_revenue" and history[0].amt == 20_000 * U


def test_position_changed_reports_every_liquidated_leg(liq_market):
    m = liq_market({"insurance_fund": {"initial": {"BTC-USDT": "1000000"}}})
    m.ten_x_long()
    m.deposit(98, RICH)
    m.limit(98, BUY, 60, "76500")
    m.limit(98, BUY, 40, "76400")
    m.ts = 1
    events = m.index("76500")
    mine = [p for p in of(events, PositionChanged) if p.uid == 1]
    assert [p.size_lots for p in mine] == [4_000, 0]
    # two fills: 0.6 × 13,500 + 0.4 × 13,600 = 8,100 + 5,440 = 13,540 from the fund
    assert of(events, LiquidationSettled)[0].from_fund == 13_540 * U
