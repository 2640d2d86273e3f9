"""Auto-deleveraging, the vault, socialized loss and the fund's ADL states, with hand-checked
numbers. The bankrupt trader is a 10× isolated 1 BTC long at 100,000 (bankruptcy 90,000)."""

from __future__ import annotations

import random
from decimal import Decimal as D
from fractions import Fraction as F

import pytest

from backstop.math.adl import AdlCandidate, calculate_adl_score, calculate_quintiles, rank_candidates
from backstop.model.commands import InjectInsuranceFund
from backstop.model.enums import MarginMode, Side
from backstop.model.events import (
    AdlStateChanged,
    AutoDeleveraged,
    InsuranceFundChanged,
    LiquidationSettled,
    PositionChanged,
)

U = 100_000_000
BTC = "BTC-USDT-SWAP"
CROSS, ISO = MarginMode.CROSS, MarginMode.ISOLATED
BUY, SELL = Side.BUY, Side.SELL
RICH = "100000000"

# isolated shorts: uid -> (contracts, entry, leverage); 13 is a loser at any mark above 70,000
SHORTS = {10: (60, "100000", 10), 11: (50, "105000", 20), 12: (40, "102000", 5), 13: (20, "70000", 2)}


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def adl_market(liq_market, config=None):
    """Shorts 10–13 sold to the filler 20, who passes 1 BTC at 100,000 to the trader 1.
    Longs: trader 1 BTC + filler 0.7 BTC = 1.7 BTC = the shorts' 0.6 + 0.5 + 0.4 + 0.2."""
    m = liq_market(config or {})
    m.deposit(20, RICH)
    for uid, (contracts, px, lever) in SHORTS.items():
        m.deposit(uid, "1000000")
        m.lever(uid, lever, ISO)
        m.limit(uid, SELL, contracts, px, ISO)
        m.market(20, BUY, contracts)
    m.deposit(1, "10050")
    m.lever(1, 10, ISO)
    m.trade(1, BUY, 100, "100000", taker_mode=ISO, maker=20)
    assert m.long_lots() == m.short_lots() == 17_000
    m.deposit(98, RICH)
    m.limit(98, BUY, 100, "76500")
    m.ts = 1
    return m


def test_empty_fund_deficit_deleverages_top_ranked_winners_at_bankruptcy(liq_market):
    m = adl_market(liq_market)
    assert m.fund() == 0
    events = m.index("78000")
    # the book would leave a 13,500 deficit the empty fund cannot pay → bal_adl_start
    changes = of(events, AdlStateChanged)
    assert [(c.adl_type, c.balance) for c in changes] == [("bal_adl_start", 0)]
    assert [(r.type, r.adl_type) for r in of(events, InsuranceFundChanged)] == [("adl", "bal_adl_start")]
    # OKX score at 78,000 = (upl / margin) × (notional / equity):
    #   11: (13,500 / 2,625) × (39,000 / 16,125) = 12.44
    #   10: (13,200 / 6,000) × (46,800 / 19,200) = 5.36
    #   12: ( 9,600 / 8,160) × (31,200 / 17,760) = 2.07;  13 loses money: never touched.
    # 1 BTC is needed: 0.5 from 11, then 0.5 of 10's 0.6; 12 untouched. All at 90,000.
    adl = of(events, AutoDeleveraged)
    assert [(a.uid, a.lots, a.px_ticks, a.liquidated_uid) for a in adl] == [
        (11, 5_000, 900_000, 1), (10, 5_000, 900_000, 1)]
    # upl given up versus the mark: 0.5 × (90,000 − 78,000) = 6,000 each
    assert [a.upl_taken for a in adl] == [6_000 * U, 6_000 * U]
    assert m.size(11, ISO) == 0 and m.size(10, ISO) == -1_000
    assert m.size(12, ISO) == -4_000 and m.size(13, ISO) == -2_000
    # open interest falls by exactly the 10,000 lots closed
    assert m.long_lots() == m.short_lots() == 7_000
    assert m.size(1, ISO) == 0 and m.cash(1) == 0 and m.fund() == 0
    # 11 realized 0.5 × (105,000 − 90,000) = 7,500
    pc11 = [p for p in of(events, PositionChanged) if p.uid == 11]
    assert [p.realized_pnl for p in pc11] == [7_500 * U]
    # the fund leaves ADL mode only once it has money again
    m.ts = 2
    assert of(m.check(), AdlStateChanged) == []
    m.ok(InjectInsuranceFund(3, "BTC-USDT", D("100")))
    m.ts = 4
    assert [(c.adl_type, c.balance) for c in of(m.check(), AdlStateChanged)] == [("adl_end", 100 * U)]


