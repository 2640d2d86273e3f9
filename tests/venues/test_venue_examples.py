"""Each venue's published margin figures and liquidation-price rules, reproduced through the
engine under that venue's profile (``backstop.engine.venues``).

The engine's liquidation price is where its own trigger fires (``queries.liquidation_ticks``);
each test holds it, or the engine's maintenance margin, against the venue's page. Tolerance:
one tick or 0.01% (issue 14). Money is integer units of 1e-8 USDT.
"""

from __future__ import annotations

import itertools
from decimal import Decimal as D
from fractions import Fraction

import pytest

from backstop.engine import queries
from backstop.engine.exchange import Exchange
from backstop.engine.venues import venue_profile
from backstop.math.margin import calculate_bankruptcy_ticks, calculate_maintenance_margin
from backstop.model.catalogue import Catalogue, catalogue_from_specs
from backstop.model.commands import AdjustMargin, Deposit, PlaceOrder, SetIndexPrice, SetLeverage
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import LiquidationStarted
from backstop.model.venue_specs import venue_specs

BTC, ETH = "BTC-USDT-SWAP", "ETH-USDT-SWAP"
UNIT = 100_000_000
ISO, CROSS = MarginMode.ISOLATED, MarginMode.CROSS


def _catalogue(venue: str, **index_px: str) -> Catalogue:
    return venue_profile(venue).catalogue({k.replace("_", "-"): v for k, v in index_px.items()})


def _exchange(venue: str, cat: Catalogue) -> Exchange:
    return Exchange(cat, venue_profile(venue).config, check_invariants=True)


def _open(ex: Exchange, uid: int, inst_id: str, side: Side, sz: str, px: str, mode: MarginMode,
          lever: str) -> None:
    """``uid`` opens ``sz`` contracts at ``px`` against a maker (uid 99)."""
    ex.execute(SetLeverage(0, uid, inst_id, mode, D(lever)))
    ex.execute(PlaceOrder(0, 99, inst_id, side.opposite, OrderType.LIMIT, D(sz), D(px)))
    ex.execute(PlaceOrder(0, uid, inst_id, side, OrderType.MARKET, D(sz), td_mode=mode))
    assert ex.state.existing_position(uid, inst_id, mode) is not None


def _setup(venue: str, cat: Catalogue, prices: dict[str, str], deposit: str) -> Exchange:
    ex = _exchange(venue, cat)
    for family, px in prices.items():
        ex.execute(SetIndexPrice(0, family, D(px)))
    ex.execute(Deposit(0, 99, "USDT", D("100000000")))
    ex.execute(Deposit(0, 1, "USDT", D(deposit)))
    return ex


def _liq_px(ex: Exchange, uid: int, inst_id: str, mode: MarginMode) -> D:
    pos = ex.state.existing_position(uid, inst_id, mode)
    inst = ex.catalogue.get(inst_id)
    return inst.ticks_to_px(queries.liquidation_ticks(ex.state, pos))


def _within(value: D, expected: Fraction | D, tick: D) -> bool:
    gap = abs(Fraction(value) - Fraction(expected))
    return gap <= Fraction(tick) or gap <= Fraction(expected) * Fraction(1, 10_000)


# ------------------------------------------------------------------------------------ Binance

def test_binance_published_maintenance_margins_with_cum():
    """Binance's worked example (USDⓈ-M liquidation-price FAQ,
    https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93): "Maintenance
    Margin of BTCUSDT = 71200.81144 (3500032.458 × 2.50% − 16300)" and "of ETHUSDT =
    356,512.508 (4918775.081 × 10.00% − 135365)". Without cum the engine was 23% and 38% off."""
    btc = _catalogue("binance", BTC_USDT_SWAP="19050.7").get(BTC)
    # 183.723 BTC = 1,837,230 lots; mark 19,050.7 gives a notional of 3,500,031.0 USDT
    mm = calculate_maintenance_margin(btc, 1_837_230, btc.px_to_ticks(D("19050.7")))
    assert abs(Fraction(mm, UNIT) - Fraction("71200.81144")) <= Fraction("71200.81144") / 10_000
    eth = _catalogue("binance", ETH_USDT_SWAP="4918.78").get(ETH)
    # 1,000 ETH = 1,000,000 lots at 4,918.78: notional 4,918,780 USDT
    mm = calculate_maintenance_margin(eth, 1_000_000, eth.px_to_ticks(D("4918.78")))
    assert abs(Fraction(mm, UNIT) - Fraction("356512.508")) <= Fraction("356512.508") / 10_000


