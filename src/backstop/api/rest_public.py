"""Public REST routes (``/api/v5/public/*``, ``/api/v5/market/*``). Each handler returns the
``data`` list or raises :class:`OkxError`."""

from __future__ import annotations

from typing import Any

from backstop.api import liquidation_views as lv
from backstop.api import market_views as mv
from backstop.api.context import Ctx
from backstop.api.params import instrument, int_param, limit_param, optional, required
from backstop.api.wire import OkxError, ms
from backstop.model.instrument import Instrument

INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")


def _inst_type(ctx: Ctx, name: str = "instType") -> str:
    inst_type = required(ctx.query, name)
    if inst_type not in INST_TYPES:
        raise OkxError("51000", f"Parameter {name} error")
    return inst_type


def _matching(ctx: Ctx) -> list[Instrument]:
    """Instruments filtered by ``instType`` (required), ``instFamily``/``uly`` and ``instId``."""
    inst_type = _inst_type(ctx)
    family = optional(ctx.query, "instFamily") or optional(ctx.query, "uly")
    inst_id = optional(ctx.query, "instId")
    return [i for i in ctx.catalogue if i.inst_type == inst_type
            and (not family or i.inst_family == family) and (not inst_id or i.inst_id == inst_id)]


async def instruments(ctx: Ctx) -> list[Any]:
    return [mv.instrument_view(i) for i in _matching(ctx)]


async def position_tiers(ctx: Ctx) -> list[Any]:
    _inst_type(ctx)
    if required(ctx.query, "tdMode") not in ("cross", "isolated"):
        raise OkxError("51000", "Parameter tdMode error")
    if not (optional(ctx.query, "instFamily") or optional(ctx.query, "uly")
            or optional(ctx.query, "instId")):
        raise OkxError("50014", "Parameter instFamily can not be empty")
    return [row for inst in _matching(ctx) for row in mv.tier_views(inst)]


async def mark_price(ctx: Ctx) -> list[Any]:
    return [mv.mark_view(ctx.exchange, i, ctx.now) for i in _matching(ctx)]


async def funding_rate(ctx: Ctx) -> list[Any]:
    inst = instrument(ctx.catalogue, ctx.query)
    return [mv.funding_view(ctx.exchange, inst, ctx.now)]


async def server_time(ctx: Ctx) -> list[Any]:
    return [{"ts": ms(ctx.now)}]


async def insurance_fund(ctx: Ctx) -> list[Any]:
    """Fund records of one family, every ``type`` or one, paged by ``before``/``after`` (ts)."""
    inst_type = _inst_type(ctx)
    family = optional(ctx.query, "instFamily") or optional(ctx.query, "uly")
    if inst_type in ("SWAP", "FUTURES") and not family:
        raise OkxError("50014", "Parameter instFamily can not be empty")
    kind = optional(ctx.query, "type")
    if kind and kind not in mv.FUND_TYPES:
        raise OkxError("51000", "Parameter type error")
    return mv.insurance_fund_views(ctx.exchange, inst_type, family, limit_param(ctx.query), kind,
                                   int_param(ctx.query, "before"), int_param(ctx.query, "after"))


async def liquidation_orders(ctx: Ctx) -> list[Any]:
    """Legacy ``public/liquidation-orders``: settled liquidations per family, newest first,
    filtered by ``instFamily``/``uly``, ``instId`` and ``mgnMode``, paged by ts."""
    inst_type = _inst_type(ctx)
    family = optional(ctx.query, "instFamily") or optional(ctx.query, "uly")
    inst_id, mode = optional(ctx.query, "instId"), optional(ctx.query, "mgnMode")
    if optional(ctx.query, "state", "filled") not in ("filled", "unfilled"):
        raise OkxError("51000", "Parameter state error")
    if mode not in ("", "cross", "isolated"):
        raise OkxError("51000", "Parameter mgnMode error")
    if optional(ctx.query, "state", "filled") == "unfilled":
        return []
    return lv.liquidation_order_views(ctx.exchange.catalogue, ctx.service.tracker, inst_type, family,
                                      inst_id, mode, limit_param(ctx.query),
                                      int_param(ctx.query, "before"), int_param(ctx.query, "after"))


async def ticker(ctx: Ctx) -> list[Any]:
    inst = instrument(ctx.catalogue, ctx.query)
    return [mv.ticker_view(ctx.exchange, ctx.service.tracker, inst, ctx.now)]


async def tickers(ctx: Ctx) -> list[Any]:
    return [mv.ticker_view(ctx.exchange, ctx.service.tracker, i, ctx.now) for i in _matching(ctx)]


async def books(ctx: Ctx) -> list[Any]:
    inst = instrument(ctx.catalogue, ctx.query)
    depth = limit_param({"limit": optional(ctx.query, "sz", "1")}, most=400)
    return [mv.book_view(ctx.exchange, inst, depth, ctx.now)]


async def currencies(ctx: Ctx) -> list[Any]:
    """``asset/currencies`` (private on OKX; ccxt's ``load_markets`` asks for it with keys):
    one chain per settlement currency, deposits and withdrawals through the admin API."""
    settle = sorted({i.settle_ccy for i in ctx.catalogue})
    return [{"ccy": c, "name": c, "chain": f"{c}-backstop", "canDep": True, "canWd": True,
             "canInternal": True, "minDep": "0.00000001", "minWd": "0.00000001", "maxWd": "",
             "wdTickSz": "8", "minFee": "0", "maxFee": "0", "fee": "0", "mainNet": True,
             "logoLink": "", "ctAddr": "", "needTag": False, "depQuotaFixed": "",
             "usedDepQuotaFixed": "", "wdQuota": "", "usedWdQuota": "", "minDepArrivalConfirm": "0",
             "minWdUnlockConfirm": "0", "depEstOpenTime": "", "wdEstOpenTime": "",
             "burningFeeRate": ""} for c in settle]


ROUTES = {
    "public/instruments": instruments,
    "public/position-tiers": position_tiers,
    "public/mark-price": mark_price,
    "public/funding-rate": funding_rate,
    "public/time": server_time,
    "public/insurance-fund": insurance_fund,
    "public/liquidation-orders": liquidation_orders,
    "market/ticker": ticker,
    "market/tickers": tickers,
    "market/books": books,
}
"""GET routes under ``/api/v5/`` that need no key."""
