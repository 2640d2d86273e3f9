"""Moving money in and out of insurance funds, with records, events and the rate trigger."""

from __future__ import annotations

from backstop.engine.config import EngineConfig, WaterfallStep
from backstop.engine.queries import fund_balance
from backstop.model.events import AdlStateChanged, Event, InsuranceFundChanged
from backstop.state.exchange_state import ExchangeState
from backstop.state.insurance import InsuranceFund
from backstop.state.ledger import LedgerKey, fund_key


def fund_for(state: ExchangeState, inst_id: str) -> InsuranceFund:
    return state.funds[state.fund_of[inst_id]]


def apply_fund_inflow(state: ExchangeState, config: EngineConfig, fund: InsuranceFund,
                      source: LedgerKey, amount: int, kind: str, ts: int) -> list[Event]:
    """Move ``amount`` ≥ 0 from ``source`` into the fund and record it as ``kind``."""
    if amount <= 0:
        return []
    state.ledger.transfer(source, fund_key(fund.fund_id, fund.ccy), amount)
    return [_record(state, fund, ts, kind, amount)]


def apply_fund_payout(state: ExchangeState, config: EngineConfig, fund: InsuranceFund,
                      target: LedgerKey, amount: int, ts: int) -> tuple[int, list[Event]]:
    """Pay up to ``amount`` to ``target`` (``bankruptcy_loss``), never below zero.

    Returns what was paid and the events (the record, and ``rate_adl_start`` when the payout
    takes the fund down too fast from its trailing peak).
    """
    paid = min(amount, fund_balance(state, fund))
    if paid <= 0:
        return 0, []
    state.ledger.transfer(fund_key(fund.fund_id, fund.ccy), target, paid)
    events: list[Event] = [_record(state, fund, ts, "bankruptcy_loss", -paid)]
    events.extend(maybe_start_rate_adl(state, config, fund, ts))
    return paid, events


def apply_platform_injection(state: ExchangeState, fund: InsuranceFund, amount: int,
                             ts: int) -> list[Event]:
    """Money from outside into a fund (``platform_revenue``); counts as a deposit."""
    state.ledger.apply_deposit(fund_key(fund.fund_id, fund.ccy), amount)
    return [_record(state, fund, ts, "platform_revenue", amount)]


def apply_regular_update(state: ExchangeState, fund: InsuranceFund, ts: int) -> InsuranceFundChanged:
    """A ``regular_update`` snapshot row (amount 0), published at each funding settlement."""
    return _record(state, fund, ts, "regular_update", 0)


def maybe_start_rate_adl(state: ExchangeState, config: EngineConfig, fund: InsuranceFund,
                         ts: int) -> list[Event]:
    if fund.adl_state or WaterfallStep.ADL not in config.waterfall.order:
        return []
    if not fund.is_declining_too_fast(ts, fund_balance(state, fund), config.adl.decline_share):
        return []
    return apply_adl_state(state, fund, "rate_adl_start", ts)


def apply_adl_state(state: ExchangeState, fund: InsuranceFund, adl_type: str,
                    ts: int) -> list[Event]:
    """Enter (``*_adl_start``) or leave (``adl_end``) ADL mode, with a fund record."""
    fund.adl_state = "" if adl_type == "adl_end" else adl_type
    balance = fund_balance(state, fund)
    record = _record(state, fund, ts, "adl", 0, adl_type)
    return [record, AdlStateChanged(ts, fund.fund_id, adl_type, balance)]


def _record(state: ExchangeState, fund: InsuranceFund, ts: int, kind: str, amt: int,
            adl_type: str = "") -> InsuranceFundChanged:
    balance = fund_balance(state, fund)
    record = fund.apply_record(ts, kind, amt, balance, adl_type)
    return InsuranceFundChanged(ts, fund.fund_id, fund.ccy, kind, amt, balance, record.max_bal,
                                record.max_bal_ts, adl_type)
