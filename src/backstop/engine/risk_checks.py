"""What runs after the mark moves: liquidations and ADL, warnings, ADL end, ADL indicators."""

from __future__ import annotations

from decimal import Decimal

from backstop.engine.adl import FiguresCache, cached_cross_figures, refresh_adl_indicators
from backstop.engine.config import EngineConfig
from backstop.engine.funds import apply_adl_state, apply_fund_inflow
from backstop.engine.liquidation import liquidate_unit
from backstop.engine.queries import (
    fund_balance,
    instrument_of,
    is_unit_of_position_liquidatable,
    unit_equity_and_requirement,
)
from backstop.engine.screening import UnitFinder
from backstop.model.events import Event, LiquidationWarning
from backstop.numeric import round_to
from backstop.state.exchange_state import ExchangeState
from backstop.state.ledger import fees_key


def run_risk_checks(state: ExchangeState, config: EngineConfig, finder: UnitFinder, ts: int,
                    moved: set[str] | None = None) -> list[Event]:
    """Liquidate every unit at or below 100%, then refresh warnings, ADL state, and the ADL
    indicators of the instruments whose mark ``moved`` (all when ``None``)."""
    events = _sweep_fee_shares(state, config, ts)
    state.adl_queues.clear()
    for unit in finder.find(state):
        liquidation = liquidate_unit(state, config, unit, ts)
        finder.note(liquidation)
        events.extend(liquidation)
    state.adl_queues.clear()
    _release_recovered(state)
    figures: FiguresCache = {}  # the state is fixed from here to the end of the pass
    events.extend(_warnings(state, config, figures, ts))
    events.extend(_maybe_end_adl(state, config, finder, ts))
    held = {p.inst_id for p in state.positions.values()}
    for inst in state.catalogue:
        if inst.inst_id in held and (moved is None or inst.inst_id in moved):
            refresh_adl_indicators(state, config, inst, figures)
    return events


def _release_recovered(state: ExchangeState) -> None:
    """End a progressive liquidation (and its freeze) once its position is closed or no
    longer at or below a 100% margin ratio."""
    for key in list(state.liquidation_cooldown):
        pos = state.positions.get(key)
        if pos is None or not pos.size_lots or not is_unit_of_position_liquidatable(state, pos):
            del state.liquidation_cooldown[key]


def _sweep_fee_shares(state: ExchangeState, config: EngineConfig, ts: int) -> list[Event]:
    """Move the accrued trading-fee shares from fee revenue into their funds, one
    ``platform_revenue`` record per fund."""
    events: list[Event] = []
    for fund_id, amount in sorted(state.fee_share_accrued.items()):
        fund = state.funds[fund_id]
        events.extend(apply_fund_inflow(state, config, fund, fees_key(fund.ccy), amount,
                                        "platform_revenue", ts))
    state.fee_share_accrued.clear()
    return events


def _warnings(state: ExchangeState, config: EngineConfig, figures: FiguresCache,
              ts: int) -> list[Event]:
    """OKX ``liquidation-warning``: once when a unit's margin ratio falls under the threshold;
    re-armed when it recovers."""
    threshold = config.liquidation.warning_ratio
    events: list[Event] = []
    below: set[tuple[int, str, str]] = set()
    for key, equity, requirement, ccy in _unit_ratios(state, figures):
        if requirement and Decimal(equity) < threshold * requirement:
            below.add(key)
            if key not in state.warned:
                ratio = Decimal(equity) / Decimal(requirement)
                events.append(LiquidationWarning(ts, key[0], key[1], key[2], ccy,
                                                 str(round_to(ratio, Decimal("0.0001")))))
    state.warned = below
    return events


def _unit_ratios(state: ExchangeState, cache: FiguresCache):
    """``((uid, inst_id or "", mode), equity, MM + fee, ccy)`` for every unit with exposure."""
    cross: set[tuple[int, str]] = set()
    for pos in sorted(state.positions.values(), key=lambda p: p.key):
        if not pos.size_lots:
            continue
        inst = instrument_of(state, pos)
        if pos.is_isolated:
            equity, requirement = unit_equity_and_requirement(state, pos)
            yield (pos.uid, pos.inst_id, "isolated"), equity, requirement, inst.settle_ccy
        else:
            cross.add((pos.uid, inst.settle_ccy))
    for uid, ccy in sorted(cross):
        figures = cached_cross_figures(state, cache, uid, ccy)
        yield (uid, "", "cross"), figures.equity, figures.mm_plus_fee, ccy


def _maybe_end_adl(state: ExchangeState, config: EngineConfig, finder: UnitFinder,
                   ts: int) -> list[Event]:
    """A fund leaves ADL mode once its trigger has cleared and nothing is left to liquidate."""
    events: list[Event] = []
    if not any(fund.adl_state for fund in state.funds.values()):
        return events
    pending = bool(finder.find(state))
    for fund in state.funds.values():
        if not fund.adl_state or pending:
            continue
        balance = fund_balance(state, fund)
        if fund.adl_state == "bal_adl_start":
            cleared = balance > 0
        elif fund.adl_state == "rate_adl_start":
            cleared = not fund.is_declining_too_fast(ts, balance, config.adl.decline_share)
        else:  # pos_adl_start: the pending liquidation volume is gone
            cleared = True
        if cleared:
            events.extend(apply_adl_state(state, fund, "adl_end", ts))
    return events
