"""Liquidation, in stages: cancel orders → check again → size the cut → route the order →
settle with the fund → escalate (vault, ADL, socialized loss).

A *unit* is an isolated position, or a cross account in one settlement currency. Everything
happens inside the command that moved the mark, so the book, the fund and the ADL queue are
consistent when it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

from backstop.engine.adl import deleverage
from backstop.engine.config import AdlPrice, EngineConfig, LiquidationStyle, WaterfallStep
from backstop.engine.funds import apply_adl_state, apply_fund_inflow, apply_fund_payout, fund_for
from backstop.engine.orders import apply_cancel_resting, apply_forced_close, plan_forced_close
from backstop.engine.queries import (
    cross_figures,
    cross_positions,
    fund_balance,
    instrument_of,
    is_cross_liquidatable,
    is_position_liquidatable,
    isolated_margin,
    position_mm_plus_fee,
    unit_equity_and_requirement,
)
from backstop.engine.socialize import apply_socialized_loss
from backstop.engine.vault import apply_vault_takeover
from backstop.math.margin import (
    calculate_bankruptcy_ticks,
    calculate_liquidation_fee,
    calculate_rate_amount,
    find_tier,
)
from backstop.math.values import (
    calculate_fill_shortfall,
    calculate_fill_value,
    calculate_notional,
    calculate_upl,
)
from backstop.model.enums import MarginMode
from backstop.model.events import Event, LiquidationSettled, LiquidationStarted
from backstop.model.instrument import Instrument
from backstop.numeric import PPM, div_ceil
from backstop.state.book import MatchPlan
from backstop.state.exchange_state import ExchangeState
from backstop.state.insurance import InsuranceFund
from backstop.state.ledger import cash_key, isolated_key
from backstop.state.positions import Position

Unit = tuple[int, str, str]
"""``(uid, "isolated", inst_id)`` or ``(uid, "cross", ccy)``."""


@dataclass(slots=True)
class Slice:
    """The part of a position being liquidated now."""

    pos: Position
    inst: Instrument
    lots: int
    bankruptcy_ticks: int
    category: str
    margin_basis: int
    is_whole_unit: bool
    side: int


def find_liquidatable_units(state: ExchangeState) -> list[Unit]:
    """Every unit at or below a 100% margin ratio, checked exactly, in account order."""
    units: set[Unit] = set()
    cross: set[tuple[int, str]] = set()
    for pos in state.positions.values():
        if pos.size_lots == 0:
            continue
        inst = instrument_of(state, pos)
        if pos.is_isolated:
            if is_position_liquidatable(state, pos, inst):
                units.add((pos.uid, "isolated", pos.inst_id))
        else:
            cross.add((pos.uid, inst.settle_ccy))
    units.update((uid, "cross", ccy) for uid, ccy in cross if is_cross_liquidatable(state, uid, ccy))
    return sorted(units)


def liquidate_unit(state: ExchangeState, config: EngineConfig, unit: Unit, ts: int) -> list[Event]:
    """Run the stages for one unit; returns its events (empty if it recovered)."""
    uid, kind, where = unit
    events = _cancel_orders(state, uid, kind, where, ts)
    if kind == "isolated":
        pos = state.existing_position(uid, where, MarginMode.ISOLATED)
        if pos is not None and is_position_liquidatable(state, pos, instrument_of(state, pos)):
            events.extend(_liquidate_position(state, config, pos, ts, whole_unit=True))
        return events
    for _ in range(len(state.account_positions.get(uid, {}))):
        if not is_cross_liquidatable(state, uid, where):
            break
        pos = _largest_cross_position(state, uid, where)
        if pos is None:
            break
        last = len(cross_positions(state, uid, where)) == 1
        events.extend(_liquidate_position(state, config, pos, ts, whole_unit=last))
    return events


def _cancel_orders(state: ExchangeState, uid: int, kind: str, where: str, ts: int) -> list[Event]:
    """Stage 1: cancel every order that draws on the unit's money: for an isolated unit, that
    instrument's isolated orders; for a cross unit, all of the account's orders in the
    currency (their reserved money is the cross wallet's)."""
    events: list[Event] = []
    for info in list(state.open_orders.get(uid, {}).values()):
        mine = (info.inst_id == where and info.td_mode is MarginMode.ISOLATED) if kind == "isolated" \
            else info.ccy == where
        if mine:
            events.append(apply_cancel_resting(state, info, ts, "liquidation"))
    return events


def _largest_cross_position(state: ExchangeState, uid: int, ccy: str) -> Position | None:
    positions = cross_positions(state, uid, ccy)
    if not positions:
        return None
    return max(positions, key=lambda p: (position_mm_plus_fee(state, p, instrument_of(state, p)), p.inst_id))


def _liquidate_position(state: ExchangeState, config: EngineConfig, pos: Position, ts: int,
                        whole_unit: bool) -> list[Event]:
    inst = instrument_of(state, pos)
    cut = _size_the_cut(state, config, pos, inst, ts, whole_unit)
    if cut is None:
        return []
    return _execute_slice(state, config, cut, ts)


def _margin_basis(state: ExchangeState, pos: Position, inst: Instrument) -> int:
    """What stands behind the position: its isolated margin, or the account's cross equity
    without this position's upl."""
    if pos.is_isolated:
        return isolated_margin(state, pos, inst)
    upl = calculate_upl(inst, pos.size_lots, pos.cost, state.mark_ticks[inst.inst_id])
    return cross_figures(state, pos.uid, inst.settle_ccy).equity - upl


def _size_the_cut(state: ExchangeState, config: EngineConfig, pos: Position, inst: Instrument,
                  ts: int, whole_unit: bool) -> Slice | None:
    """Stage 3: how many lots to liquidate now, by the liquidation style."""
    size = abs(pos.size_lots)
    style = config.liquidation.style
    lots, category = size, "full_liquidation"
    if style == LiquidationStyle.OKX_TIERS:
        lots, category = _okx_tier_cut(state, pos, inst)
    elif style == LiquidationStyle.PROGRESSIVE:
        if state.liquidation_cooldown.get(pos.key, -1) > ts:
            return None
        share = config.liquidation.progressive_share
        lots = max(inst.min_lots, int(div_ceil(size * int(share * PPM), PPM)))
        if lots < size and unit_equity_and_requirement(state, pos)[0] > 0:
            category = "partial_liquidation"
            state.liquidation_cooldown[pos.key] = ts + config.liquidation.progressive_cooldown_ms
        else:
            lots = size
    basis = _margin_basis(state, pos, inst)
    ticks = calculate_bankruptcy_ticks(inst, pos.size_lots, pos.cost, basis)
    if ticks is None:
        ticks = state.mark_ticks[inst.inst_id]
    whole = whole_unit and lots == size
    return Slice(pos, inst, min(lots, size), ticks, category, basis, whole,
                 1 if pos.size_lots > 0 else -1)


def _okx_tier_cut(state: ExchangeState, pos: Position, inst: Instrument) -> tuple[int, str]:
    """OKX (unconfirmed, a policy): from tier 3 up, while equity still covers tier 1's
    requirement, cut enough to drop two tiers; otherwise take the whole position."""
    size = abs(pos.size_lots)
    tier = find_tier(inst.tiers, size) or inst.tiers[-1]
    if tier.tier < 3:
        return size, "full_liquidation"
    mark = state.mark_ticks[inst.inst_id]
    tier1_need = (calculate_rate_amount(calculate_notional(inst, size, mark), inst.tiers[0].mmr_ppm)
                  + calculate_liquidation_fee(inst, size, mark))
    if unit_equity_and_requirement(state, pos)[0] <= tier1_need:
        return size, "full_liquidation"
    target = inst.tiers[tier.tier - 3].max_lots  # the top of the tier two below
    return size - target, "partial_liquidation"


def _execute_slice(state: ExchangeState, config: EngineConfig, cut: Slice, ts: int) -> list[Event]:
    """Stages 4–6: the book if the fund can stand behind it, then the waterfall."""
    pos, inst = cut.pos, cut.inst
    fund = fund_for(state, inst.inst_id)
    cash_before = _slice_wallet(state, pos, inst)
    fee = _liquidation_fee(config, inst, cut.lots, state.mark_ticks[inst.inst_id])
    remaining = cut.lots
    uses_fund = WaterfallStep.INSURANCE_FUND in config.waterfall.order and not fund.adl_state
    plan = _plan_liquidation_order(state, config, cut) if uses_fund else None
    shortfall = 0 if plan is None else calculate_fill_shortfall(
        inst, [(qty, px) for _maker, qty, px in plan.fills], cut.side, cut.bankruptcy_ticks)
    in_book = plan is not None and plan.filled_lots > 0 and shortfall <= fund_balance(state, fund)
    events: list[Event] = [_started(state, cut, ts, "book" if in_book else "waterfall")]
    if in_book:
        events.extend(apply_forced_close(state, inst, pos, plan, cut.category, ts))  # type: ignore[arg-type]
        remaining -= plan.filled_lots  # type: ignore[union-attr]
    if remaining:
        remaining, more = _waterfall(state, config, cut, remaining, ts)
        events.extend(more)
    events.extend(_settle(state, config, cut, fund, cash_before, fee, cut.lots - remaining, ts))
    return events


def _liquidation_fee(config: EngineConfig, inst: Instrument, lots: int, mark: int) -> int:
    """The fee charged on a liquidated slice: notional at mark × ``liquidation.fee_rate``
    (the instrument's liquidation fee rate by default), rounded up."""
    fee_ppm = config.liquidation.fee_ppm
    if fee_ppm is None:
        return calculate_liquidation_fee(inst, lots, mark)
    return calculate_rate_amount(calculate_notional(inst, lots, mark), fee_ppm)


def _plan_liquidation_order(state: ExchangeState, config: EngineConfig, cut: Slice) -> MatchPlan:
    """An IOC in the book, limited to ``price_band`` beyond the mark."""
    inst, mark = cut.inst, state.mark_ticks[cut.inst.inst_id]
    offset = int(mark * config.liquidation.price_band)  # rounded toward the mark: never wider than set
    limit = max(1, mark - offset) if cut.pos.size_lots > 0 else mark + offset
    return plan_forced_close(state, inst, cut.pos, cut.lots, limit)


def _waterfall(state: ExchangeState, config: EngineConfig, cut: Slice, lots: int,
               ts: int) -> tuple[int, list[Event]]:
    """Lots the book did not take go down the configured steps; returns lots left over.

    ADL first records its trigger on the fund when none is recorded. Last resort, when the
    steps leave lots (no vault room, no profitable counterparty): the book at any price; a
    loss beyond the fund is then socialized, since a fund never goes below zero."""
    events: list[Event] = []
    for step in (*config.waterfall.order, WaterfallStep.SOCIALIZE):
        if not lots or step == WaterfallStep.INSURANCE_FUND:
            continue
        if step == WaterfallStep.VAULT:
            done, more = apply_vault_takeover(state, config, cut, lots, ts)
        elif step == WaterfallStep.ADL:
            events.extend(_record_adl_trigger(state, cut, lots, ts))
            done, more = deleverage(state, config, cut.inst, cut.pos, lots,
                                    adl_base_ticks(state, config, cut, lots), ts)
        else:  # socialize: close in the book at any price; the loss is spread afterwards
            done, more = _close_at_any_price(state, cut, lots, ts)
        lots -= done
        events.extend(more)
    return lots, events


def _gap_at_mark(state: ExchangeState, cut: Slice, lots: int, bankruptcy_ticks: int) -> int:
    """What the fund pays if ``lots`` close at the mark rather than at the bankruptcy price
    (≥ 0; 0 when the mark is the better price for the fund)."""
    mark = state.mark_ticks[cut.inst.inst_id]
    diff = calculate_fill_value(cut.inst, lots, bankruptcy_ticks) - calculate_fill_value(cut.inst, lots, mark)
    return max(0, diff if cut.side > 0 else -diff)


def _record_adl_trigger(state: ExchangeState, cut: Slice, lots: int, ts: int) -> list[Event]:
    """Enter ADL mode on the fund unless it already is: ``bal_adl_start`` when the fund
    cannot pay the gap of closing the lots at the mark, else ``pos_adl_start`` (the book
    cannot absorb the liquidation volume)."""
    fund = fund_for(state, cut.inst.inst_id)
    if fund.adl_state:
        return []
    gap = _gap_at_mark(state, cut, lots, own_bankruptcy_ticks(state, cut))
    trigger = "bal_adl_start" if fund_balance(state, fund) < gap else "pos_adl_start"
    return apply_adl_state(state, fund, trigger, ts)


def own_bankruptcy_ticks(state: ExchangeState, cut: Slice) -> int:
    """The liquidated position's own bankruptcy price on its instrument: on its isolated
    margin, or for a cross position on the account's cushion without this position's upl,
    floored at 0, so another instrument's losses never move it past the entry price. The
    mark when no finite price exists."""
    pos, inst = cut.pos, cut.inst
    basis = _margin_basis(state, pos, inst)  # now: earlier steps may have closed part of it
    ticks = calculate_bankruptcy_ticks(inst, pos.size_lots, pos.cost,
                                       basis if pos.is_isolated else max(0, basis))
    return state.mark_ticks[inst.inst_id] if ticks is None else ticks


def adl_base_ticks(state: ExchangeState, config: EngineConfig, cut: Slice, lots: int) -> int:
    """The ADL base price, between the mark and :func:`own_bankruptcy_ticks`, never better
    for the winners than the mark (so the liquidated unit's remaining equity stays with the
    fund): ``mark``; ``bankruptcy``; or ``auto`` (OKX): the mark while the fund is healthy
    (ADL started only because the book could not absorb the volume, ``pos_adl_start``) and
    can pay the gap to the bankruptcy price; else (the fund is exhausted or draining too fast)
    the bankruptcy price."""
    mark = state.mark_ticks[cut.inst.inst_id]
    own = own_bankruptcy_ticks(state, cut)
    bankruptcy = max(mark, own) if cut.side > 0 else min(mark, own)
    if config.adl.price == AdlPrice.MARK:
        return mark
    if config.adl.price == AdlPrice.BANKRUPTCY:
        return bankruptcy
    fund = fund_for(state, cut.inst.inst_id)
    can_pay = fund.adl_state == "pos_adl_start" and \
        fund_balance(state, fund) >= _gap_at_mark(state, cut, lots, bankruptcy)
    return mark if can_pay else bankruptcy


def _close_at_any_price(state: ExchangeState, cut: Slice, lots: int, ts: int) -> tuple[int, list[Event]]:
    plan = plan_forced_close(state, cut.inst, cut.pos, lots)
    if not plan.filled_lots:
        return 0, []
    return plan.filled_lots, apply_forced_close(state, cut.inst, cut.pos, plan, cut.category, ts)


def _slice_wallet(state: ExchangeState, pos: Position, inst: Instrument) -> int:
    """The cash the liquidated account holds in the settlement currency."""
    return state.ledger.balance(cash_key(pos.uid, inst.settle_ccy))


def _settle(state: ExchangeState, config: EngineConfig, cut: Slice, fund: InsuranceFund,
            cash_before: int, fee: int, closed: int, ts: int) -> list[Event]:
    """Stage 5: the slice's money. A deficit is paid where it lies: an isolated position's
    negative margin, or a whole cross unit's negative cash. Otherwise a whole unit hands
    everything the slice left to the fund (surplus and fee), and a partial cut pays only the
    fee."""
    pos, inst = cut.pos, cut.inst
    if not closed:
        return []
    wallet = cash_key(pos.uid, inst.settle_ccy)
    whole = cut.is_whole_unit and state.existing_position(pos.uid, inst.inst_id, pos.mgn_mode) is None
    balance = state.ledger.balance(wallet)
    delta = balance - cash_before if pos.is_isolated else balance
    hole = isolated_key(pos.uid, inst.inst_id, inst.settle_ccy) if pos.is_isolated else wallet
    deficit = -state.ledger.balance(hole) if pos.is_isolated or whole else 0
    events: list[Event] = []
    to_fund = from_fund = socialized = 0
    if deficit > 0:  # the slice is bankrupt: cover its deficit
        from_fund, paid_events = apply_fund_payout(state, config, fund, hole, deficit, ts)
        events.extend(paid_events)
        socialized = deficit - from_fund
        if socialized:
            events.extend(apply_socialized_loss(state, inst, cut.side, hole, socialized, ts))
    elif whole:  # everything left of the unit: surplus and fee
        to_fund = delta
    else:  # a partial cut pays only the fee, from what the slice left
        to_fund = max(0, min(fee, delta))
    events.extend(apply_fund_inflow(state, config, fund, wallet, to_fund,
                                    "liquidation_balance_deposit", ts))
    fee_taken = min(fee, to_fund)
    pos.apply_liquidation_penalty(fee_taken)
    events.append(LiquidationSettled(ts, pos.uid, inst.inst_id, pos.mgn_mode.value, closed,
                                     fee_taken, to_fund, from_fund, socialized))
    return events


def _started(state: ExchangeState, cut: Slice, ts: int, route: str) -> LiquidationStarted:
    return LiquidationStarted(ts, cut.pos.uid, cut.inst.inst_id, cut.pos.mgn_mode.value, cut.lots,
                              cut.bankruptcy_ticks, state.mark_ticks[cut.inst.inst_id],
                              cut.category, route)
