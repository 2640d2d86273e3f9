"""The admin API under ``/backstop/v1/``: accounts and keys, deposits, withdrawals, index
prices, funding settlement, insurance-fund injections and the conservation audit. Every
request needs ``X-Backstop-Admin: <token>``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from backstop.api.context import Ctx, ensure_accepted
from backstop.api.params import decimal_param, int_param, json_object, optional, required
from backstop.api.wire import OkxError, money, ms
from backstop.engine.queries import conservation_audit
from backstop.engine.validation import parse_money
from backstop.model.commands import Deposit, InjectInsuranceFund, SetIndexPrice, SettleFunding, Withdraw
from backstop.model.errors import Rejection
from backstop.model.events import FundingPaid, FundingRateSet, InsuranceFundChanged


def _amount(body: dict[str, Any], name: str) -> Decimal:
    amount = decimal_param(body, name)
    if amount <= 0:
        raise OkxError("51000", f"Parameter {name} error")
    return amount


def _money(body: dict[str, Any], name: str) -> Decimal:
    """An amount the engine will accept as money (its own rule, ``parse_money``), or 51000:
    checked before anything runs, so that a refused deposit cannot follow a created account."""
    amount = _amount(body, name)
    if isinstance(parse_money(amount), Rejection):
        raise OkxError("51000", f"Parameter {name} error")
    return amount


def _currency(ctx: Ctx, ccy: str) -> str:
    """A settlement currency of the catalogue, or 51000 (nothing else can be held)."""
    if ccy not in ctx.exchange.settle_currencies:
        raise OkxError("51000", "Parameter ccy error")
    return ccy


def _uid(ctx: Ctx, body: dict[str, Any]) -> int:
    uid = int_param(body, "uid")
    if uid is None:
        raise OkxError("50014", "Parameter uid can not be empty")
    if uid not in {k.uid for k in ctx.service.keys.values()}:
        raise OkxError("51603", "Account does not exist")
    return uid


async def create_account(ctx: Ctx) -> list[Any]:
    """``{"deposits": {"USDT": "10000"}}`` → ``{"uid","apiKey","secretKey","passphrase"}``.

    Every deposit is validated (known currency, amount by the strict grammar) before the
    account is created, so a refused request creates nothing."""
    body = json_object(ctx.body)
    deposits = body.get("deposits", {})
    if not isinstance(deposits, dict):
        raise OkxError("51000", "Parameter deposits error")
    amounts = {_currency(ctx, str(ccy)): _money(deposits, ccy) for ccy in deposits}
    key = await ctx.service.create_account(amounts)
    return [key.as_wire()]


async def deposit(ctx: Ctx) -> list[Any]:
    body = json_object(ctx.body)
    command = Deposit(0, _uid(ctx, body), _currency(ctx, required(body, "ccy")), _amount(body, "amt"))
    events = ensure_accepted(await ctx.service.submit(command))
    return [{"uid": str(command.uid), "ccy": command.ccy, "amt": required(body, "amt"),
             "ts": ms(events[0].ts)}]


async def withdraw(ctx: Ctx) -> list[Any]:
    body = json_object(ctx.body)
    command = Withdraw(0, _uid(ctx, body), _currency(ctx, required(body, "ccy")), _amount(body, "amt"))
    events = ensure_accepted(await ctx.service.submit(command))
    return [{"uid": str(command.uid), "ccy": command.ccy, "amt": required(body, "amt"),
             "ts": ms(events[0].ts)}]


async def index_price(ctx: Ctx) -> list[Any]:
    """Set a family's index (and marks); the engine runs its risk checks (liquidations, ADL)
    inside the same command, before this returns."""
    body = json_object(ctx.body)
    command = SetIndexPrice(0, required(body, "instFamily"), _amount(body, "px"))
    events = ensure_accepted(await ctx.service.submit(command))
    return [{"instFamily": command.inst_family, "px": required(body, "px"), "ts": ms(ctx.now),
             "events": [type(e).__name__ for e in events]}]


async def funding(ctx: Ctx) -> list[Any]:
    """Settle funding now: every instrument, or one (``{"instId": ...}``, optional)."""
    body = json_object(ctx.body) if ctx.body.strip() else {}
    inst_id = optional(body, "instId")
    events = ensure_accepted(await ctx.service.submit(SettleFunding(0, inst_id)))
    rates = [{"instId": e.inst_id, "fundingRate": str(Decimal(e.rate_e8).scaleb(-8).normalize())}
             for e in events if isinstance(e, FundingRateSet)]
    paid = sum(1 for e in events if isinstance(e, FundingPaid))
    return [{"ts": ms(ctx.now), "rates": rates, "payments": str(paid)}]


async def inject_insurance_fund(ctx: Ctx) -> list[Any]:
    """``{"instType","instFamily","amt"}``: a platform injection (``platform_revenue``)."""
    body = json_object(ctx.body)
    inst_type = optional(body, "instType", "SWAP")
    command = InjectInsuranceFund(0, required(body, "instFamily"), _amount(body, "amt"), inst_type)
    events = ensure_accepted(await ctx.service.submit(command))
    changed = next(e for e in events if isinstance(e, InsuranceFundChanged))
    return [{"instType": inst_type, "instFamily": command.inst_family, "amt": required(body, "amt"),
             "balance": money(changed.balance), "ccy": changed.ccy, "ts": ms(changed.ts)}]


async def audit(ctx: Ctx) -> list[Any]:
    """The exact conservation report per currency (money as decimal strings)."""
    rows = [{"ccy": r.ccy, "ok": r.ok, "deposits": money(r.deposits),
             "withdrawals": money(r.withdrawals), "accounts": money(r.accounts),
             "unsettled": money(r.unsettled), "funds": money(r.funds), "fees": money(r.fees),
             "difference": money(r.difference)} for r in conservation_audit(ctx.exchange.state)]
    return [{"ok": all(r["ok"] for r in rows), "currencies": rows}]


async def state(ctx: Ctx) -> list[Any]:
    """The engine's state hash and the log position, for checks after a restart."""
    return [{"stateHash": ctx.exchange.state_hash(), "seq": str(ctx.service.log.next_seq - 1),
             "accounts": str(len(ctx.service.keys))}]


GET_ROUTES = {"audit": audit, "state": state}
POST_ROUTES = {"accounts": create_account, "deposit": deposit, "withdraw": withdraw,
               "index-price": index_price, "funding": funding,
               "insurance-fund/inject": inject_insurance_fund}
