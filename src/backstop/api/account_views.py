"""Read-only OKX views of one account: balance, positions, orders and fills.

Every figure comes from the engine's one query module, :mod:`backstop.engine.queries`; this
module only formats. Money is 1e-8 units of the settlement currency until it is formatted.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from backstop.api.history import BillRecord, PositionRecord, fill_bill_codes
from backstop.api.tracker import FillRecord, OrderRecord
from backstop.api.wire import display_px, flag, money, ms, px_str, ratio_str, sz_str
from backstop.engine import queries
from backstop.engine.exchange import Exchange
from backstop.model.enums import MarginMode
from backstop.numeric import fmt_decimal


def account_currencies(exchange: Exchange, uid: int) -> list[str]:
    """Currencies the account holds cash, margin or positions in, sorted."""
    return queries.account_currencies(exchange.state, uid)


USD_LIKE = ("USDT", "USDC", "USD")
"""Currencies whose equity is shown as ``eqUsd`` one for one (a stablecoin counted as a
dollar, as ``oiUsd`` counts it); other currencies leave ``eqUsd`` empty (no FX here)."""


def currency_detail(exchange: Exchange, uid: int, ccy: str, now: int) -> dict[str, Any]:
    """``account/balance`` ``details[]`` row. ``cashBal`` includes isolated margin; ``eq`` is
    cash plus all unrealized PnL; ``availEq`` is OKX's cross available equity."""
    figures = queries.cross_figures(exchange.state, uid, ccy)
    iso_margin, iso_eq = queries.isolated_totals(exchange.state, uid, ccy)
    cash_bal = figures.cash + iso_margin
    eq = figures.equity + iso_eq
    return {
        "ccy": ccy, "eq": money(eq), "cashBal": money(cash_bal), "upl": money(eq - cash_bal),
        "isoEq": money(iso_eq), "availEq": money(figures.available),
        "availBal": money(figures.max_withdrawal), "frozenBal": money(cash_bal - figures.max_withdrawal),
        "ordFrozen": money(figures.order_frozen), "imr": money(figures.position_im),
        "mmr": money(figures.mm_plus_fee), "mgnRatio": _ratio(figures.equity, figures.mm_plus_fee),
        "disEq": "", "eqUsd": money(eq) if ccy in USD_LIKE else "", "notionalLever": "", "liab": "",
        "uplLiab": "0", "interest": "",
        "uTime": ms(now),
        "crossLiab": "", "isoLiab": "", "maxLoan": "", "stgyEq": "0", "twap": "0", "spotInUseAmt": "",
        "isoUpl": money(iso_eq - iso_margin), "fixedBal": "0", "borrowFroz": "", "clSpotInUseAmt": "",
        "maxSpotInUse": "", "spotIsoBal": "0", "smtSyncEq": "0", "spotCopyTradingEq": "0",
        "spotBal": "", "openAvgPx": "", "accAvgPx": "", "spotUpl": "", "spotUplRatio": "",
        "totalPnl": "", "totalPnlRatio": "", "rewardBal": "", "colRes": "", "colBorrAutoConversion": "",
        "collateralEnabled": False, "autoLendStatus": "off", "autoLendMtAmt": "0", "frpType": "0",
    }


def balance_view(exchange: Exchange, uid: int, ccys: list[str] | None, now: int) -> dict[str, Any]:
    """``account/balance``. Single-currency margin: totals across currencies are not
    converted, so ``totalEq`` is left empty unless one currency is held."""
    held = account_currencies(exchange, uid)
    chosen = [c for c in held if ccys is None or c in ccys]
    details = [currency_detail(exchange, uid, ccy, now) for ccy in chosen]
    total = details[0]["eq"] if len(details) == 1 else ""
    return {"totalEq": total, "isoEq": "", "adjEq": "", "availEq": "", "ordFroz": "", "imr": "",
            "mmr": "", "borrowFroz": "", "mgnRatio": "", "notionalUsd": "", "notionalUsdForBorrow": "",
            "notionalUsdForFutures": "", "notionalUsdForOption": "", "notionalUsdForSwap": "",
            "upl": "", "uTime": ms(now), "details": details}


def _ratio(equity: int, mm_plus_fee: int) -> str:
    return ratio_str(queries.margin_ratio(equity, mm_plus_fee))


