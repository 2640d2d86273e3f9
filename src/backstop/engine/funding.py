"""Funding settlement: positions pay or receive ``notional at mark × rate``.

A positive rate means longs pay shorts. Payers pay rounded up and receivers get rounded down,
all through the instrument's clearing account; the rounding dust goes to the insurance fund,
so every unit is accounted for. Isolated positions pay from and receive into their margin.
"""

from __future__ import annotations

from backstop.engine.config import EngineConfig
from backstop.engine.funds import apply_fund_inflow, apply_regular_update, fund_for
from backstop.math.adl import allocate_pro_rata
from backstop.math.funding import RATE_SCALE, calculate_funding_payment, calculate_funding_rate_e8
from backstop.math.values import calculate_notional
from backstop.model import errors
from backstop.model.commands import SettleFunding
from backstop.model.events import Event, FundingPaid, FundingRateSet, Rejected
from backstop.model.instrument import Instrument
from backstop.state.exchange_state import ExchangeState
from backstop.state.ledger import cash_key, clearing_key, isolated_key


def settle_funding(state: ExchangeState, config: EngineConfig, cmd: SettleFunding) -> list[Event]:
    """Settle one instrument, or all when ``inst_id`` is empty."""
    if cmd.inst_id:
        inst = state.catalogue.get(cmd.inst_id)
        if inst is None:
            return [Rejected(cmd.ts, 0, "SettleFunding", errors.NO_SUCH_INSTRUMENT,
                             "Instrument ID does not exist")]
        targets = [inst]
    else:
        targets = list(state.catalogue)
    events: list[Event] = []
    for inst in targets:
        events.extend(_settle_instrument(state, config, inst, cmd.ts))
    for fund_id in sorted({state.fund_of[i.inst_id] for i in targets}):
        events.append(apply_regular_update(state, state.funds[fund_id], cmd.ts))
    return events


def current_rate_e8(state: ExchangeState, config: EngineConfig, inst: Instrument) -> int:
    """The rate the next settlement would use, from the premium samples since the last one."""
    interest = int(config.mark.funding_interest * RATE_SCALE)
    cap = int(inst.funding_cap * RATE_SCALE)
    return calculate_funding_rate_e8(state.premiums_e8[inst.inst_id], interest, cap)


def _settle_instrument(state: ExchangeState, config: EngineConfig, inst: Instrument,
                       ts: int) -> list[Event]:
    rate = current_rate_e8(state, config, inst)
    state.premiums_e8[inst.inst_id] = []
    state.funding_rate_e8[inst.inst_id] = rate
    events: list[Event] = [FundingRateSet(ts, inst.inst_id, rate)]
    if rate == 0:
        return events
    ccy, mark = inst.settle_ccy, state.mark_ticks[inst.inst_id]
    positions = sorted((p for p in state.positions.values()
                        if p.inst_id == inst.inst_id and p.size_lots), key=lambda p: p.key)
    payers = [p for p in positions if (p.size_lots > 0) == (rate > 0)]
    receivers = [p for p in positions if (p.size_lots > 0) != (rate > 0)]
    paid = [calculate_funding_payment(calculate_notional(inst, p.size_lots, mark), rate, True)
            for p in payers]
    owed = [calculate_funding_payment(calculate_notional(inst, p.size_lots, mark), rate, False)
            for p in receivers]
    pool = sum(paid)
    if sum(owed) > pool:  # rounding of inverse notionals: never pay out more than came in
        owed = allocate_pro_rata(pool, owed)
    for pos, amount in [*zip(payers, (-x for x in paid), strict=True), *zip(receivers, owed, strict=True)]:
        wallet = isolated_key(pos.uid, inst.inst_id, ccy) if pos.is_isolated else cash_key(pos.uid, ccy)
        state.ledger.transfer(clearing_key(inst.inst_id, ccy), wallet, amount)
        pos.apply_funding(amount)
        events.append(FundingPaid(ts, pos.uid, inst.inst_id, pos.mgn_mode.value, amount, rate))
    events.extend(apply_fund_inflow(state, config, fund_for(state, inst.inst_id),
                                    clearing_key(inst.inst_id, ccy), pool - sum(owed),
                                    "platform_revenue", ts))
    return events
