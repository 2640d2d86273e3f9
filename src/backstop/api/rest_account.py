"""Private account routes (``/api/v5/account/*``). The caller is ``ctx.uid``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from backstop.api import account_views as av
from backstop.api import sizing
from backstop.api.context import Ctx, ensure_accepted
from backstop.api.params import decimal_param, enum_param, instrument, json_object, optional, required
from backstop.api.rest_history import GET_ROUTES as HISTORY_ROUTES
from backstop.api.wire import OkxError, money, ms, sz_str
from backstop.engine.queries import lever_cents
from backstop.model.commands import AdjustMargin, SetLeverage
from backstop.model.enums import MarginMode
from backstop.numeric import NumericError, fmt_decimal


def _posside(params: dict[str, Any]) -> None:
    """Net mode only: ``posSide`` must be empty or ``net``."""
    if optional(params, "posSide", "net") != "net":
        raise OkxError("51000", "Parameter posSide error")


async def balance(ctx: Ctx) -> list[Any]:
    ccy = optional(ctx.query, "ccy")
    ccys = ccy.split(",") if ccy else None
    return [av.balance_view(ctx.exchange, ctx.uid, ccys, ctx.now)]


async def positions(ctx: Ctx) -> list[Any]:
    inst_type = optional(ctx.query, "instType")
    if inst_type not in ("", "SWAP", "FUTURES", "OPTION", "MARGIN"):
        raise OkxError("51000", "Parameter instType error")
    if inst_type and inst_type != "SWAP":
        return []
    inst_id = optional(ctx.query, "instId")
    return av.position_views(ctx.exchange, ctx.uid, set(inst_id.split(",")) if inst_id else None, ctx.now)


async def config(ctx: Ctx) -> list[Any]:
    return [{"uid": str(ctx.uid), "mainUid": str(ctx.uid), "acctLv": "2", "acctStpMode": "cancel_maker",
             "posMode": "net_mode", "autoLoan": False, "greeksType": "PA", "feeType": "0",
             "level": "Lv1", "levelTmp": "", "ctIsoMode": "automatic", "mgnIsoMode": "automatic",
             "spotOffsetType": "", "stgyType": "0", "roleType": "0", "traderInsts": [],
             "spotRoleType": "0", "spotTraderInsts": [], "opAuth": "0", "kycLv": "0", "label": "backstop",
             "ip": "", "perm": "read_only,trade", "liquidationGear": "-1", "enableSpotBorrow": False,
             "spotBorrowAutoRepay": False, "type": "0", "settleCcy": "", "settleCcyList": []}]


async def set_leverage(ctx: Ctx) -> list[Any]:
    body = json_object(ctx.body)
    inst = instrument(ctx.catalogue, body)
    mode = enum_param(body, "mgnMode", MarginMode)
    _posside(body)
    lever = decimal_param(body, "lever")
    ensure_accepted(await ctx.service.submit(SetLeverage(0, ctx.uid, inst.inst_id, mode, lever)))
    return [{"lever": fmt_decimal(lever), "mgnMode": mode.value, "instId": inst.inst_id,
             "posSide": "net"}]


async def leverage_info(ctx: Ctx) -> list[Any]:
    mode = enum_param(ctx.query, "mgnMode", MarginMode)
    out = []
    for inst_id in required(ctx.query, "instId").split(","):
        inst = instrument(ctx.catalogue, {"instId": inst_id})
        cents = lever_cents(ctx.exchange.state, ctx.uid, inst, mode)
        out.append({"instId": inst.inst_id, "mgnMode": mode.value, "posSide": "net",
                    "lever": fmt_decimal(Decimal(cents) / 100), "ccy": ""})
    return out


async def margin_balance(ctx: Ctx) -> list[Any]:
    body = json_object(ctx.body)
    inst = instrument(ctx.catalogue, body)
    _posside(body)
    kind = required(body, "type")
    if kind not in ("add", "reduce"):
        raise OkxError("51000", "Parameter type error")
    amt = decimal_param(body, "amt")
    if amt <= 0:
        raise OkxError("51000", "Parameter amt error")
    signed = amt if kind == "add" else -amt
    ensure_accepted(await ctx.service.submit(AdjustMargin(0, ctx.uid, inst.inst_id, signed)))
    lever = lever_cents(ctx.exchange.state, ctx.uid, inst, MarginMode.ISOLATED)
    return [{"instId": inst.inst_id, "posSide": "net", "amt": fmt_decimal(amt), "type": kind,
             "leverage": fmt_decimal(Decimal(lever) / 100), "ccy": inst.settle_ccy,
             "ts": ms(ctx.now)}]


def _instruments(ctx: Ctx, most: int = 5) -> list[Any]:
    """``instId``: one, or up to ``most`` separated by commas."""
    names = required(ctx.query, "instId").split(",")
    if len(names) > most:
        raise OkxError("51000", "Parameter instId error")
    return [instrument(ctx.catalogue, {"instId": name}) for name in names]


def _lever_cents(ctx: Ctx) -> int | None:
    """An optional ``leverage`` parameter as cents (51000 when not a positive number)."""
    if not optional(ctx.query, "leverage"):
        return None
    lever = decimal_param(ctx.query, "leverage")
    cents = lever * 100
    if cents <= 0 or cents != cents.to_integral_value():
        raise OkxError("51000", "Parameter leverage error")
    return int(cents)


def _price_ticks(ctx: Ctx, inst: Any) -> int | None:
    """An optional ``px`` on the instrument's tick grid, in ticks (51000 otherwise)."""
    if not optional(ctx.query, "px"):
        return None
    try:
        ticks = inst.px_to_ticks(decimal_param(ctx.query, "px"))
    except NumericError as exc:
        raise OkxError("51000", "Parameter px error") from exc
    if ticks <= 0:
        raise OkxError("51000", "Parameter px error")
    return ticks


