"""Private account routes (``/api/v5/account/*``). The caller is ``ctx.uid``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from backstop.api import account_views as av
from backstop.api.context import Ctx, ensure_accepted
from backstop.api.params import decimal_param, enum_param, instrument, json_object, optional, required
from backstop.api.wire import OkxError, ms
from backstop.model.commands import AdjustMargin, SetLeverage
from backstop.model.enums import MarginMode
from backstop.numeric import fmt_decimal
from backstop.engine.queries import lever_cents


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
    return [{"lever": required(body, "lever"), "mgnMode": mode.value, "instId": inst.inst_id,
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
    return [{"instId": inst.inst_id, "posSide": "net", "amt": required(body, "amt"), "type": kind,
             "leverage": fmt_decimal(Decimal(lever) / 100), "ccy": inst.settle_ccy,
             "ts": ms(ctx.now)}]


GET_ROUTES = {
    "account/balance": balance,
    "account/positions": positions,
    "account/config": config,
    "account/leverage-info": leverage_info,
}
POST_ROUTES = {
    "account/set-leverage": set_leverage,
    "account/position/margin-balance": margin_balance,
}
