"""What runs after the mark moves: liquidations and ADL, warnings, ADL end, ADL indicators."""

from __future__ import annotations

from decimal import Decimal

from backstop.engine.adl_indicators import refresh_adl_indicators
from backstop.engine.config import EngineConfig
from backstop.engine.funds import apply_adl_state, apply_fund_inflow
from backstop.engine.liquidation import liquidate_unit
from backstop.engine.queries import fund_balance
from backstop.engine.unit_finder import UnitFinder, is_below_warning, unit_of
from backstop.model.events import Event, LiquidationWarning
from backstop.numeric import round_to
from backstop.state.exchange_state import ExchangeState
from backstop.state.ledger import fees_key


def run_risk_checks(state: ExchangeState, config: EngineConfig, finder: UnitFinder, ts: int,
                    moved: set[str] | None = None) -> list[Event]:
    """Liquidate every unit at or below 100%, then refresh warnings, ADL state, and the ADL
    indicators of the instruments whose mark ``moved`` (all when ``None``).

    One screen (or exact scan) per pass: what comes after the liquidations asks ``finder``,
    which answers from that pass for the accounts the liquidations did not touch."""
    events = _sweep_fee_shares(state, config, ts)
    state.adl_queues.clear()
    for unit in finder.find(state, config.liquidation.warning_ratio):
        liquidation = liquidate_unit(state, config, unit, ts)
        finder.note(liquidation)
        events.extend(liquidation)
    state.adl_queues.clear()
    _release_recovered(state, finder)
    events.extend(_warnings(state, config, finder, ts))
    events.extend(_maybe_end_adl(state, config, finder, ts))
    refresh_adl_indicators(state, config, finder, moved)
    return events


def _release_recovered(state: ExchangeState, finder: UnitFinder) -> None:
    """End a progressive liquidation (and its freeze) once its position is closed or no
    longer at or below a 100% margin ratio."""
    for key in list(state.liquidation_cooldown):
        pos = state.positions.get(key)
        if pos is None or not pos.size_lots or not finder.is_liquidatable_now(state, unit_of(state, pos)):
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


def _warnings(state: ExchangeState, config: EngineConfig, finder: UnitFinder,
              ts: int) -> list[Event]:
    """OKX ``liquidation-warning``: once when a unit's margin ratio falls under the threshold;
    re-armed when it recovers (``state.warned`` holds exactly the units under it)."""
    threshold = config.liquidation.warning_ratio
    update = finder.warning_update(state, lambda equity, req: is_below_warning(equity, req, threshold))
    events: list[Event] = []
    for (uid, inst_id, mode), ccy, equity, requirement in update.below:
        ratio = Decimal(equity) / Decimal(requirement)
        events.append(LiquidationWarning(ts, uid, inst_id, mode, ccy,
                                         str(round_to(ratio, Decimal("0.0001")))))
    state.warned -= update.discard
    state.warned |= update.add
    return events


def _maybe_end_adl(state: ExchangeState, config: EngineConfig, finder: UnitFinder,
                   ts: int) -> list[Event]:
    """A fund leaves ADL mode once its trigger has cleared and nothing is left to liquidate."""
    events: list[Event] = []
    if not any(fund.adl_state for fund in state.funds.values()):
        return events
    pending = finder.any_liquidatable_now(state)
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