def _short_figures(uid, mark):
    """Independent figures of an isolated short at ``mark``: (upl, margin, notional, equity, mm,
    entry), in USDT as Fractions."""
    contracts, entry, lever = SHORTS[uid]
    btc = F(contracts, 100)
    entry = F(entry)
    margin = btc * entry / lever
    upl = btc * (entry - mark)
    notional = btc * mark
    return upl, margin, notional, margin + upl, notional * F(4, 1000), entry


def _expected_score(ranking, uid, mark):
    upl, margin, notional, equity, mm, entry = _short_figures(uid, mark)
    if ranking in ("okx", "bitmex"):  # profitable: PnL% × effective leverage
        return upl / margin * notional / equity
    if ranking == "binance":
        return upl / margin * mm / (margin + upl)
    return entry / mark * notional / equity  # hyperliquid, a short


@pytest.mark.parametrize("ranking", ["okx", "bitmex", "binance", "hyperliquid", "random", "pro_rata"])
def test_engine_ranking_policy(liq_market, ranking):
    m = adl_market(liq_market, {"adl": {"ranking": ranking, "seed": 7}})
    events = m.index("78000")
    got = [(a.uid, a.lots) for a in of(events, AutoDeleveraged)]
    winners = [10, 11, 12]  # 13 is not profitable
    if ranking == "pro_rata":
        # 10,000 lots over sizes 6,000 / 5,000 / 4,000: 4,000, 3,333.3, 2,666.7 → floors
        # 4,000 / 3,333 / 2,666 and the 1 left to the largest remainder (12's 0.67)
        assert sorted(got) == [(10, 4_000), (11, 3_333), (12, 2_667)]
        return
    if ranking == "random":  # every short is in the queue; the loser 13 is skipped
        everyone = [*winners, 13]
        start = random.Random(7).randrange(4)
        queue = [u for u in everyone[start:] + everyone[:start] if u != 13]
    else:
        queue = sorted(winners, key=lambda u: -_expected_score(ranking, u, 78_000))
    want, expected = 10_000, []
    for uid in queue:
        take = min(want, SHORTS[uid][0] * 100)
        if take:
            expected.append((uid, take))
        want -= take
    assert got == expected
    assert all(uid != 13 for uid, _ in got)


def test_adl_price_mark_versus_bankruptcy(liq_market):
    # no bids at all: the book takes nothing and ADL closes the position (pos_adl_start: the
    # fund need not pay, the book cannot absorb). The mark 90,300 is above the bankruptcy
    # price 90,000, so every policy trades at the mark: a price better for the winners than
    # the mark would hand them the 300 USDT the trader still has, which goes to the fund.
    for price in ("mark", "bankruptcy", "auto"):
        m = adl_market(liq_market, {"adl": {"price": price}})
        m.cancel(98, max(m.state.open_orders[98]))
        events = m.index("90300")
        # the book's volume was the trigger: once nothing is left to liquidate it ends
        assert [c.adl_type for c in of(events, AdlStateChanged)] == ["pos_adl_start", "adl_end"]
        adl = of(events, AutoDeleveraged)
        assert {a.px_ticks for a in adl} == {903_000}
        assert sum(a.lots for a in adl) == 10_000
        assert m.fund() == 300 * U


