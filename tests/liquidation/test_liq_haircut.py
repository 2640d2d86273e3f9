"""ADL by profit haircut (``adl.haircut``): the bankrupt lots close in the book, the winners
keep their positions and pay the shortfall against the bankruptcy price from their profit.

The scene is ``test_liq_adl``'s: a 10× isolated 1 BTC long at 100,000 (bankruptcy 90,000),
isolated shorts 10 (0.6 BTC at 100,000), 11 (0.5 at 105,000), 12 (0.4 at 102,000) and 13
(0.2 at 70,000, a loser), and one bid of 1 BTC at 76,500; the empty fund cannot pay."""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction as F

import pytest
from test_liq_adl import adl_market

from backstop.engine.config import AdlHaircut
from backstop.math.values import calculate_upl
from backstop.model.commands import AdjustMargin
from backstop.model.enums import MarginMode, Side
from backstop.model.events import AutoDeleveraged, LiquidationSettled, OrderPlaced, ProfitHaircut
from backstop.state.invariants import ensure_conservation, ensure_no_negative_money

U = 100_000_000
ISO = MarginMode.ISOLATED
# profit at a mark of 78,000 (USDT): 0.6 × 22,000, 0.5 × 27,000, 0.4 × 24,000; 13 loses
PROFIT = {10: 13_200, 11: 13_500, 12: 9_600}
NEEDED = 13_500  # sold at 76,500 instead of the bankruptcy price 90,000: 1 BTC × 13,500


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def haircut_market(liq_market, kind: str):
    return adl_market(liq_market, {"adl": {"haircut": kind}})


@pytest.mark.parametrize("kind", [k.value for k in AdlHaircut if k != AdlHaircut.NONE])
def test_winners_keep_positions_and_pay_exactly_the_shortfall(liq_market, kind):
    m = haircut_market(liq_market, kind)
    sizes = {uid: m.size(uid, ISO) for uid in (10, 11, 12, 13)}
    margins = {uid: m.margin(uid) for uid in (10, 11, 12, 13)}
    events = m.index("78000")
    assert of(events, AutoDeleveraged) == []
    cuts = of(events, ProfitHaircut)
    assert {c.uid for c in cuts} <= set(PROFIT) and cuts
    assert sum(c.amount for c in cuts) == NEEDED * U  # exact: no overshoot
    for c in cuts:
        assert c.profit == PROFIT[c.uid] * U and 0 < c.amount <= c.profit
    # positions and principal untouched; the bankrupt long closed in the book, no deficit left
    assert {uid: m.size(uid, ISO) for uid in sizes} == sizes
    assert {uid: m.margin(uid) for uid in margins} == margins
    assert m.size(1, ISO) == 0 and m.cash(1) == 0 and m.fund() == 0
    assert m.size(98) == 10_000  # the bid took the lots
    settled = of(events, LiquidationSettled)[-1]
    assert (settled.from_fund, settled.socialized) == (0, 0)
    ensure_conservation(m.state)
    ensure_no_negative_money(m.state)


def test_pro_rata_takes_the_same_fraction_of_every_profit(liq_market):
    m = haircut_market(liq_market, "pro_rata")
    cuts = {c.uid: c.amount for c in of(m.index("78000"), ProfitHaircut)}
    fraction = F(NEEDED, sum(PROFIT.values()))  # 13,500 / 36,300
    inst = m.catalogue.get("BTC-USDT-SWAP")
    mark = m.state.mark_ticks[inst.inst_id]
    for uid, profit in PROFIT.items():
        assert abs(cuts[uid] - fraction * profit * U) < 1
        # the upl left is the profit less the cut, to the unit
        pos = m.state.existing_position(uid, inst.inst_id, ISO)
        assert calculate_upl(inst, pos.size_lots, pos.cost, mark) == profit * U - cuts[uid]


def test_leverage_weighting_takes_a_share_of_profit_in_proportion_to_leverage(liq_market):
    m = haircut_market(liq_market, "leverage")
    share = {c.uid: F(c.amount, c.profit) for c in of(m.index("78000"), ProfitHaircut)}
    # effective leverage at 78,000 = notional / isolated equity (margin + upl):
    # 10: 46,800 / 19,200, 11: 39,000 / 16,125, 12: 31,200 / 17,760
    leverage = {10: F(46_800, 19_200), 11: F(39_000, 16_125), 12: F(31_200, 17_760)}
    assert sum(c * PROFIT[uid] for uid, c in share.items()) == NEEDED
    for uid in (11, 12):
        assert float(share[uid] / share[10]) == pytest.approx(float(leverage[uid] / leverage[10]), rel=1e-6)
    assert share[10] > share[11] > share[12]


