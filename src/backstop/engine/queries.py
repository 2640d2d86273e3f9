"""Account figures the engine and the invariants check: equity, requirements, availability (money units).

OKX single-currency margin (``acctLv`` 2): each settlement currency is margined on its own.
Cross positions share the currency's cash; an isolated position stands on its own margin.
"""

from __future__ import annotations

from dataclasses import dataclass

from backstop.math.margin import calculate_initial_margin, calculate_mm_plus_fee
from backstop.math.values import calculate_notional, calculate_upl
from backstop.model.enums import MarginMode
from backstop.model.instrument import Instrument
from backstop.state.exchange_state import ExchangeState
from backstop.state.ledger import cash_key, isolated_key
from backstop.state.positions import Position


@dataclass(frozen=True, slots=True)
class CrossFigures:
    """One account's cross figures in one currency."""

    cash: int
    upl: int
    position_im: int
    order_frozen: int
    mm_plus_fee: int

    @property
    def equity(self) -> int:
        return self.cash + self.upl

    @property
    def available(self) -> int:
        """OKX ``availEq``: equity less the IM of cross positions and of open orders."""
        return self.equity - self.position_im - self.order_frozen

    @property
    def max_withdrawal(self) -> int:
        """Cash that can leave: never unrealized profit, never below the requirements."""
        return max(0, min(self.cash - self.order_frozen, self.available))


def instrument_of(state: ExchangeState, pos: Position) -> Instrument:
    return state.catalogue.instruments[pos.inst_id]  # type: ignore[index]


def lever_cents(state: ExchangeState, uid: int, inst: Instrument, mgn_mode: MarginMode) -> int:
    """The account's leverage for this instrument and mode; default 10× capped by the
    instrument's maximum."""
    return state.leverage.get((uid, inst.inst_id, mgn_mode), inst.default_lever_cents)


def position_im(state: ExchangeState, pos: Position, inst: Instrument,
                lever: int | None = None) -> int:
    """IM of a position at mark: notional / leverage (the account's, unless given), rounded
    up."""
    notional = calculate_notional(inst, pos.size_lots, state.mark_ticks[inst.inst_id])
    if lever is None:
        lever = lever_cents(state, pos.uid, inst, pos.mgn_mode)
    return calculate_initial_margin(notional, lever)


def cross_figures(state: ExchangeState, uid: int, ccy: str) -> CrossFigures:
    """Cash, cross upl, cross IM, open-order IM and cross MM + liquidation fee."""
    upl = im = mm = 0
    for pos in state.account_positions.get(uid, {}).values():
        if pos.is_isolated or pos.size_lots == 0:
            continue
        inst = instrument_of(state, pos)
        if inst.settle_ccy != ccy:
            continue
        mark = state.mark_ticks[inst.inst_id]
        upl += calculate_upl(inst, pos.size_lots, pos.cost, mark)
        im += position_im(state, pos, inst)
        mm += calculate_mm_plus_fee(inst, pos.size_lots, mark)
    return CrossFigures(
        cash=state.ledger.balance(cash_key(uid, ccy)),
        upl=upl,
        position_im=im,
        order_frozen=state.frozen.get((uid, ccy), 0),
        mm_plus_fee=mm,
    )


def isolated_margin(state: ExchangeState, pos: Position, inst: Instrument) -> int:
    return state.ledger.balance(isolated_key(pos.uid, pos.inst_id, inst.settle_ccy))


def isolated_equity(state: ExchangeState, pos: Position, inst: Instrument) -> int:
    """Margin + upl at mark of an isolated position."""
    mark = state.mark_ticks[inst.inst_id]
    return isolated_margin(state, pos, inst) + calculate_upl(inst, pos.size_lots, pos.cost, mark)


def is_account_liquidatable(state: ExchangeState, uid: int) -> bool:
    """Whether any of the account's cross books or isolated positions is at or below a margin
    ratio of 100%."""
    currencies = set()
    for pos in state.account_positions.get(uid, {}).values():
        if pos.size_lots == 0:
            continue
        inst = instrument_of(state, pos)
        if pos.is_isolated:
            mm = calculate_mm_plus_fee(inst, pos.size_lots, state.mark_ticks[inst.inst_id])
            if isolated_equity(state, pos, inst) <= mm:
                return True
        else:
            currencies.add(inst.settle_ccy)
    for ccy in currencies:
        figures = cross_figures(state, uid, ccy)
        if figures.equity <= figures.mm_plus_fee:
            return True
    return False


def account_negative_outside_liquidation(state: ExchangeState) -> int | None:
    """The first account with negative cross equity or a negative isolated position while not
    liquidatable, or ``None``."""
    for uid in sorted(state.account_positions.keys() | state.accounts):
        if _has_negative_equity(state, uid) and not is_account_liquidatable(state, uid):
            return uid
    return None


def _has_negative_equity(state: ExchangeState, uid: int) -> bool:
    currencies = set(state.ledger.cash_currencies.get(str(uid), ()))
    for pos in state.account_positions.get(uid, {}).values():
        inst = instrument_of(state, pos)
        currencies.add(inst.settle_ccy)
        if pos.is_isolated and pos.size_lots and isolated_equity(state, pos, inst) < 0:
            return True
    return any(cross_figures(state, uid, ccy).equity < 0 for ccy in currencies)
