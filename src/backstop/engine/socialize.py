"""Socialized loss (Drift's last resort): a deficit the fund cannot pay is spread over the
open positions on the side that gained, in proportion to their size, by raising their cost
basis (which lowers their PnL). The bankrupt account is made whole from the clearing account,
so conservation holds exactly."""

from __future__ import annotations

from backstop.math.adl import allocate_pro_rata
from backstop.model.events import Event, PositionChanged
from backstop.model.instrument import Instrument
from backstop.state.exchange_state import ExchangeState
from backstop.state.ledger import LedgerKey, clearing_key, fees_key, isolated_key
from backstop.state.positions import Position


def apply_socialized_loss(state: ExchangeState, inst: Instrument, bankrupt_side: int,
                          wallet: LedgerKey, amount: int, ts: int) -> list[Event]:
    """Cover ``amount`` in ``wallet`` by charging the winners of ``inst``.

    Winners: open positions opposite to the bankrupt one, else every open position. With no
    open position at all, the exchange's fee revenue absorbs it.
    """
    winners = _winners(state, inst, bankrupt_side)
    if not winners:
        state.ledger.transfer(fees_key(inst.settle_ccy), wallet, amount)
        return []
    state.ledger.transfer(clearing_key(inst.inst_id, inst.settle_ccy), wallet, amount)
    # shares in proportion to lots: amount·size/Σsize, rounded down, leftovers by remainder
    shares = allocate_pro_rata(amount, [abs(p.size_lots) for p in winners])
    events: list[Event] = []
    for pos, share in zip(winners, shares, strict=True):
        pos.apply_cost_shift(share)
        margin = state.ledger.balance(isolated_key(pos.uid, inst.inst_id, inst.settle_ccy))
        events.append(PositionChanged(ts, pos.uid, inst.inst_id, pos.mgn_mode.value, pos.size_lots,
                                      pos.cost, margin, -share))
    return events


def _winners(state: ExchangeState, inst: Instrument, bankrupt_side: int) -> list[Position]:
    open_positions = [p for p in state.positions.values() if p.inst_id == inst.inst_id and p.size_lots]
    opposite = [p for p in open_positions if p.size_lots * bankrupt_side < 0]
    return sorted(opposite or open_positions, key=lambda p: p.key)