def test_adl_price_below_bankruptcy_by_policy(liq_market):
    # at 88,000 (below the bankruptcy price 90,000) with an empty fund: ``bankruptcy`` and
    # ``auto`` (the fund cannot pay the gap: bal_adl_start) close the winners at 90,000,
    # ``mark`` at 88,000 with the fund owing the 2,000 gap it does not have (socialized)
    for price, px in (("bankruptcy", 900_000), ("auto", 900_000), ("mark", 880_000)):
        m = adl_market(liq_market, {"adl": {"price": price}})
        m.cancel(98, max(m.state.open_orders[98]))
        events = m.index("88000")
        assert [c.adl_type for c in of(events, AdlStateChanged)] == ["bal_adl_start"]
        assert {a.px_ticks for a in of(events, AutoDeleveraged)} == {px}


def test_vault_takes_over_up_to_its_cap_and_adl_takes_the_rest(liq_market):
    m = adl_market(liq_market, {"waterfall": {"order": ["insurance_fund", "vault", "adl"],
                                              "vault_capital": {"USDT": "8000"},
                                              "vault_cap_share": "0.5"}})
    events = m.index("78000")
    # the vault commits at most 50% of its 8,000 equity as 10× IM at the mark 78,000:
    # 4,000 × 10 / (0.0001 BTC × 78,000 = 7.8 per lot) = 5,128.2 → 5,128 lots at 90,000
    vault = [p for p in of(events, PositionChanged) if p.uid == 0]
    assert [p.size_lots for p in vault] == [5_128]
    assert m.size(0) == 5_128
    adl = of(events, AutoDeleveraged)
    assert sum(a.lots for a in adl) == 10_000 - 5_128
    assert {a.px_ticks for a in adl} == {900_000}
    assert [a.uid for a in adl] == [11]  # 4,872 lots fit in the top-ranked 5,000
    assert m.size(1, ISO) == 0 and m.fund() == 0


def test_socialized_loss_spreads_unpaid_deficit_pro_rata(liq_market):
    m = adl_market(liq_market, {"waterfall": {"order": ["insurance_fund", "socialize"]},
                                "insurance_fund": {"initial": {"BTC-USDT": "5000"}}})
    before = {uid: m.state.existing_position(uid, BTC, ISO).cost for uid in SHORTS}
    events = m.index("78000")
    # closed in the book at 76,500: deficit 13,500; the fund pays its 5,000, 8,500 is spread
    settled = of(events, LiquidationSettled)[0]
    assert (settled.from_fund, settled.socialized) == (5_000 * U, 8_500 * U)
    assert m.fund() == 0
    total, sizes = 8_500 * U, {uid: SHORTS[uid][0] * 100 for uid in SHORTS}
    charged = {uid: m.state.existing_position(uid, BTC, ISO).cost - before[uid] for uid in SHORTS}
    assert sum(charged.values()) == total
    for uid, share in charged.items():
        exact = F(total * sizes[uid], sum(sizes.values()))   # pro rata by size, all shorts
        assert exact - 1 < share < exact + 1
    assert [p.realized_pnl for p in of(events, PositionChanged) if p.uid == 13] == [-charged[13]]


def test_rate_adl_start_on_fast_decline_and_adl_end(liq_market):
    m = adl_market(liq_market, {"insurance_fund": {"initial": {"BTC-USDT": "40000"}}})
    events = m.index("78000")
    # the fund pays 13,500 from 40,000: down 33.75% > 30% from its peak → rate_adl_start
    assert m.fund() == 26_500 * U
    assert [c.adl_type for c in of(events, AdlStateChanged)] == ["rate_adl_start"]
    assert of(events, AutoDeleveraged) == []
    # still down 33.75% within 8 h: stays
    m.ts = 3_600_000
    assert of(m.check(), AdlStateChanged) == []
    # 8 h after the peak it has left the window: the trigger clears → adl_end
    m.ts = 8 * 3_600_000 + 1
    assert [(c.adl_type, c.balance) for c in of(m.check(), AdlStateChanged)] == [("adl_end", 26_500 * U)]