def position_view(exchange: Exchange, pos: queries.Position, now: int) -> dict[str, Any]:
    """``account/positions`` row (net mode); every figure is the engine's
    (:func:`backstop.engine.queries.position_figures`)."""
    f = queries.position_figures(exchange.state, pos)
    inst = exchange.catalogue.instruments[f.inst_id]  # type: ignore[index]
    basis = f.margin if pos.is_isolated else f.im
    liq = None if f.liq_ticks is None else Decimal(f.liq_ticks) * inst.tick_sz
    return {
        "instType": inst.inst_type, "instId": inst.inst_id, "mgnMode": f.mgn_mode.value,
        "posId": f"{f.uid}-{inst.inst_id}-{f.mgn_mode.value}", "posSide": "net",
        "pos": sz_str(inst, f.size_lots), "availPos": sz_str(inst, abs(f.size_lots)),
        "baseBal": "", "quoteBal": "", "posCcy": "", "ccy": f.ccy,
        "avgPx": display_px(inst, f.avg_px), "markPx": px_str(inst, f.mark_ticks),
        "idxPx": px_str(inst, f.index_ticks), "last": px_str(inst, f.mark_ticks),
        "upl": money(f.upl), "uplLastPx": money(f.upl), "uplRatio": ratio_str(_share(f.upl, basis), 6),
        "uplRatioLastPx": ratio_str(_share(f.upl, basis), 6),
        "lever": fmt_decimal(Decimal(f.lever_cents) / 100), "liqPx": display_px(inst, liq),
        "imr": "" if pos.is_isolated else money(f.im),
        "margin": money(f.margin) if pos.is_isolated else "",
        "mgnRatio": ratio_str(f.margin_ratio), "mmr": money(f.mm),
        "notionalUsd": money(f.notional) if inst.is_linear else "", "adl": str(f.adl),
        "bePx": display_px(inst, f.break_even_px), "liab": "", "liabCcy": "",
        "interest": "", "tradeId": "", "optVal": "", "pendingCloseOrdLiabVal": "",
        "deltaBS": "", "deltaPA": "", "gammaBS": "", "gammaPA": "", "thetaBS": "", "thetaPA": "",
        "vegaBS": "", "vegaPA": "", "spotInUseAmt": "", "spotInUseCcy": "", "clSpotInUseAmt": "",
        "maxSpotInUseAmt": "", "bizRefId": "", "bizRefType": "", "usdPx": "",
        "realizedPnl": money(f.realized_pnl - f.fees_paid), "pnl": money(f.realized_pnl),
        "fee": money(-f.fees_paid), "fundingFee": money(f.funding_paid),
        "liqPenalty": money(-f.liq_penalty), "closeOrderAlgo": [], "nonSettleAvgPx": "",
        "settledPnl": "", "cTime": ms(f.open_ts), "uTime": ms(now),
    }


def _share(numerator: int, denominator: int) -> Decimal | None:
    return Decimal(numerator) / Decimal(denominator) if denominator else None


def position_views(exchange: Exchange, uid: int, inst_ids: set[str] | None,
                   now: int) -> list[dict[str, Any]]:
    return [position_view(exchange, pos, now) for pos in queries.open_positions(exchange.state, uid)
            if inst_ids is None or pos.inst_id in inst_ids]


def order_view(exchange: Exchange, order: OrderRecord) -> dict[str, Any]:
    """``trade/order`` and ``trade/orders-pending`` row. OKX reports fees as negative.
    A liquidation or ADL order shows as OKX shows it: ``ordType`` ``market``, no ``px``,
    filled at ``avgPx``, with its ``category``."""
    inst = exchange.catalogue.instruments[order.inst_id]  # type: ignore[index]
    avg = (display_px(inst, Decimal(order.fill_value_ticks) / order.filled_lots * inst.tick_sz)
           if order.filled_lots else "")
    lever = queries.lever_cents(exchange.state, order.uid, inst, MarginMode(order.td_mode))
    ord_type = "market" if order.is_forced else order.ord_type
    return {
        "instType": inst.inst_type, "instId": inst.inst_id, "tgtCcy": "", "ccy": "",
        "ordId": str(order.ord_id), "clOrdId": order.cl_ord_id, "tag": "",
        "px": px_str(inst, order.px_ticks) if order.px_ticks and not order.is_forced else "",
        "pxUsd": "", "pxVol": "", "pxType": "", "sz": sz_str(inst, order.sz_lots), "pnl": money(order.pnl),
        "ordType": ord_type,
        "side": order.side, "posSide": "net", "tdMode": order.td_mode,
        "accFillSz": sz_str(inst, order.filled_lots),
        "fillPx": px_str(inst, order.last_fill_ticks) if order.last_fill_lots else "",
        "tradeId": str(order.last_trade_id) if order.last_trade_id else "",
        "fillSz": sz_str(inst, order.last_fill_lots),
        "fillTime": ms(order.last_fill_time) if order.last_fill_time else "",
        "avgPx": avg, "state": order.state, "stpId": "", "stpMode": "cancel_maker",
        "lever": fmt_decimal(Decimal(lever) / 100), "attachAlgoClOrdId": "", "tpTriggerPx": "",
        "tpTriggerPxType": "", "tpOrdPx": "", "slTriggerPx": "", "slTriggerPxType": "", "slOrdPx": "",
        "attachAlgoOrds": [], "linkedAlgoOrd": {"algoId": ""}, "feeCcy": inst.settle_ccy,
        "fee": money(-order.fee), "rebateCcy": inst.settle_ccy, "rebate": "0", "source": "",
        "category": order.category, "reduceOnly": flag(order.reduce_only), "isTpLimit": "false",
        "cancelSource": _CANCEL_SOURCE.get(order.cancel_reason, ""),
        "cancelSourceReason": order.cancel_reason,
        "quickMgnType": "", "algoClOrdId": "", "algoId": "", "tradeQuoteCcy": "",
        "uTime": ms(order.u_time), "cTime": ms(order.c_time),
    }


