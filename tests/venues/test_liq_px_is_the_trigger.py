"""The displayed ``liqPx`` is the price at which the engine's own trigger fires, on the
conservative tick (issue 14): a long's is the highest mark at which its unit is liquidatable,
a short's the lowest. Property over linear and inverse contracts, cross and isolated margin,
long and short, every venue profile (OKX's fee in the trigger, Binance's ``cum`` deductions,
Hyperliquid's maintenance leverage, BitMEX's fee), with another position in the cross unit.

Two checks per example: the exact predicate the risk pass confirms with
(``queries.is_unit_of_position_liquidatable``) at ``liqPx`` and one tick on the safe side; and
the whole engine, a ``SetIndexPrice`` to each of those prices on a fresh exchange, which
liquidates at ``liqPx`` and not one tick away.
"""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backstop.engine import queries
from backstop.engine.config import Venue
from backstop.engine.exchange import Exchange
from backstop.engine.venues import venue_profile
from backstop.model.commands import Deposit, PlaceOrder, SetIndexPrice, SetLeverage
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import LiquidationStarted

# instId, family, settlement currency, another instrument of the same currency (cross unit)
INSTRUMENTS = {
    "BTC-USDT-SWAP": ("BTC-USDT", "USDT", ("ETH-USDT-SWAP", "ETH-USDT", "2500", "10")),
    "BTC-USD-SWAP": ("BTC-USD", "BTC", None),
    "ETH-USD-SWAP": ("ETH-USD", "ETH", None),
}
MAKER, TRADER = 99, 1


def _build(venue: Venue, inst_id: str, px: str, sz: str, lever: str, side: Side, mode: MarginMode,
           deposit: str, other: bool) -> Exchange:
    family, ccy, second = INSTRUMENTS[inst_id]
    ex = Exchange(venue_profile(venue).catalogue(), venue_profile(venue).config)
    ex.execute(SetIndexPrice(0, family, D(px)))
    ex.execute(Deposit(0, MAKER, ccy, D("1000000000")))
    ex.execute(Deposit(0, TRADER, ccy, D(deposit)))
    legs = [(inst_id, px, sz, side)]
    if other and second is not None and mode is MarginMode.CROSS:
        other_id, other_family, other_px, other_sz = second
        ex.execute(SetIndexPrice(0, other_family, D(other_px)))
        legs.append((other_id, other_px, other_sz, side.opposite))
    for leg_id, leg_px, leg_sz, leg_side in legs:
        for uid in (MAKER, TRADER):
            ex.execute(SetLeverage(0, uid, leg_id, mode if uid == TRADER else MarginMode.CROSS, D(lever)))
        ex.execute(PlaceOrder(0, MAKER, leg_id, leg_side.opposite, OrderType.LIMIT, D(leg_sz), D(leg_px)))
        ex.execute(PlaceOrder(0, TRADER, leg_id, leg_side, OrderType.MARKET, D(leg_sz), td_mode=mode))
    return ex


def _liquidatable_at(ex: Exchange, pos, mark_ticks: int) -> bool:
    """The exact predicate with only this instrument's mark moved (restored after)."""
    saved = ex.state.mark_ticks[pos.inst_id]
    ex.state.mark_ticks[pos.inst_id] = mark_ticks
    try:
        return queries.is_unit_of_position_liquidatable(ex.state, pos)
    finally:
        ex.state.mark_ticks[pos.inst_id] = saved


def _engine_liquidates_at(build, inst_id: str, mark_ticks: int) -> bool:
    """A fresh exchange, the index (the mark follows it) moved straight to ``mark_ticks``:
    does the engine start liquidating the trader's position?"""
    ex = build()
    inst = ex.catalogue.get(inst_id)
    family = INSTRUMENTS[inst_id][0]
    events = ex.execute(SetIndexPrice(1, family, inst.ticks_to_px(mark_ticks)))
    assert ex.state.mark_ticks[inst_id] == mark_ticks
    return any(isinstance(e, LiquidationStarted) and e.uid == TRADER for e in events)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(venue=st.sampled_from(list(Venue)), inst_id=st.sampled_from(list(INSTRUMENTS)),
       side=st.sampled_from([Side.BUY, Side.SELL]),
       mode=st.sampled_from([MarginMode.ISOLATED, MarginMode.CROSS]),
       px_steps=st.integers(200, 1200), size_steps=st.integers(1, 40), lever=st.sampled_from(
           ["2", "3", "5", "10", "20"]), extra=st.sampled_from(["0", "0.3", "1"]), other=st.booleans())
def test_liq_px_is_where_the_engine_trigger_fires(venue, inst_id, side, mode, px_steps, size_steps,
                                                    lever, extra, other):
    linear = inst_id.endswith("USDT-SWAP")
    px = str(px_steps * (100 if inst_id.startswith("BTC") else 5))           # 20,000–120,000 BTC
    sz = str(D(size_steps) / (10 if linear else 1))
    # the deposit covers the IM at ``lever`` plus ``extra`` × the notional more (cross: spare cash)
    notional = D(sz) * (D("0.01") * D(px) if linear else D(100 if inst_id.startswith("BTC") else 10) / D(px))
    deposit = str((notional * (1 / D(lever) + D("0.01") + D(extra))).quantize(D("0.00000001")))

    def build() -> Exchange:
        return _build(venue, inst_id, px, sz, lever, side, mode, deposit, other)

    ex = build()
    pos = ex.state.existing_position(TRADER, inst_id, mode)
    assert pos is not None and pos.size_lots != 0
    liq = queries.liquidation_ticks(ex.state, pos)
    assume(liq is not None)                    # e.g. an inverse short at ~1× never liquidates
    safe = liq + (1 if pos.size_lots > 0 else -1)
    assume(safe > 0)
    assert _liquidatable_at(ex, pos, liq)
    assert not _liquidatable_at(ex, pos, safe)
    # the displayed figure is the conservative side of the exact trigger: a long never shows
    # a lower price than where it is liquidated, a short never a higher one
    shown = queries.position_figures(ex.state, pos).liq_ticks
    assert shown == liq
    mark = ex.state.mark_ticks[inst_id]
    assume(liq != mark)                         # not already at the trigger
    assert _engine_liquidates_at(build, inst_id, liq)
    assert not _engine_liquidates_at(build, inst_id, safe)