def test_rate_adl_mode_sends_next_bankruptcy_to_adl(liq_market):
    m = adl_market(liq_market, {"insurance_fund": {"initial": {"BTC-USDT": "40000"}}})
    m.deposit(2, "10050")
    m.lever(2, 10, ISO)
    m.ts = 0
    m.trade(2, BUY, 100, "100000", taker_mode=ISO, maker=12, maker_mode=ISO)  # 12 shorts more
    m.ts = 1
    m.index("78000")  # trader 1 liquidated first (uid order); trader 2 finds the fund in ADL
    assert m.state.funds["SWAP:BTC-USDT"].adl_state == "rate_adl_start"
    assert m.size(2, ISO) == 0
    adl = [a for a in of(m.events, AutoDeleveraged) if a.liquidated_uid == 2]
    assert sum(a.lots for a in adl) == 10_000
    assert m.fund() == 26_500 * U  # the fund paid only trader 1's deficit


def _cand(uid, upl, margin, equity, notional, mm=0, wallet=None, size=-100, mark=100, entry=(100, 1)):
    cost = size * entry[0] // entry[1]  # the entry value, signed
    return AdlCandidate(uid, BTC, "isolated", size, upl, margin, equity, notional, mm,
                        margin if wallet is None else wallet, mark, entry[0], entry[1], cost)


CANDS = [
    # uid, upl, margin, equity, notional, mm, wallet, size, mark, entry
    _cand(1, 100, 1000, 1100, 10_000, mm=40, size=-100, mark=100, entry=(110, 1)),
    _cand(2, 300, 500, 800, 4_000, mm=16, size=-40, mark=100, entry=(1075, 10)),
    _cand(3, 50, 100, 150, 5_000, mm=20, size=-50, mark=100, entry=(101, 1)),
    _cand(4, -20, 1000, 980, 6_000, mm=24, size=-60, mark=100, entry=(99, 1)),  # loser
    _cand(5, 100, 1000, 1100, 10_000, mm=40, size=-100, mark=100, entry=(110, 1)),  # ties 1
]
ONE_USDT = 100_000_000  # Binance floors the wallet at 1 unit of the currency


def test_rank_scores_by_hand():
    c1, c2, c3, c4, _ = CANDS
    # okx: (upl / margin) × (notional / equity)
    assert calculate_adl_score("okx", c1) == F(100, 1000) * F(10_000, 1100)   # 0.909
    assert calculate_adl_score("okx", c2) == F(300, 500) * F(4_000, 800)      # 3.0
    assert calculate_adl_score("okx", c3) == F(50, 100) * F(5_000, 150)       # 16.67
    assert calculate_adl_score("okx", c4) == F(-20, 1000) * F(6_000, 980)     # a loser: < 0
    # bitmex: PnL% = upl / |entry value|, EffLev = |mark value| / equity
    assert calculate_adl_score("bitmex", c1) == F(100, 11_000) * F(10_000, 1100)
    assert calculate_adl_score("bitmex", c2) == F(300, 4_300) * F(4_000, 800)
    # a loser scores PnL% / EffLev = (−20 / 5,940) / (6,000 / 980)
    assert calculate_adl_score("bitmex", c4) == F(-20, 5_940) / F(6_000, 980)
    # binance: max(0, upl) / max(1 USDT, wallet) × MM / (wallet + upl)
    assert calculate_adl_score("binance", c1) == F(100, ONE_USDT) * F(40, 1100)
    assert calculate_adl_score("binance", c3) == F(50, ONE_USDT) * F(20, 150)
    assert calculate_adl_score("binance", c4) == 0   # no profit
    rich = _cand(6, 10 * ONE_USDT, 1000, 0, 0, mm=3 * ONE_USDT, wallet=5 * ONE_USDT)
    assert calculate_adl_score("binance", rich) == F(10, 5) * F(3, 15)
    broke = _cand(7, 10, 1000, 0, 0, mm=40, wallet=-20)   # wallet + upl ≤ 0 → margin ratio 0
    assert calculate_adl_score("binance", broke) == 0
    # hyperliquid, shorts: (entry / mark) × (notional / equity)
    assert calculate_adl_score("hyperliquid", c1) == F(110, 100) * F(10_000, 1100)  # 10.0
    assert calculate_adl_score("hyperliquid", c2) == F(1075, 1000) * F(4_000, 800)  # 5.375
    assert calculate_adl_score("hyperliquid", c3) == F(101, 100) * F(5_000, 150)    # 33.67