_CANCEL_SOURCE = {"user": "1", "liquidation": "2", "self_trade": "20", "ioc": "14", "fok": "15",
                  "post_only": "13", "market": "31", "reduce_only": "19"}
"""OKX ``cancelSource`` codes for the engine's cancel reasons."""


def fill_view(exchange: Exchange, fill: FillRecord) -> dict[str, Any]:
    """``trade/fills`` and ``fills-history`` row: ``subType`` is the fill's bill code
    (open/close, liquidation, ADL) and ``fillPnl`` its realized PnL."""
    inst = exchange.catalogue.instruments[fill.inst_id]  # type: ignore[index]
    return {
        "instType": inst.inst_type, "instId": inst.inst_id, "tradeId": str(fill.trade_id),
        "ordId": str(fill.ord_id), "clOrdId": fill.cl_ord_id, "billId": str(fill.bill_id),
        "subType": fill_bill_codes(fill)[1], "tag": "", "fillPx": px_str(inst, fill.px_ticks),
        "fillSz": sz_str(inst, fill.lots), "fillIdxPx": "", "fillPnl": money(fill.pnl), "fillPxVol": "",
        "fillPxUsd": "", "fillMarkVol": "", "fillFwdPx": "", "fillMarkPx": "", "side": fill.side,
        "posSide": "net", "execType": fill.exec_type, "feeCcy": inst.settle_ccy,
        "fee": money(-fill.fee), "ts": ms(fill.ts), "fillTime": ms(fill.ts), "feeRate": "",
        "tradeQuoteCcy": "",
    }


def bill_view(exchange: Exchange, bill: BillRecord, bal: int) -> dict[str, Any]:
    """``account/bills`` row; ``bal`` is the balance after it (money units)."""
    inst = exchange.catalogue.get(bill.inst_id) if bill.inst_id else None
    ccy = inst.settle_ccy if inst is not None else bill.ccy
    return {
        "instType": inst.inst_type if inst else "", "instId": bill.inst_id, "ccy": ccy,
        "mgnMode": bill.mgn_mode, "type": bill.type, "subType": bill.sub_type, "billId": str(bill.bill_id),
        "balChg": money(bill.bal_chg), "bal": money(bal), "posBal": "", "posBalChg": "",
        "sz": sz_str(inst, bill.lots) if inst and bill.lots else "", "notes": "",
        "px": px_str(inst, bill.px_ticks) if inst and bill.px_ticks else "",
        "pnl": money(bill.pnl), "fee": money(-bill.fee), "from": "", "to": "", "interest": "0",
        "ordId": str(bill.ord_id) if bill.ord_id else "", "clOrdId": bill.cl_ord_id,
        "tradeId": str(bill.trade_id) if bill.trade_id else "", "execType": bill.exec_type,
        "tag": "", "fillTime": ms(bill.ts) if bill.trade_id else "", "fillIdxPx": "", "fillMarkPx": "",
        "fillPxVol": "", "fillPxUsd": "", "fillMarkVol": "", "fillFwdPx": "", "earnAmt": "",
        "earnApr": "", "ts": ms(bill.ts),
    }


def position_history_view(exchange: Exchange, record: PositionRecord) -> dict[str, Any]:
    """``account/positions-history`` row: ``type`` of the latest close (1 partly, 2 all,
    3 liquidation, 4 partial liquidation, 5/6 ADL partly/all); ``pnl`` before fees,
    ``realizedPnl`` after fees, funding and the liquidation penalty."""
    inst = exchange.catalogue.instruments[record.inst_id]  # type: ignore[index]
    lever = record.lever_cents if record.lever_cents is not None else inst.default_lever_cents
    realized = record.pnl - record.fee + record.funding - record.liq_penalty
    open_px = Decimal(record.open_value) / record.open_lots * inst.tick_sz if record.open_lots else None
    close_px = Decimal(record.close_value) / record.close_lots * inst.tick_sz if record.close_lots else None
    # the margin the opening notional needed at the leverage (linear only; inverse left empty)
    basis = record.open_value * inst.value_k * 100 // lever if inst.is_linear and lever else 0
    return {
        "instType": inst.inst_type, "instId": inst.inst_id, "mgnMode": record.mgn_mode,
        "type": record.type, "cTime": ms(record.c_time), "uTime": ms(record.u_time),
        "openAvgPx": display_px(inst, open_px), "nonSettleAvgPx": "",
        "closeAvgPx": display_px(inst, close_px),
        "posId": str(record.pos_id), "openMaxPos": sz_str(inst, record.max_lots),
        "closeTotalPos": sz_str(inst, record.close_lots), "realizedPnl": money(realized),
        "settledPnl": "", "pnlRatio": ratio_str(_share(realized, basis), 6) if basis else "",
        "fee": money(-record.fee), "fundingFee": money(record.funding),
        "liqPenalty": money(-record.liq_penalty),
        "pnl": money(record.pnl), "posSide": "net", "lever": fmt_decimal(Decimal(lever) / 100),
        "direction": record.direction, "triggerPx": "", "uly": inst.inst_family,
        "ccy": inst.settle_ccy,
    }
