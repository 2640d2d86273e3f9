"""Public REST routes (``/api/v5/public/*``, ``/api/v5/market/*``). Each handler returns the
``data`` list or raises :class:`OkxError`."""

from __future__ import annotations

from typing import Any

from backstop.api import liquidation_views as lv
from backstop.api import market_data_views as dv
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
    """OKX answers ``instId`` alone (ccxt's ``fetch_mark_price`` sends only that): the
    instrument names its type."""
    if not optional(ctx.query, "instType") and optional(ctx.query, "instId"):
        return [mv.mark_view(ctx.exchange, instrument(ctx.catalogue, ctx.query), ctx.now)]
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


def _cursors(ctx: Ctx) -> tuple[int | None, int | None]:
    return int_param(ctx.query, "after"), int_param(ctx.query, "before")


def _index_instrument(ctx: Ctx) -> Instrument:
    """``index-candles`` names an index (``BTC-USDT``): its family's first instrument."""
    family = required(ctx.query, "instId")
    inst = next((i for i in ctx.catalogue if i.inst_family == family), None)
    if inst is None:
        raise OkxError("51001", "Instrument ID does not exist")
    return inst


def _candles(most: int):
    async def handler(ctx: Ctx) -> list[Any]:
        inst = instrument(ctx.catalogue, ctx.query)
        spec = dv.bar_param(optional(ctx.query, "bar"))
        return dv.trade_candle_views(ctx.service.tracker.market, inst, spec, *_cursors(ctx),
                                     limit_param(ctx.query, most=most), ctx.now)
    return handler


def _price_candles(kind: str):
    async def handler(ctx: Ctx) -> list[Any]:
        inst = _index_instrument(ctx) if kind == "index" else instrument(ctx.catalogue, ctx.query)
        spec = dv.bar_param(optional(ctx.query, "bar"))
        market = ctx.service.tracker.market
        series = (market.index_candles if kind == "index" else market.mark_candles).get(inst.inst_id)
        return dv.price_candle_views(series, inst, spec, *_cursors(ctx), limit_param(ctx.query), ctx.now)
    return handler


async def trades(ctx: Ctx) -> list[Any]:
    """``market/trades``: the newest trades, up to 500."""
    inst = instrument(ctx.catalogue, ctx.query)
    kept = ctx.service.tracker.market.trades.get(inst.inst_id, ())
    limit = limit_param(ctx.query, most=500)
    return dv.trade_views(inst, list(kept)[-limit:][::-1])


async def history_trades(ctx: Ctx) -> list[Any]:
    """``market/history-trades``: paged by ``tradeId`` (``type`` 1, default) or by ``ts``
    (``type`` 2)."""
    inst = instrument(ctx.catalogue, ctx.query)
    kind = optional(ctx.query, "type", "1")
    if kind not in ("1", "2"):
        raise OkxError("51000", "Parameter type error")
    kept = list(ctx.service.tracker.market.trades.get(inst.inst_id, ()))
    key = (lambda t: t.trade_id) if kind == "1" else (lambda t: t.ts)
    return dv.trade_views(inst, dv.page(kept, key, *_cursors(ctx), limit_param(ctx.query)))


async def open_interest(ctx: Ctx) -> list[Any]:
    market = ctx.service.tracker.market
    return [dv.open_interest_view(ctx.exchange, market, i, ctx.now) for i in _matching(ctx)]


async def funding_rate_history(ctx: Ctx) -> list[Any]:
    inst = instrument(ctx.catalogue, ctx.query)
    return dv.funding_history_views(ctx.service.tracker.market, inst, *_cursors(ctx),
                                    limit_param(ctx.query, most=400))


async def price_limit(ctx: Ctx) -> list[Any]:
    inst = instrument(ctx.catalogue, ctx.query)
    return [dv.price_limit_view(ctx.exchange, inst, ctx.now)]


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
    "market/candles": _candles(300),
    "market/history-candles": _candles(300),
    "market/mark-price-candles": _price_candles("mark"),
    "market/history-mark-price-candles": _price_candles("mark"),
    "market/index-candles": _price_candles("index"),
    "market/history-index-candles": _price_candles("index"),
    "market/trades": trades,
    "market/history-trades": history_trades,
    "public/open-interest": open_interest,
    "public/funding-rate-history": funding_rate_history,
    "public/price-limit": price_limit,
}
"""GET routes under ``/api/v5/`` that need no key."""
