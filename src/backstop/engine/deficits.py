"""Closing every hole a command leaves: no account ends a command with negative cash or a
negative isolated margin.

A fill at a price the account cannot afford (a resting order filled after the market moved,
a close beyond the bankruptcy price, funding on an exhausted margin) can leave a deficit
behind. Before the command returns:

1. an account's negative cross cash is first paid from its own unrealized profit in the same
   currency: a profitable cross position's profit is realized into cash (its cost basis rises
   by the amount, so its upl falls by exactly that much; Drift's and dYdX's PnL settlement),
   most profitable first. Equity is unchanged, and no profit leaves the account;
2. what is left, and any negative isolated margin, is a bankruptcy loss: the instrument's
   fund pays it (``bankruptcy_loss``), and what the fund cannot pay is socialized over the
   instrument's open positions (the waterfall's last step). A fund never goes below zero.
"""

from __future__ import annotations

from collections.abc import Iterable

from backstop.engine.config import EngineConfig
from backstop.engine.funds import apply_fund_payout, fund_for
from backstop.engine.queries import cross_positions, instrument_of, position_upl
from backstop.engine.socialize import apply_socialized_loss
from backstop.model.enums import MarginMode
from backstop.model.events import (
    AutoDeleveraged,
    DeficitCovered,
    Event,
    FundingPaid,
    LiquidationSettled,
    PositionChanged,
)
from backstop.model.instrument import Instrument
from backstop.state.exchange_state import ExchangeState
from backstop.state.ledger import LedgerKey, cash_key, clearing_key, isolated_key
from backstop.state.positions import Position

_MONEY_EVENTS = (PositionChanged, FundingPaid, AutoDeleveraged, LiquidationSettled)


def apply_cover_deficits(state: ExchangeState, config: EngineConfig, events: Iterable[Event],
                         ts: int) -> list[Event]:
    """Cover the deficits of every account the events moved money for."""
    isolated: set[tuple[int, str]] = set()
    cross: set[tuple[int, str]] = set()
    instruments = state.catalogue.instruments
    for event in events:
        if isinstance(event, _MONEY_EVENTS):
            inst = instruments[event.inst_id]  # type: ignore[index]
            cross.add((event.uid, inst.settle_ccy))
            if event.mgn_mode == "isolated":
                isolated.add((event.uid, event.inst_id))
    out: list[Event] = []
    for uid, inst_id in sorted(isolated):
        inst = instruments[inst_id]  # type: ignore[index]
        key = isolated_key(uid, inst_id, inst.settle_ccy)
        if state.ledger.balance(key) < 0:
            out.extend(_cover(state, config, inst, uid, "isolated", key, 0, ts))
    for uid, ccy in sorted(cross):
        key = cash_key(uid, ccy)
        if state.ledger.balance(key) < 0:
            out.extend(_cover_cross(state, config, uid, ccy, key, ts))
    return out


def _cover_cross(state: ExchangeState, config: EngineConfig, uid: int, ccy: str, key: LedgerKey,
                 ts: int) -> list[Event]:
    events: list[Event] = []
    settled = 0
    positions = cross_positions(state, uid, ccy)
    for pos in sorted(positions, key=lambda p: (-position_upl(state, p, instrument_of(state, p)), p.key)):
        debt = -state.ledger.balance(key)
        inst = instrument_of(state, pos)
        profit = position_upl(state, pos, inst)
        if debt <= 0 or profit <= 0:
            break
        amount = min(debt, profit)
        state.ledger.transfer(clearing_key(inst.inst_id, ccy), key, amount)
        pos.apply_settle_profit(amount)
        settled += amount
        events.append(PositionChanged(ts, uid, inst.inst_id, pos.mgn_mode.value, pos.size_lots,
                                      pos.cost, 0, amount))
    if state.ledger.balance(key) >= 0:
        return [*events, DeficitCovered(ts, uid, "", "cross", ccy, settled, 0, 0)]
    inst = _instrument_for_cross_debt(state, positions, ccy)
    return [*events, *_cover(state, config, inst, uid, "cross", key, settled, ts)]


def _instrument_for_cross_debt(state: ExchangeState, positions: list[Position], ccy: str) -> Instrument:
    """Whose fund a cross deficit falls on: the account's most losing position's
    instrument, or the first instrument settled in the currency."""
    if positions:
        worst = min(positions, key=lambda p: (position_upl(state, p, instrument_of(state, p)), p.key))
        return instrument_of(state, worst)
    return next(i for i in state.catalogue if i.settle_ccy == ccy)


def _cover(state: ExchangeState, config: EngineConfig, inst: Instrument, uid: int, mode: str,
           key: LedgerKey, settled: int, ts: int) -> list[Event]:
    """The fund pays the deficit in ``key``; whatever it cannot pay is socialized."""
    deficit = -state.ledger.balance(key)
    paid, events = apply_fund_payout(state, config, fund_for(state, inst.inst_id), key, deficit, ts)
    socialized = deficit - paid
    if socialized:
        pos = state.positions.get((uid, inst.inst_id, MarginMode(mode)))
        side = (1 if pos.size_lots > 0 else -1) if pos is not None and pos.size_lots else 0
        events.extend(apply_socialized_loss(state, inst, side, key, socialized, ts))
    inst_id = inst.inst_id if mode == "isolated" else ""
    events.append(DeficitCovered(ts, uid, inst_id, mode, inst.settle_ccy, settled, paid, socialized))
    return events