async def max_size(ctx: Ctx) -> list[Any]:
    """``account/max-size``: the largest buy and sell in contracts (closing the position
    first, then opening with the available equity), at ``px`` or the price each meets."""
    mode = enum_param(ctx.query, "tdMode", MarginMode)
    lever = _lever_cents(ctx)
    out = []
    for inst in _instruments(ctx):
        ticks = _price_ticks(ctx, inst)
        size = sizing.max_size(ctx.exchange, ctx.uid, inst, mode, ticks, lever)
        out.append({"instId": inst.inst_id, "ccy": inst.settle_ccy, "maxBuy": sz_str(inst, size.buy),
                    "maxSell": sz_str(inst, size.sell)})
    return out


async def max_avail_size(ctx: Ctx) -> list[Any]:
    """``account/max-avail-size``: for derivatives, the available equity each side can use
    (settlement currency)."""
    enum_param(ctx.query, "tdMode", MarginMode)
    out = []
    for inst in _instruments(ctx):
        avail = money(sizing.available(ctx.exchange, ctx.uid, inst))
        out.append({"instId": inst.inst_id, "availBuy": avail, "availSell": avail})
    return out


async def max_withdrawal(ctx: Ctx) -> list[Any]:
    """``account/max-withdrawal``: per held currency (or those named by ``ccy``)."""
    wanted = optional(ctx.query, "ccy")
    held = av.account_currencies(ctx.exchange, ctx.uid)
    ccys = [c for c in held if not wanted or c in wanted.split(",")]
    return [{"ccy": c, "maxWd": money(sizing.max_withdrawal(ctx.exchange, ctx.uid, c)),
             "maxWdEx": money(sizing.max_withdrawal(ctx.exchange, ctx.uid, c)), "spotOffsetMaxWd": "",
             "spotOffsetMaxWdEx": ""} for c in ccys]


async def trade_fee(ctx: Ctx) -> list[Any]:
    """``account/trade-fee`` for ``instType`` and ``instId``/``instFamily``/``uly``. OKX signs
    fee rates negative when charged (a rebate is positive)."""
    inst_type = required(ctx.query, "instType")
    if inst_type not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
        raise OkxError("51000", "Parameter instType error")
    family = optional(ctx.query, "instFamily") or optional(ctx.query, "uly")
    inst_id = optional(ctx.query, "instId")
    chosen = [i for i in ctx.catalogue if i.inst_type == inst_type and (not family or i.inst_family == family)
              and (not inst_id or i.inst_id == inst_id)]
    if not chosen:
        raise OkxError("51001", "Instrument ID does not exist")
    inst = chosen[0]
    maker = fmt_decimal(-Decimal(inst.maker_fee_ppm) / 1_000_000)
    taker = fmt_decimal(-Decimal(inst.taker_fee_ppm) / 1_000_000)
    linear = inst.is_linear
    return [{"category": "1", "delivery": "", "exercise": "", "instType": inst_type, "level": "Lv1",
             "maker": "" if linear else maker, "taker": "" if linear else taker,
             "makerU": maker if linear else "", "takerU": taker if linear else "", "makerUSDC": "",
             "takerUSDC": "", "ruleType": "normal", "fiatList": [], "ts": ms(ctx.now)}]


GET_ROUTES = {
    "account/balance": balance,
    "account/positions": positions,
    "account/config": config,
    "account/leverage-info": leverage_info,
    "account/max-size": max_size,
    "account/max-avail-size": max_avail_size,
    "account/max-withdrawal": max_withdrawal,
    "account/trade-fee": trade_fee,
    **{path: handler for path, handler in HISTORY_ROUTES.items() if path.startswith("account/")},
}
POST_ROUTES = {
    "account/set-leverage": set_leverage,
    "account/position/margin-balance": margin_balance,
}
