"""ADL by profit haircut (``adl.haircut``): winners keep their positions and pay the deficit
from their unrealized profit (Chitra, arXiv 2512.01112 and 2602.15182).

The queue closes whole positions of ranked winners against the bankrupt one. A haircut policy
instead closes the bankrupt lots in the book, at any price (a haircut finds no counterparty,
so it needs liquidity: with an empty book nothing closes and the lots go down the waterfall),
and then covers the liquidated unit's **shortfall against the ADL base price**: what its fills
lost beyond the price a queue close would have given it
(:func:`backstop.engine.liquidation.adl_base_ticks`, the bankruptcy price when the fund cannot
pay). The haircut goes where the fills' loss went (the isolated margin, or the cross cash);
an isolated position the fills closed then releases what is left of its margin to cash, as a
close does. The liquidated unit so ends as an ADL close at that price leaves it, and the fund
pays what it would have paid; only who pays the rest differs. (After a partial cut of an
isolated position the haircut stays in the margin behind the rest of the position, where a
close at the base price would have sent part of it to cash; the unit's money is the same.)

Each winner's capacity is its profit: the position's upl at the mark, and for a cross
position at most the account's whole cross upl in the currency, so a haircut never reaches
principal (cash, margin) and never leaves a winner with a loss. The haircut vector comes from
:mod:`backstop.math.haircut` (pro-rata, risk-aware by leverage, or the water-filling minimum
overshoot); each amount moves from the instrument's clearing account to the liquidated unit's
wallet and raises the winner's cost basis by the same amount (``Position.apply_cost_shift``),
so its upl falls by exactly what was taken and conservation holds. What the winners' profit
cannot cover stays as the unit's deficit and goes down the waterfall (the fund, then the
socialized loss), as with the queue when its winners run out.
"""

from __future__ import annotations

from dataclasses import dataclass

from backstop.engine.config import AdlHaircut, EngineConfig
from backstop.engine.orders import apply_forced_close, plan_forced_close
from backstop.engine.queries import cross_figures, instrument_of, isolated_margin, position_upl
from backstop.math.haircut import (
    allocate_leverage_haircut,
    allocate_min_overshoot,
    allocate_pro_rata_haircut,
)
from backstop.math.values import calculate_fill_shortfall, calculate_notional
from backstop.model.events import Event, PositionChanged, ProfitHaircut
from backstop.model.instrument import Instrument
from backstop.state.exchange_state import ExchangeState
from backstop.state.ledger import LedgerKey, cash_key, clearing_key, isolated_key
from backstop.state.positions import Position


@dataclass(frozen=True, slots=True)
class Winner:
    """One profitable opposite position: ``capacity`` (its profit that can be taken),
    ``notional`` at the mark and the ``equity`` behind it (isolated equity, or the account's
    cross equity), money units."""

    pos: Position
    capacity: int
    notional: int
    equity: int


def deleverage_by_haircut(state: ExchangeState, config: EngineConfig, inst: Instrument,
                          liquidated: Position, lots: int, base_ticks: int,
                          ts: int) -> tuple[int, list[Event]]:
    """Close up to ``lots`` of ``liquidated`` in the book at any price, then haircut the
    winners' profit for the shortfall against ``base_ticks``. Returns the lots closed and
    the events (the fill's, then one ``PositionChanged`` and ``ProfitHaircut`` per winner)."""
    close_side = -1 if liquidated.size_lots > 0 else 1
    plan = plan_forced_close(state, inst, liquidated, lots)
    if not plan.filled_lots:
        return 0, []
    needed = calculate_fill_shortfall(inst, [(qty, px) for _maker, qty, px in plan.fills],
                                      -close_side, base_ticks)
    category = "full_liquidation" if lots == abs(liquidated.size_lots) else "partial_liquidation"
    events = apply_forced_close(state, inst, liquidated, plan, category, ts)
    hole = isolated_key(liquidated.uid, inst.inst_id, inst.settle_ccy) if liquidated.is_isolated \
        else cash_key(liquidated.uid, inst.settle_ccy)
    events.extend(apply_profit_haircuts(state, config.adl.haircut, inst, close_side, liquidated.uid,
                                        hole, needed, ts))
    if liquidated.is_isolated and liquidated.size_lots == 0:  # released as a full close releases it
        left = max(0, state.ledger.balance(hole))
        state.ledger.transfer(hole, cash_key(liquidated.uid, inst.settle_ccy), left)
    return plan.filled_lots, events


def find_winners(state: ExchangeState, inst: Instrument, side_sign: int, exclude_uid: int) -> list[Winner]:
    """Every other account's open position in ``inst`` with the sign ``side_sign`` and
    profit at the mark, in key order."""
    out = []
    side = [pos for pos in state.positions.values()
            if pos.inst_id == inst.inst_id and pos.size_lots * side_sign > 0 and pos.uid != exclude_uid]
    for pos in sorted(side, key=lambda p: p.key):  # sorts only the side, not every position
        upl = position_upl(state, pos, inst)
        if upl <= 0:
            continue
        notional = calculate_notional(inst, pos.size_lots, state.mark_ticks[inst.inst_id])
        if pos.is_isolated:
            out.append(Winner(pos, upl, notional, isolated_margin(state, pos, inst) + upl))
        else:
            figures = cross_figures(state, pos.uid, inst.settle_ccy)
            out.append(Winner(pos, min(upl, max(0, figures.upl)), notional, figures.equity))
    return [w for w in out if w.capacity > 0]


def calculate_haircuts(kind: AdlHaircut, needed: int, winners: list[Winner]) -> list[int]:
    """The haircut vector of policy ``kind`` over ``winners`` (see :mod:`backstop.math.haircut`)."""
    capacities = [w.capacity for w in winners]
    if kind == AdlHaircut.PRO_RATA:
        return allocate_pro_rata_haircut(needed, capacities)
    if kind == AdlHaircut.LEVERAGE:
        return allocate_leverage_haircut(needed, capacities, [w.notional for w in winners],
                                         [w.equity for w in winners])
    if kind == AdlHaircut.MIN_OVERSHOOT:
        return allocate_min_overshoot(needed, capacities)
    raise ValueError(f"no haircut allocation for adl.haircut={kind.value!r}")


def apply_profit_haircuts(state: ExchangeState, kind: AdlHaircut, inst: Instrument, close_side: int,
                          liquidated_uid: int, hole: LedgerKey, needed: int, ts: int) -> list[Event]:
    """Take ``needed`` (at most what the winners on the ``close_side`` can pay) from the
    winners' profit into ``hole``, the liquidated unit's wallet."""
    if needed <= 0:
        return []
    winners = find_winners(state, inst, close_side, liquidated_uid)
    events: list[Event] = []
    clearing = clearing_key(inst.inst_id, inst.settle_ccy)
    for winner, amount in zip(winners, calculate_haircuts(kind, needed, winners), strict=True):
        if not amount:
            continue
        pos = winner.pos
        state.ledger.transfer(clearing, hole, amount)
        pos.apply_cost_shift(amount)
        margin = isolated_margin(state, pos, instrument_of(state, pos)) if pos.is_isolated else 0
        events.append(PositionChanged(ts, pos.uid, inst.inst_id, pos.mgn_mode.value, pos.size_lots,
                                      pos.cost, margin, 0))
        events.append(ProfitHaircut(ts, pos.uid, inst.inst_id, pos.mgn_mode.value, amount,
                                    winner.capacity, liquidated_uid))
    return events