def test_min_overshoot_shaves_the_largest_profits_to_one_level(liq_market):
    m = haircut_market(liq_market, "min_overshoot")
    left = {c.uid: c.profit - c.amount for c in of(m.index("78000"), ProfitHaircut)}
    # 36,300 − 13,500 = 22,800 left; the level is 7,600 (below 12's 9,600), so each keeps it
    assert left == {10: 7_600 * U, 11: 7_600 * U, 12: 7_600 * U}


def test_a_winner_cannot_dodge_the_pro_rata_haircut(liq_market):
    """Two identical 10× shorts; before the crash one adds margin (lowering its leverage) and
    rests a buy order far below. Pro-rata on profit charges both the same (to the unit of
    rounding); neither loses principal. Risk-aware weighting, by contrast, rewards the margin."""
    for kind in ("pro_rata", "leverage"):
        m = haircut_market(liq_market, kind)
        for uid in (30, 31):
            m.deposit(uid, "1000000")
            m.lever(uid, 10, ISO)
            m.limit(uid, Side.SELL, 10, "100000", ISO)
            m.market(20, Side.BUY, 10)
        m.ok(AdjustMargin(m.ts, 31, "BTC-USDT-SWAP", D("5000")))
        m.limit(31, Side.BUY, 5, "60000", ISO)
        margins = (m.margin(30), m.margin(31))
        cuts = {c.uid: c.amount for c in of(m.index("78000"), ProfitHaircut)}
        assert (m.margin(30), m.margin(31)) == margins
        if kind == "pro_rata":
            assert cuts[30] > 0 and abs(cuts[30] - cuts[31]) <= 1
        else:
            assert cuts[30] > cuts[31] > 0


def test_at_the_mark_price_the_unit_ends_as_a_close_at_the_mark(liq_market):
    """``adl.price = mark``: at 90,300 (equity 300 below MM + fee ≈ 406) the long closes at
    76,500; the haircut covers the 13,800 it lost beyond the mark, and the 300 a close at the
    mark leaves goes to the fund, as a queue close at the mark would send it."""
    m = adl_market(liq_market, {"adl": {"haircut": "pro_rata", "price": "mark"}})
    events = m.index("90300")
    assert sum(c.amount for c in of(events, ProfitHaircut)) == 13_800 * U
    assert m.size(1, ISO) == 0 and m.margin(1) == 0 and m.cash(1) == 0
    assert m.fund() == 300 * U
    ensure_conservation(m.state)


def test_what_the_profit_cannot_cover_goes_down_the_waterfall(liq_market):
    """The only bid is at 50,000: the long loses 40,000 beyond its bankruptcy price, the
    winners hold 36,300 of profit. Each pays all of it; the 3,700 left is socialized."""
    m = haircut_market(liq_market, "pro_rata")
    bid = next(e for e in m.events if isinstance(e, OrderPlaced) and e.uid == 98)
    m.cancel(98, bid.ord_id)
    m.limit(98, Side.BUY, 100, "50000")
    events = m.index("78000")
    cuts = {c.uid: (c.amount, c.profit) for c in of(events, ProfitHaircut)}
    assert cuts == {uid: (p * U, p * U) for uid, p in PROFIT.items()}
    settled = of(events, LiquidationSettled)[-1]
    assert (settled.from_fund, settled.socialized) == (0, 3_700 * U)
    ensure_conservation(m.state)
    ensure_no_negative_money(m.state)


def test_winners_are_told_on_the_socket_and_the_dashboard(liq_market):
    """A haircut is ADL: each winner's ``balance_and_position`` push says ``eventType`` adl,
    and the dashboard's feed shows how much profit it gave and that it kept the position."""
    from backstop.api.dashboard_views import haircut_row
    from backstop.api.ws import _TOUCHES, Touched

    m = haircut_market(liq_market, "pro_rata")
    events = m.index("78000")
    touched = Touched()
    for event in events:
        toucher = _TOUCHES.get(type(event))
        if toucher is not None:
            toucher(touched, event)
    cuts = of(events, ProfitHaircut)
    assert {c.uid: touched.event_types.get(c.uid) for c in cuts} == {c.uid: "adl" for c in cuts}
    rows = [haircut_row(m.ex, c) for c in cuts]
    assert sum(D(r["amt"]) for r in rows) == NEEDED
    assert {(r["kind"], r["liquidatedUid"], r["ccy"]) for r in rows} == {("haircut", "1", "USDT")}
    assert all(D(r["amt"]) <= D(r["profit"]) == PROFIT[int(r["uid"])] for r in rows)
