"""Settling a fill into one party's position, cash, isolated margin and fees.

Money flows (all in the instrument's settlement currency, integer units):
- realized PnL moves between the instrument's ``clearing`` account and the party's cash;
- an isolated position's opening IM moves cash → ``isolated``; closing releases its share;
- fees move cash → ``fees``.
The cost-basis algebra (``realized = −v_close − removed``) keeps
``Σ cash − Σ cost`` unchanged by any fill, which is what conservation checks.
"""

from __future__ import annotations

from backstop.engine.queries import lever_cents
from backstop.math.margin import calculate_initial_margin, calculate_rate_amount
from backstop.math.values import calculate_fill_value, calculate_notional, calculate_removed_cost
from backstop.model.enums import MarginMode
from backstop.model.events import PositionChanged
from backstop.model.instrument import Instrument
from backstop.numeric import div_floor
from backstop.state.exchange_state import ExchangeState
from backstop.state.ledger import cash_key, clearing_key, fees_key, isolated_key
from backstop.state.positions import Position


def calculate_fee(inst: Instrument, lots: int, px_ticks: int, fee_ppm: int) -> int:
    """Trading fee = notional × rate, rounded up (against the account)."""
    return calculate_rate_amount(calculate_notional(inst, lots, px_ticks), fee_ppm)


def exact_fill_value(inst: Instrument, signed_lots: int, px_ticks: int) -> tuple[int, int]:
    """A fill's value without rounding (:func:`calculate_fill_value` floors the inverse one),
    as ``(numerator, denominator)``: the exact cost basis behind ``avgPx``, never settled."""
    if inst.is_linear:
        return signed_lots * px_ticks * inst.value_k, 1
    return -signed_lots * inst.value_k, px_ticks


def apply_fill(state: ExchangeState, inst: Instrument, uid: int, mgn_mode: MarginMode,
               signed_lots: int, signed_value: int, px_ticks: int, fee: int,
               lever: int, ts: int) -> PositionChanged:
    """Apply ``signed_lots`` (+ bought, − sold) worth ``signed_value`` to one party.

    ``signed_value`` is this party's share of the fill value (the buyer's ``+v`` or the
    seller's ``−v``), so the two parties' values sum to zero exactly.
    """
    inst_id = inst.inst_id
    pos = state.position(uid, inst_id, mgn_mode)
    ccy = inst.settle_ccy
    ledger = state.ledger
    cash = cash_key(uid, ccy)
    margin_key = isolated_key(uid, inst_id, ccy)
    closed = _closing_lots(pos.size_lots, signed_lots)
    realized = 0
    if closed:
        v_close = div_floor(signed_value * closed, abs(signed_lots))  # share of the value
        realized = _apply_close(state, inst, pos, closed, v_close)
        signed_value -= v_close
    opened = abs(signed_lots) - closed
    if opened:
        signed_opened = opened if signed_lots > 0 else -opened
        pos.apply_open(signed_opened, signed_value, ts, exact_fill_value(inst, signed_opened, px_ticks))
        if mgn_mode is MarginMode.ISOLATED:
            im = calculate_initial_margin(calculate_notional(inst, opened, px_ticks), lever)
            ledger.transfer(cash, margin_key, im)
    ledger.transfer(cash, fees_key(ccy), fee)
    pos.apply_fee(fee)
    event = PositionChanged(ts, uid, inst_id, mgn_mode._value_, pos.size_lots, pos.cost,
                            ledger.balances.get(margin_key, 0), realized)
    if pos.size_lots == 0:
        state.apply_drop_position_if_flat(pos)
    return event


def _closing_lots(size_lots: int, signed_lots: int) -> int:
    """Lots of this fill that reduce the existing position."""
    if size_lots == 0 or (size_lots > 0) == (signed_lots > 0):
        return 0
    return min(abs(size_lots), abs(signed_lots))


def _apply_close(state: ExchangeState, inst: Instrument, pos: Position, closed: int,
                 v_close: int) -> int:
    """Close ``closed`` lots worth ``v_close``; returns the realized PnL.

    Cross: the realized PnL moves between the instrument's clearing account and cash.
    Isolated: the closed lots' share of the margin (rounded down; all of it on a full close)
    goes back to cash with any profit, but a loss is taken from the position's own margin:
    cash receives ``max(0, share + loss)``, so an isolated loss never reaches the account's
    cash. A close beyond the bankruptcy price leaves the margin negative; the engine covers
    that deficit before the command returns (:mod:`backstop.engine.deficits`).
    """
    ccy = inst.settle_ccy
    removed = calculate_removed_cost(pos.cost, pos.size_lots, closed)
    realized = -v_close - removed
    cash = cash_key(pos.uid, ccy)
    if not pos.is_isolated:
        state.ledger.transfer(clearing_key(inst.inst_id, ccy), cash, realized)
    else:
        margin_key = isolated_key(pos.uid, inst.inst_id, ccy)
        margin = state.ledger.balance(margin_key)
        size = abs(pos.size_lots)
        share = max(0, margin if closed == size else div_floor(margin * closed, size))
        state.ledger.transfer(clearing_key(inst.inst_id, ccy), cash if realized >= 0 else margin_key,
                              realized)
        state.ledger.transfer(margin_key, cash, share if realized >= 0 else max(0, share + realized))
    pos.apply_close(closed, removed, realized)
    return realized


def apply_direct_trade(state: ExchangeState, inst: Instrument, taker: tuple[int, MarginMode],
                       taker_side: int, maker: tuple[int, MarginMode], lots: int, px_ticks: int,
                       ts: int) -> tuple[PositionChanged, PositionChanged]:
    """A fee-free trade outside the book (ADL, vault takeover): ``taker`` trades ``lots`` in
    direction ``taker_side`` with ``maker`` at ``px_ticks``; values are shared exactly."""
    buyer_value = calculate_fill_value(inst, lots, px_ticks)
    taker_value = buyer_value if taker_side > 0 else -buyer_value
    taker_lever = lever_cents(state, taker[0], inst, taker[1])
    maker_lever = lever_cents(state, maker[0], inst, maker[1])
    first = apply_fill(state, inst, taker[0], taker[1], taker_side * lots, taker_value, px_ticks, 0,
                       taker_lever, ts)
    second = apply_fill(state, inst, maker[0], maker[1], -taker_side * lots, -taker_value, px_ticks,
                        0, maker_lever, ts)
    return first, second
