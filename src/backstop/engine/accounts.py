"""Deposits, withdrawals, leverage and isolated margin adjustments."""

from __future__ import annotations

from backstop.engine.orders import apply_reserve_change, calculate_reserve_per_lot
from backstop.engine.queries import (
    cross_figures,
    isolated_equity,
    max_margin_reduction,
    max_withdrawal,
    position_im,
)
from backstop.engine.validation import parse_lever, parse_money, parse_signed_money
from backstop.math.margin import find_tier
from backstop.model import errors
from backstop.model.commands import AdjustMargin, Deposit, SetLeverage, Withdraw
from backstop.model.enums import MarginMode
from backstop.model.errors import Rejection
from backstop.model.events import Deposited, Event, LeverageSet, MarginAdjusted, Rejected, Withdrawn
from backstop.model.instrument import Instrument
from backstop.state.exchange_state import ExchangeState, OrderInfo
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
    if amount > max_withdrawal(state, cmd.uid, cmd.ccy):
        return [_rejected(cmd, errors.reject(errors.INSUFFICIENT_BALANCE, "Insufficient balance"))]
    state.ledger.apply_withdrawal(cash_key(cmd.uid, cmd.ccy), amount)
    return [Withdrawn(cmd.ts, cmd.uid, cmd.ccy, amount)]


def set_leverage(state: ExchangeState, cmd: SetLeverage) -> list[Event]:
    """Leverage for one instrument and margin mode, within the tier of the position and open
    orders (51004). The account must afford the change (51008): a cross position's IM at the
    new leverage, an isolated position's top-up from cash to its new IM, and the money its open
    orders on the instrument and mode reserve, which is re-reserved at the new leverage."""
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
    orders = _orders_on(state, cmd.uid, inst.inst_id, cmd.mgn_mode)
    reserves = [(info, calculate_reserve_per_lot(inst, info.px_ticks, cents)) for info in orders]
    extra_reserve = sum(per_lot * _resting_lots(state, info) - info.reserved for info, per_lot in reserves)
    shortfall = _leverage_shortfall(state, cmd, inst, cents, extra_reserve)
    if shortfall is None:
        return [_rejected(cmd, errors.reject(errors.INSUFFICIENT_MARGIN, "Insufficient margin"))]
    state.leverage[(cmd.uid, inst.inst_id, cmd.mgn_mode)] = cents
    for info, per_lot in reserves:
        apply_reserve_change(state, info, per_lot, _resting_lots(state, info))
    if shortfall:
        state.ledger.transfer(cash_key(cmd.uid, inst.settle_ccy),
                              isolated_key(cmd.uid, inst.inst_id, inst.settle_ccy), shortfall)
    return [LeverageSet(cmd.ts, cmd.uid, inst.inst_id, cmd.mgn_mode.value, cents)]


def _orders_on(state: ExchangeState, uid: int, inst_id: str, mode: MarginMode) -> list[OrderInfo]:
    return sorted((o for o in state.open_orders.get(uid, {}).values()
                   if o.inst_id == inst_id and o.td_mode is mode), key=lambda o: o.ord_id)


def _resting_lots(state: ExchangeState, info: OrderInfo) -> int:
    return state.books[info.inst_id].orders[info.ord_id].remaining


def _exposure_lots(state: ExchangeState, uid: int, inst_id: str, cmd: SetLeverage) -> int:
    pos = state.existing_position(uid, inst_id, cmd.mgn_mode)
    resting = sum(o.sz_lots for o in state.open_orders.get(uid, {}).values()
                  if o.inst_id == inst_id and o.td_mode is cmd.mgn_mode)
    return (abs(pos.size_lots) if pos else 0) + resting


def _leverage_shortfall(state: ExchangeState, cmd: SetLeverage, inst: Instrument,
                        cents: int, extra_reserve: int) -> int | None:
    """Margin to move into an isolated position for the new leverage (0 if none), or
    ``None`` when the account cannot afford it together with ``extra_reserve`` for orders."""
    figures = cross_figures(state, cmd.uid, inst.settle_ccy)
    pos = state.existing_position(cmd.uid, inst.inst_id, cmd.mgn_mode)
    need = 0
    if pos is not None and pos.size_lots and not pos.is_isolated:
        need = max(0, position_im(state, pos, inst, cents) - position_im(state, pos, inst))
    move = 0
    if pos is not None and pos.size_lots and pos.is_isolated:
        move = max(0, position_im(state, pos, inst, cents) - isolated_equity(state, pos, inst))
    total = need + move + extra_reserve
    if total > 0 and (total > figures.available or move + extra_reserve > figures.spendable):
        return None
    return move


def adjust_margin(state: ExchangeState, cmd: AdjustMargin) -> list[Event]:
    """Add margin to an isolated position from spendable cash (51008 beyond it), or take
    it back up to :func:`~backstop.engine.queries.max_margin_reduction`: the margin stays at
    or above its IM at the mark and at or above 0, and never includes unrealized profit
    (51008 otherwise)."""
    inst = state.catalogue.get(cmd.inst_id)
    if inst is None:
        return [_rejected(cmd, errors.reject(errors.NO_SUCH_INSTRUMENT, "Instrument ID does not exist"))]
    signed = parse_signed_money(cmd.amount)
    if isinstance(signed, Rejection):
        return [_rejected(cmd, signed)]
    pos = state.existing_position(cmd.uid, inst.inst_id, MarginMode.ISOLATED)
    if pos is None or pos.size_lots == 0:
        return [_rejected(cmd, errors.reject(errors.BAD_PARAMETER, "No isolated position to adjust"))]
    if signed > 0 and signed > cross_figures(state, cmd.uid, inst.settle_ccy).spendable:
        return [_rejected(cmd, errors.reject(errors.INSUFFICIENT_MARGIN, "Insufficient margin"))]
    if signed < 0 and -signed > max_margin_reduction(state, pos, inst):
        return [_rejected(cmd, errors.reject(errors.INSUFFICIENT_MARGIN,
                                             "Reducing margin would leave less than the IM"))]
    state.ledger.transfer(cash_key(cmd.uid, inst.settle_ccy),
                          isolated_key(cmd.uid, inst.inst_id, inst.settle_ccy), signed)
    return [MarginAdjusted(cmd.ts, cmd.uid, inst.inst_id, signed)]


def _rejected(cmd, rejection: Rejection) -> Rejected:
    return Rejected(cmd.ts, cmd.uid, type(cmd).__name__, rejection.code, rejection.msg)

