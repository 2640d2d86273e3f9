"""Commands around the liquidation engine: fund injections, the genesis state a config asks
for (initial funds, the vault's capital)."""

from __future__ import annotations

from decimal import Decimal

from backstop.engine.config import EngineConfig, WaterfallStep
from backstop.engine.funds import apply_platform_injection
from backstop.engine.validation import parse_money
from backstop.engine.vault import VAULT_UID
from backstop.model import errors
from backstop.model.commands import InjectInsuranceFund
from backstop.model.errors import Rejection
from backstop.model.events import Event, Rejected
from backstop.numeric import money_from_decimal
from backstop.state.exchange_state import ExchangeState
from backstop.state.ledger import cash_key


def inject_insurance_fund(state: ExchangeState, config: EngineConfig,
                          cmd: InjectInsuranceFund) -> list[Event]:
    """A platform injection (``platform_revenue``) into the family's fund."""
    fund_id = next((state.fund_of[i.inst_id] for i in state.catalogue
                    if i.inst_family == cmd.inst_family and i.inst_type == cmd.inst_type), None)
    if fund_id is None:
        return [Rejected(cmd.ts, 0, "InjectInsuranceFund", errors.NO_SUCH_INSTRUMENT,
                         "Instrument family does not exist")]
    amount = parse_money(cmd.amount)
    if isinstance(amount, Rejection):
        return [Rejected(cmd.ts, 0, "InjectInsuranceFund", amount.code, amount.msg)]
    return apply_platform_injection(state, state.funds[fund_id], amount, cmd.ts)


def apply_genesis(state: ExchangeState, config: EngineConfig) -> list[Event]:
    """Initial fund balances (keys ``BTC-USDT`` or ``SWAP:BTC-USDT``, or a shared fund id) and
    the vault's capital, as platform deposits at ts 0."""
    events: list[Event] = []
    for key, amount in sorted(config.insurance_fund.initial.items()):
        fund = state.funds.get(key) or state.funds.get(f"SWAP:{key}")
        if fund is None:
            raise ValueError(f"insurance_fund.initial: no fund {key!r}")
        if amount > 0:
            events.extend(apply_platform_injection(state, fund, money_from_decimal(amount), 0))
    if WaterfallStep.VAULT in config.waterfall.order:
        for ccy, amount in sorted(config.waterfall.vault_capital.items()):
            if amount > Decimal(0):
                state.accounts.add(VAULT_UID)
                state.ledger.apply_deposit(cash_key(VAULT_UID, ccy), money_from_decimal(amount))
    return events