@pytest.mark.parametrize(("ranking", "order"), [
    ("okx", [3, 2, 1, 5, 4]),           # 16.67, 3.0, 0.909 (tie 1/5 by uid), the loser last
    ("bitmex", [2, 3, 1, 5, 4]),        # 0.0698·5 = 0.349, 0.0099·33.3 = 0.330, 0.0826; loser < 0
    ("binance", [3, 2, 1, 5, 4]),       # 0.0667, 0.012, 0.00364 (× 1e-8), the loser 0
    ("hyperliquid", [3, 1, 5, 4, 2]),   # 33.67, 10, 10, 6.06, 5.375: the loser ranks
    ("pro_rata", [1, 2, 3, 4, 5]),      # everyone, in account order
])
def test_rank_candidates_orders_by_formula(ranking, order):
    # every position is ranked, losers included where the venue's formula ranks them; the
    # engine closes only profitable ones (test_engine_ranking_policy)
    ranked = rank_candidates(ranking, list(reversed(CANDS)), random.Random(0))
    assert [c.uid for c in ranked] == order


def test_rank_random_is_a_seeded_rotation():
    start = random.Random(42).randrange(5)
    expected = [1, 2, 3, 4, 5][start:] + [1, 2, 3, 4, 5][:start]
    assert [c.uid for c in rank_candidates("random", CANDS, random.Random(42))] == expected


def test_quintiles_by_rank():
    scores = [F(n) for n in (5, 1, 4, 2, 3, 10, 9, 8, 7, 6)]
    # ten scores: the two lowest are 1, the two highest 5
    assert calculate_quintiles(scores) == [3, 1, 2, 1, 2, 5, 5, 4, 4, 3]


def test_quintiles_front_of_queue_is_five():
    # ceil((rank + 1)·5/n): a lone winner is ceil(5/1) = 5; the best of three ceil(15/3) = 5
    assert calculate_quintiles([F(7)]) == [5]
    assert calculate_quintiles([F(1), F(3), F(2)])[1] == 5


def test_adl_indicator_refreshed_on_mark_updates(liq_market):
    m = adl_market(liq_market)
    m.index("95000")
    rank = m.state.adl_rank
    # at 95,000: 13 (short from 70,000) and the trader (long from 100,000) lose → 0.
    # Winners 10, 11, 12 by OKX score:
    #   10: (3,000/6,000) × (57,000/9,000) = 3.17;  11: (5,000/2,625) × (47,500/7,625) = 11.87;
    #   12: (2,800/8,160) × (38,000/10,960) = 1.19  → ranks 12 < 10 < 11
    assert rank[(13, BTC, ISO)] == 0 and rank[(1, BTC, ISO)] == 0
    assert rank[(12, BTC, ISO)] < rank[(10, BTC, ISO)] < rank[(11, BTC, ISO)]
    assert all(1 <= rank[(u, BTC, ISO)] <= 5 for u in (10, 11, 12))
    # at 101,000 the short from 100,000 is under water (0) and the trader's long is in profit
    m.ts = 2
    m.index("101000")
    assert rank[(10, BTC, ISO)] == 0 and rank[(13, BTC, ISO)] == 0
    assert rank[(1, BTC, ISO)] >= 1 and rank[(11, BTC, ISO)] >= 1