def test_binance_cum_follows_binance_formula_and_keeps_mm_continuous():
    """Binance: cum_n = floor_n × (MMR_n − MMR_(n−1)) + cum_(n−1) (the COIN-M page's worked
    "50 BTC × (5% − 2.5%) + 0.56 BTC = 1.81 BTC"); so MM is continuous at each bracket's floor."""
    from backstop.model.venue_specs import BINANCE_BTC, BINANCE_ETH, maintenance_deductions

    for table in (BINANCE_BTC, BINANCE_ETH):
        computed = maintenance_deductions([(D(cap), D(mmr)) for cap, mmr, _, _ in table])
        assert computed == [D(cum) for _, _, _, cum in table]
        for (cap, mmr, _, cum), (_, up_mmr, _, up_cum) in itertools.pairwise(table):
            assert D(cap) * D(mmr) - D(cum) == D(cap) * D(up_mmr) - D(up_cum)
    assert maintenance_deductions([(D(50), D("0.025")), (D(100), D("0.05"))])[1] == D("1.25")
    assert D(50) * (D("0.05") - D("0.025")) + D("0.56") == D("1.81")


def _binance_lp(wb: Fraction, tmm: Fraction, upnl: Fraction, cum: Fraction, side: int, size: Fraction,
                entry: Fraction, mmr: Fraction) -> Fraction:
    """Binance's published USDⓈ-M liquidation price (one-way mode):
    LP = (WB − TMM1 + UPNL1 + cumB − side·pos·EP) / (pos·MMR − side·pos)."""
    return (wb - tmm + upnl + cum - side * size * entry) / (size * mmr - side * size)


def test_binance_isolated_liquidation_price_with_cum():
    """Isolated: WB = the position's margin, TMM1 = UPNL1 = 0. A 5 BTC long at 100,000, 10×:
    notional 500,000 is in the 1% bracket with cum 1,300, so LP = (50,000 + 1,300 − 500,000)
    / (5 × 0.01 − 5) = 90,646.46; without cum it would be 90,383.84 (0.29% off)."""
    cat = _catalogue("binance", BTC_USDT_SWAP="100000")
    ex = _setup("binance", cat, {"BTC-USDT": "100000"}, "60000")
    _open(ex, 1, BTC, Side.BUY, "500", "100000", ISO, "10")
    margin = Fraction(queries.isolated_margin(ex.state, ex.state.existing_position(1, BTC, ISO),
                                              cat.get(BTC)), UNIT)
    assert margin == 50_000
    expected = _binance_lp(margin, Fraction(0), Fraction(0), Fraction(1300), 1, Fraction(5),
                           Fraction(100_000), Fraction(1, 100))
    assert abs(float(expected) - 90646.46) < 0.01
    assert _within(_liq_px(ex, 1, BTC, ISO), expected, D("0.1"))


def test_binance_cross_liquidation_price_counts_the_other_positions():
    """Cross: the ETH short's MM (TMM1) and upl (UPNL1) enter BTC's liquidation price. The
    engine's cross liqPx (the rest of the account held where it is) matches Binance's formula."""
    cat = _catalogue("binance", BTC_USDT_SWAP="100000", ETH_USDT_SWAP="3000")
    ex = _setup("binance", cat, {"BTC-USDT": "100000", "ETH-USDT": "3000"}, "200000")
    _open(ex, 1, BTC, Side.BUY, "500", "100000", CROSS, "20")        # 5 BTC, 1% bracket, cum 1,300
    _open(ex, 1, ETH, Side.SELL, "2000", "3000", CROSS, "20")        # 200 ETH short, 600k notional
    ex.execute(SetIndexPrice(1, "ETH-USDT", D("3100")))              # the short loses 20,000
    state, eth = ex.state, cat.get(ETH)
    eth_pos = state.existing_position(1, ETH, CROSS)
    wb = Fraction(queries.cross_figures(state, 1, "USDT").cash, UNIT)
    tmm = Fraction(queries.position_mm(state, eth_pos, eth), UNIT)
    upnl = Fraction(queries.position_upl(state, eth_pos, eth), UNIT)
    assert upnl == -20_000 and tmm == Fraction(620_000 * 2, 100) - 5365   # 2% bracket, cum 5,365
    expected = _binance_lp(wb, tmm, upnl, Fraction(1300), 1, Fraction(5), Fraction(100_000),
                           Fraction(1, 100))
    assert _within(_liq_px(ex, 1, BTC, CROSS), expected, D("0.1"))


