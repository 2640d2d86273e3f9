"""Deposits, withdrawals, leverage and isolated margin adjustments."""

from __future__ import annotations

from backstop.engine.validation import parse_lever, parse_money
from backstop.math.margin import find_tier
from backstop.model import errors
from backstop.model.commands import AdjustMargin, Deposit, SetLeverage, Withdraw
from backstop.model.enums import MarginMode
from backstop.model.errors import Rejection
from backstop.model.events import Deposited, Event, LeverageSet, MarginAdjusted, Rejected, Withdrawn
from backstop.model.instrument import Instrument
from backstop.state.exchange_state import ExchangeState
from backstop.engine.queries import cross_figures, isolated_equity, position_im
from backstop.state.ledger import cash_key, isolated_key


def deposit(state: ExchangeState, cmd: Deposit) -> list[Event]:
    amount = parse_money(cmd.amount)
    if isinstance(amount, Rejection):
        return [_rejected(cmd, amount)]
    state.accounts.add(cmd.uid)
    state.ledger.apply_deposit(cash_key(cmd.uid, cmd.ccy), amount)
    return [Deposited(cmd.ts, cmd.uid, cmd.ccy, amount)]


def withdraw(state: ExchangeState, cmd: Withdraw) -> list[Event]:
    """Limited to cash that is neither unrealized profit nor needed as margin (58350)."""
    amount = parse_money(cmd.amount)
    if isinstance(amount, Rejection):
        return [_rejected(cmd, amount)]
    if amount > cross_figures(state, cmd.uid, cmd.ccy).max_withdrawal:
        return [_rejected(cmd, errors.reject(errors.INSUFFICIENT_BALANCE, "Insufficient balance"))]
    state.ledger.apply_withdrawal(cash_key(cmd.uid, cmd.ccy), amount)
    return [Withdrawn(cmd.ts, cmd.uid, cmd.ccy, amount)]


def set_leverage(state: ExchangeState, cmd: SetLeverage) -> list[Event]:
    """Leverage for one instrument and margin mode, within the tier of the position and open
    orders (51004). Cross: the account must stay above its IM afterwards (51008). Isolated:
    a position's margin is topped up from cash to the new IM when it falls short."""
    inst = state.catalogue.get(cmd.inst_id)
    if inst is None:
        return [_rejected(cmd, errors.reject(errors.NO_SUCH_INSTRUMENT, "Instrument ID does not exist"))]
    cents = parse_lever(inst, cmd.lever)
    if isinstance(cents, Rejection):
        return [_rejected(cmd, cents)]
    exposure = _exposure_lots(state, cmd.uid, cmd.inst_id, cmd)
    tier = find_tier(inst.tiers, exposure)
    if tier is None or cents > tier.max_lever * 100:
        return [_rejected(cmd, errors.reject(errors.OVER_TIER_LIMIT,
                                             "Leverage exceeds the tier limit for this position"))]
    shortfall = _leverage_shortfall(state, cmd, inst, cents)
    if shortfall is None:
        return [_rejected(cmd, errors.reject(errors.INSUFFICIENT_MARGIN, "Insufficient margin"))]
    state.leverage[(cmd.uid, inst.inst_id, cmd.mgn_mode)] = cents
    if shortfall:
        state.ledger.transfer(cash_key(cmd.uid, inst.settle_ccy),
                              isolated_key(cmd.uid, inst.inst_id, inst.settle_ccy), shortfall)
    return [LeverageSet(cmd.ts, cmd.uid, inst.inst_id, cmd.mgn_mode.value, cents)]


def _exposure_lots(state: ExchangeState, uid: int, inst_id: str, cmd: SetLeverage) -> int:
    pos = state.existing_position(uid, inst_id, cmd.mgn_mode)
    resting = sum(o.sz_lots for o in state.open_orders.get(uid, {}).values()
                  if o.inst_id == inst_id and o.td_mode is cmd.mgn_mode)
    return (abs(pos.size_lots) if pos else 0) + resting


def _leverage_shortfall(state: ExchangeState, cmd: SetLeverage, inst: Instrument,
                        cents: int) -> int | None:
    """Margin to move for the new leverage (0 if none), or ``None`` when it cannot be met."""
    pos = state.existing_position(cmd.uid, inst.inst_id, cmd.mgn_mode)
    if pos is None or pos.size_lots == 0:
        return 0
    figures = cross_figures(state, cmd.uid, inst.settle_ccy)
    if not pos.is_isolated:
        change = position_im(state, pos, inst, cents) - position_im(state, pos, inst)
        return 0 if change <= 0 or figures.available >= change else None
    need = position_im(state, pos, inst, cents) - isolated_equity(state, pos, inst)
    if need <= 0:
        return 0
    return need if need <= figures.available else None


def adjust_margin(state: ExchangeState, cmd: AdjustMargin) -> list[Event]:
    """Add margin to an isolated position from available cash, or take it back while the
    position keeps its IM (51008 otherwise)."""
    inst = state.catalogue.get(cmd.inst_id)
    if inst is None:
        return [_rejected(cmd, errors.reject(errors.NO_SUCH_INSTRUMENT, "Instrument ID does not exist"))]
    pos = state.existing_position(cmd.uid, inst.inst_id, MarginMode.ISOLATED)
    amount = parse_money(abs(cmd.amount))
    if pos is None or pos.size_lots == 0:
        return [_rejected(cmd, errors.reject(errors.BAD_PARAMETER, "No isolated position to adjust"))]
    if isinstance(amount, Rejection):
        return [_rejected(cmd, amount)]
    adding = cmd.amount > 0
    if adding and amount > cross_figures(state, cmd.uid, inst.settle_ccy).available:
        return [_rejected(cmd, errors.reject(errors.INSUFFICIENT_MARGIN, "Insufficient margin"))]
    if not adding and isolated_equity(state, pos, inst) - amount < position_im(state, pos, inst):
        return [_rejected(cmd, errors.reject(errors.INSUFFICIENT_MARGIN,
                                             "Reducing margin would leave less than the IM"))]
    signed = amount if adding else -amount
    state.ledger.transfer(cash_key(cmd.uid, inst.settle_ccy),
                          isolated_key(cmd.uid, inst.inst_id, inst.settle_ccy), signed)
    return [MarginAdjusted(cmd.ts, cmd.uid, inst.inst_id, signed)]


def _rejected(cmd, rejection: Rejection) -> Rejected:
    return Rejected(cmd.ts, cmd.uid, type(cmd).__name__, rejection.code, rejection.msg)