def _binance_page_catalogue_exchange() -> tuple[Exchange, Catalogue]:
    """The binance profile's BTC and ETH USDT swaps with the brackets mapped to contracts at
    the page's marks (BTC in the 2.5% bracket, cum 16,300; ETH in the 10% bracket, cum
    135,365), BTC's tick 0.01 as Binance's was (the page's entry is off OKX's 0.1 grid), no
    trading fee (the page's wallet balance is after fees); the trader holds 1,535,443.01."""
    specs = venue_specs("binance", {BTC: "31967.27", ETH: "1335.18"})
    for spec in specs:
        spec.update(makerFee="0", takerFee="0")
        if spec["instId"] == BTC:
            spec["tickSz"] = "0.01"
    cat = catalogue_from_specs([s for s in specs if s["instId"] in (BTC, ETH)])
    return _setup("binance", cat, {}, "1535443.01"), cat


def _binance_page_account() -> tuple[Exchange, Catalogue]:
    """Binance's worked cross-margin account ("How to Calculate Liquidation Price of USDⓈ-M
    Futures Contracts", https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93;
    its figures as freqtrade's tests/leverage/test_liquidation_price.py quotes them): wallet
    balance 1,535,443.01 USDT; long 109.488 BTCUSDT at 32,481.98 (mark 31,967.27) and long
    3,683.979 ETHUSDT at 1,456.84 (mark 1,335.18), one-way mode, cross."""
    ex, cat = _binance_page_catalogue_exchange()
    ex.execute(SetIndexPrice(0, "BTC-USDT", D("32481.98")))
    ex.execute(SetIndexPrice(0, "ETH-USDT", D("1456.84")))
    for inst_id, px, sz, lever in ((BTC, "32481.98", "10948.8", "20"), (ETH, "1456.84", "36839.79", "5")):
        ex.execute(SetLeverage(0, 99, inst_id, CROSS, D(lever)))
        _open(ex, 1, inst_id, Side.BUY, sz, px, CROSS, lever)
    ex.execute(SetIndexPrice(1, "BTC-USDT", D("31967.27")))
    ex.execute(SetIndexPrice(1, "ETH-USDT", D("1335.18")))
    return ex, cat


def test_binance_published_cross_example_liquidation_prices():
    """Binance's page: LP of BTCUSDT = 26,316.89 and of ETHUSDT = 1,153.26, each with the
    other contract's MM (TMM1 = 356,512.508 resp. 71,200.81144) and upl (UPNL1 = −448,192.89
    resp. −56,354.57) held. The engine's cross liqPx (its own trigger, a long's highest firing
    tick) gives 26,316.89 and 1,153.25: Binance rounds to the nearest cent, the engine down."""
    ex, cat = _binance_page_account()
    state = ex.state
    assert queries.cross_figures(state, 1, "USDT").cash == 1_535_443_01 * UNIT // 100
    btc_pos, eth_pos = (state.existing_position(1, i, CROSS) for i in (BTC, ETH))
    # the page's intermediate figures, from the engine's own queries
    for pos, mm, upl in ((btc_pos, "71200.81144", "-56354.57"), (eth_pos, "356512.508", "-448192.89")):
        inst = cat.get(pos.inst_id)
        assert abs(Fraction(queries.position_mm(state, pos, inst), UNIT) - Fraction(mm)) < Fraction(1, 100)
        assert abs(Fraction(queries.position_upl(state, pos, inst), UNIT) - Fraction(upl)) < Fraction(1, 100)
    assert _within(_liq_px(ex, 1, BTC, CROSS), D("26316.89"), D("0.01"))
    assert _within(_liq_px(ex, 1, ETH, CROSS), D("1153.26"), D("0.01"))
    assert _liq_px(ex, 1, ETH, CROSS) <= D("1153.26")   # never shown safer than Binance's figure


@pytest.mark.parametrize(("inst_id", "family", "sz", "px", "lever", "expected"), [
    (ETH, "ETH-USDT", "36839.79", "1456.84", "5", "1114.78"),
    (BTC, "BTC-USDT", "10948.8", "32481.98", "20", "18778.73"),
])
def test_binance_isolated_liquidation_price_on_the_page_inputs(inst_id, family, sz, px, lever, expected):
    """Isolated, Binance's page: "WB is isolatedWalletBalance of the isolated position, TMM=0,
    UPNL=0". Binance prints no isolated figure; freqtrade's tests
    (tests/leverage/test_liquidation_price.py) apply that rule to the page's inputs, each
    position alone with an isolated wallet of 1,535,443.01: ETHUSDT 1,114.78, BTCUSDT 18,778.73.
    Here the position opens isolated and the margin is topped up to that wallet."""
    ex, cat = _binance_page_catalogue_exchange()
    ex.execute(SetIndexPrice(0, family, D(px)))
    ex.execute(SetLeverage(0, 99, inst_id, CROSS, D(lever)))
    _open(ex, 1, inst_id, Side.BUY, sz, px, ISO, lever)
    pos = ex.state.existing_position(1, inst_id, ISO)
    margin = queries.isolated_margin(ex.state, pos, cat.get(inst_id))
    ex.execute(AdjustMargin(0, 1, inst_id, D(1_535_443_01 * UNIT // 100 - margin) / UNIT))
    assert queries.isolated_margin(ex.state, pos, cat.get(inst_id)) == 1_535_443_01 * UNIT // 100
    assert _within(_liq_px(ex, 1, inst_id, ISO), D(expected), cat.get(inst_id).tick_sz)


# -------------------------------------------------------------------------------------- Bybit

def test_bybit_usdt_isolated_long_example():
    """Bybit, "Liquidation Price (USDT Contract)", Example 1
    (https://www.bybit.com/en/help-center/article/Liquidation-Price-USDT-Contract): a 1 BTC long
    at 20,000 USDT, 50×, MMR 0.5%: IM 400, MM 100, LP = 20,000 − (400 − 100) = 19,700.
    Bybit takes MM at the entry value (1 BTC × 20,000 × 0.5% = 100), and so does the engine's
    Bybit profile (``MmValuation.ENTRY``): its trigger fires at 19,700.0 exactly, the page's
    figure to the tick (at the mark's 98.50 it fired 1.5 USDT lower)."""
    cat = _catalogue("bybit", BTC_USDT_SWAP="20000")
    ex = _setup("bybit", cat, {"BTC-USDT": "20000"}, "1000")
    _open(ex, 1, BTC, Side.BUY, "100", "20000", ISO, "50")
    assert queries.isolated_margin(ex.state, ex.state.existing_position(1, BTC, ISO), cat.get(BTC)) \
        == 400 * UNIT
    pos, inst = ex.state.existing_position(1, BTC, ISO), cat.get(BTC)
    assert queries.position_mm(ex.state, pos, inst) == 100 * UNIT
    assert _liq_px(ex, 1, BTC, ISO) == D("19700")


def _bybit_inverse_cross_long() -> tuple[Exchange, Catalogue]:
    """Bybit's inverse cross example: an account balance of 0.5 BTC, long 10,000 USD of
    BTCUSD at 8,000 (here 100 BTC-USD-SWAP contracts of 100 USD), no other orders; the
    opening fee is added to the deposit so the balance after the fill is 0.5 BTC."""
    cat = _catalogue("bybit", BTC_USD_SWAP="8000")
    ex = _exchange("bybit", cat)
    ex.execute(SetIndexPrice(0, "BTC-USD", D("8000")))
    ex.execute(Deposit(0, 99, "BTC", D("1000")))
    fee = D(10_000) / D(8000) * cat.get("BTC-USD-SWAP").taker_fee
    ex.execute(Deposit(0, 1, "BTC", D("0.5") + fee))
    ex.execute(SetLeverage(0, 99, "BTC-USD-SWAP", CROSS, D("10")))
    _open(ex, 1, "BTC-USD-SWAP", Side.BUY, "100", "8000", CROSS, "10")
    assert queries.cross_figures(ex.state, 1, "BTC").cash == UNIT // 2
    return ex, cat


def test_bybit_inverse_tier_one_is_bybits_published_rate():
    """Bybit, "How to calculate Liquidation Price (Inverse Contract)"
    (https://help.bybit.com/hc/en-us/articles/360039261334-How-to-calculate-Liquidation-Price-Inverse-Contract-):
    "The minimum maintenance margin rate for perpetual contracts on Bybit is 0.5% for BTC and
    1% for ETH"; the engine's requirement for the example's position is 0.5% of its value."""
    ex, cat = _bybit_inverse_cross_long()
    btc, eth = cat.get("BTC-USD-SWAP"), cat.get("ETH-USD-SWAP")
    assert (btc.tiers[0].mmr, eth.tiers[0].mmr) == (D("0.005"), D("0.01"))
    pos = ex.state.existing_position(1, "BTC-USD-SWAP", CROSS)
    assert queries.position_mm(ex.state, pos, btc) == UNIT * 125 // 100 * 5 // 1000   # 1.25 BTC × 0.5%


def test_bybit_inverse_cross_example_liquidation_price():
    """Bybit's page, cross margin: "Bankruptcy Price = 1.00075 × 10000 / (10000/8000 + 0.5)
    = 5718.57", "10000 × (1/8000 − 1/LP) = −(0.5 − 0 − 10000/8000 × 0.5% − 10000 × 0.00075 /
    5718.57)", "Liquidation Price = 5739.50" (LP = 5739.08 rounded up to Bybit's 0.5 tick,
    the conservative side for a long). The engine values MM at entry (1.25 BTC × 0.5%) and
    the fee to close at the mark (0.075%): 0.5 + 10000(1/8000 − 1/P) = 0.00625 + 7.5/P,
    P = 10007.5/1.74375 = 5739.07, shown on the 0.1 tick at 5739.0 (a long's liqPx rounds
    down: it fires at or below it)."""
    ex, cat = _bybit_inverse_cross_long()
    liq = _liq_px(ex, 1, "BTC-USD-SWAP", CROSS)
    assert _within(liq, D("5739.50"), D("0.1"))
    assert liq == D("5739.0")
    pos = ex.state.existing_position(1, "BTC-USD-SWAP", CROSS)
    mark_at = queries.position_mm(ex.state, pos, cat.get("BTC-USD-SWAP"))
    ex.execute(SetIndexPrice(0, "BTC-USD", D("6000")))
    assert ex.state.mark_ticks["BTC-USD-SWAP"] == cat.get("BTC-USD-SWAP").px_to_ticks(D("6000"))
    assert queries.position_mm(ex.state, pos, cat.get("BTC-USD-SWAP")) == mark_at   # at entry


# -------------------------------------------------------------------------------- Hyperliquid

def _hyperliquid_lp(price: Fraction, side: int, margin_available: Fraction, size: Fraction,
                    maintenance_rate: Fraction) -> Fraction:
    """Hyperliquid's published rule (trading/liquidations): liq_price = price − side ×
    margin_available / position_size / (1 − l × side), l = 1 / maintenance leverage."""
    return price - side * margin_available / size / (1 - maintenance_rate * side)


@pytest.mark.parametrize(("side", "lever"), [(Side.BUY, "20"), (Side.SELL, "20"), (Side.BUY, "40")])
def test_hyperliquid_isolated_liquidation_price(side, lever):
    """BTC: max leverage 40×, so maintenance leverage 80× (mmr 1.25%), margin tiers page
    https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers. 1 BTC at 100,000:
    margin_available = isolated margin − MM at the price."""
    cat = _catalogue("hyperliquid", BTC_USDT_SWAP="100000")
    ex = _setup("hyperliquid", cat, {"BTC-USDT": "100000"}, "10000")
    _open(ex, 1, BTC, side, "100", "100000", ISO, lever)
    inst = cat.get(BTC)
    margin = Fraction(queries.isolated_margin(ex.state, ex.state.existing_position(1, BTC, ISO), inst),
                      UNIT)
    rate = Fraction(1, 80)
    expected = _hyperliquid_lp(Fraction(100_000), side.sign, margin - rate * 100_000, Fraction(1), rate)
    assert _within(_liq_px(ex, 1, BTC, ISO), expected, D("0.1"))


def test_hyperliquid_maintenance_is_half_the_initial_margin_at_max_leverage():
    """"The maintenance margin is half of the initial margin at max leverage": BTC 40× → 1.25%,
    ETH 25× → 2%; BTC's 20× tier from 150M of notional → 2.5%, minus the deduction that keeps
    MM continuous (150M × 1.25% = 1,875,000)."""
    cat = _catalogue("hyperliquid")
    btc, eth = cat.get(BTC), cat.get(ETH)
    assert (btc.tiers[0].mmr, eth.tiers[0].mmr) == (D("0.0125"), D("0.02"))
    assert (btc.tiers[1].mmr, btc.tiers[1].mm_deduction) == (D("0.025"), D("1875000"))
    assert (btc.max_lever, eth.max_lever) == (D(40), D(25))


# ------------------------------------------------------------------------------------- BitMEX

def test_bitmex_maintenance_counts_the_taker_fee():
    """BitMEX (https://www.bitmex.com/app/liquidation; BitMEX's answer on r/BitMEX, 2020-03-09):
    XBTUSD maintenance = 0.5% × value + taker fee × value (+ funding, not modelled). A 1 BTC
    isolated long at 100,000, 10×: liquidation where margin + upl = value × 0.575%, i.e.
    LP = (100,000 − 10,000) / (1 − 0.00575) = 90,520.49."""
    cat = _catalogue("bitmex", BTC_USDT_SWAP="100000")
    ex = _setup("bitmex", cat, {"BTC-USDT": "100000"}, "20000")
    _open(ex, 1, BTC, Side.BUY, "100", "100000", ISO, "10")
    expected = Fraction(90_000) / (1 - Fraction(575, 100_000))
    assert _within(_liq_px(ex, 1, BTC, ISO), expected, D("0.1"))


def test_bitmex_published_liquidation_example():
    """BitMEX, "Further Information about the Liquidation Process"
    (https://www.bitmex.com/app/liquidationExamples): "A trader goes long 1 contract at $100.00,
    with a liquidation price of $99.50 and a bankruptcy price of $99.00" (100×: 1% margin).
    Here 1 BTC (100 contracts) of BTC-USDT-SWAP at 100.0, 100×, isolated: the bankruptcy price
    is exactly 99.00; the trigger (0.5% maintenance + the 0.075% taker fee to close, as BitMEX's
    maintenance counts it) fires at 99.57 exactly, shown on the 0.1 tick as 99.5: BitMEX's
    figure, within one tick. The engine liquidates at 99.5, at the bankruptcy price 99.0."""
    cat = _catalogue("bitmex", BTC_USDT_SWAP="100")
    ex = _setup("bitmex", cat, {"BTC-USDT": "100"}, "10")
    _open(ex, 1, BTC, Side.BUY, "100", "100", ISO, "100")
    state, inst = ex.state, cat.get(BTC)
    pos = state.existing_position(1, BTC, ISO)
    margin = queries.isolated_margin(state, pos, inst)
    assert margin == 1 * UNIT
    bankruptcy = calculate_bankruptcy_ticks(inst, pos.size_lots, pos.cost, margin)
    assert inst.ticks_to_px(bankruptcy) == D("99.0")
    assert _within(_liq_px(ex, 1, BTC, ISO), D("99.50"), inst.tick_sz)
    events = ex.execute(SetIndexPrice(1, "BTC-USDT", _liq_px(ex, 1, BTC, ISO)))
    started = [e for e in events if isinstance(e, LiquidationStarted) and e.uid == 1]
    assert started and inst.ticks_to_px(started[0].bankruptcy_ticks) == D("99.0")


def test_bybit_average_entry_price_example():
    """Bybit, "How to Calculate Average Entry Price"
    (https://www.bybit.com/en/help-center/article/How-to-Calculate-Average-Entry-Price): 50 USD
    of BTCUSD at 10,000 and 50 more at 15,000 are 0.00833333 BTC, so the average entry is
    100 / 0.00833333 = 12,000. On BTC-USD-SWAP (100 USD contracts) that is 0.5 + 0.5 contract;
    the engine's avgPx is exactly 12,000 although each settled value is floored to 1e-8 BTC."""
    cat = _catalogue("bybit")
    ex = _exchange("bybit", cat)
    ex.execute(Deposit(0, 99, "BTC", D("100")))
    ex.execute(Deposit(0, 1, "BTC", D("1")))
    for px in ("10000", "15000"):
        ex.execute(SetIndexPrice(0, "BTC-USD", D(px)))
        _open(ex, 1, "BTC-USD-SWAP", Side.BUY, "0.5", px, CROSS, "10")
    pos = ex.state.existing_position(1, "BTC-USD-SWAP", CROSS)
    assert pos.size_lots == 10
    assert queries.avg_px(cat.get("BTC-USD-SWAP"), pos) == D("12000")


def test_bybit_adl_candidate_uses_the_entry_valued_mm():
    """The ADL candidate's MM (a ranking input) is the engine's one MM: at entry on Bybit, so
    it holds still while the mark falls from 8,000 to 6,000."""
    from backstop.engine.adl import build_candidates

    ex, cat = _bybit_inverse_cross_long()
    ex.execute(SetIndexPrice(1, "BTC-USD", D("6000")))
    inst = cat.get("BTC-USD-SWAP")
    pos = ex.state.existing_position(1, "BTC-USD-SWAP", CROSS)
    (cand,) = [c for c in build_candidates(ex.state, inst, 1) if c.uid == 1]
    assert cand.mm == queries.position_mm(ex.state, pos, inst) == UNIT * 125 // 100 * 5 // 1000
