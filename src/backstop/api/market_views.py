"""Read-only OKX views of public market data: instruments, tiers, marks, funding, tickers,
books, insurance funds. Prices come from ticks, sizes from lots, money from 1e-8 units; every
number is a string."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from backstop.api.tracker import Tracker
from backstop.api.wire import money, ms, px_str, sz_str
from backstop.engine.exchange import Exchange
from backstop.engine.queries import fund_balance
from backstop.model.instrument import Instrument
from backstop.numeric import fmt_decimal, round_to

DAY_MS = 24 * 3600 * 1000
BUY, SELL = 1, -1


def instrument_view(inst: Instrument, list_time: int = 0) -> dict[str, Any]:
    """``public/instruments`` row for a perpetual swap."""
    base, quote = inst.inst_family.split("-", 1)
    return {
        "instType": inst.inst_type, "instId": inst.inst_id, "uly": inst.inst_family,
        "instFamily": inst.inst_family, "baseCcy": "", "quoteCcy": "", "settleCcy": inst.settle_ccy,
        "ctVal": fmt_decimal(inst.ct_val), "ctMult": "1", "ctValCcy": inst.ct_val_ccy,
        "ctType": inst.ct_type.value, "optType": "", "stk": "", "listTime": ms(list_time),
        "expTime": "", "lever": fmt_decimal(inst.max_lever), "tickSz": fmt_decimal(inst.tick_sz),
        "lotSz": fmt_decimal(inst.lot_sz), "minSz": fmt_decimal(inst.min_sz),
        "maxLmtSz": fmt_decimal(inst.tiers[-1].max_sz), "maxMktSz": fmt_decimal(inst.tiers[-1].max_sz),
        "maxLmtAmt": "", "maxMktAmt": "", "maxTwapSz": "", "maxIcebergSz": "", "maxTriggerSz": "",
        "maxStopSz": "", "alias": "", "state": "live", "ruleType": "normal", "category": "1",
        "instIdCode": "", "openType": "", "auctionEndTime": "", "futureSettlement": False,
        "contTdSwTime": "", "preMktSwTime": "", "tradeQuoteCcyList": [], "groupId": "1",
        "base": base, "quote": quote,
    }


def tier_views(inst: Instrument) -> list[dict[str, Any]]:
    """``public/position-tiers`` rows (sizes in contracts)."""
    return [{
        "uly": inst.inst_family, "instFamily": inst.inst_family, "instId": "",
        "tier": str(t.tier), "minSz": fmt_decimal(t.min_sz), "maxSz": fmt_decimal(t.max_sz),
        "mmr": fmt_decimal(t.mmr), "imr": fmt_decimal(t.imr), "maxLever": fmt_decimal(t.max_lever),
        "optMgnFactor": "", "quoteMaxLoan": "", "baseMaxLoan": "",
    } for t in inst.tiers]


def mark_view(exchange: Exchange, inst: Instrument, now: int) -> dict[str, Any]:
    return {"instType": inst.inst_type, "instId": inst.inst_id,
            "markPx": px_str(inst, exchange.state.mark_ticks[inst.inst_id]), "ts": ms(now)}


def funding_view(exchange: Exchange, inst: Instrument, now: int) -> dict[str, Any]:
    """``public/funding-rate``: the engine's current rate (1e-8 units) and the next
    settlement time on the instrument's interval grid (UTC)."""
    rate_e8 = exchange.state.funding_rate_e8.get(inst.inst_id, 0)
    interval = inst.funding_interval_h * 3600 * 1000
    next_time = (now // interval + 1) * interval
    rate = fmt_decimal(Decimal(rate_e8).scaleb(-8))
    return {
        "instType": inst.inst_type, "instId": inst.inst_id, "method": "current_period",
        "formulaType": "withRate", "fundingRate": rate, "nextFundingRate": "",
        "fundingTime": ms(next_time), "nextFundingTime": ms(next_time + interval),
        "minFundingRate": fmt_decimal(-inst.funding_cap), "maxFundingRate": fmt_decimal(inst.funding_cap),
        "interestRate": "0.0001", "impactValue": "", "settState": "settled",
        "settFundingRate": rate, "premium": "", "sodUtc0": "", "ts": ms(now),
    }


def _top(exchange: Exchange, inst: Instrument, side: int) -> tuple[str, str]:
    levels = exchange.state.books[inst.inst_id].depth(side, 1)
    if not levels:
        return "", ""
    px, lots, _count = levels[0]
    return px_str(inst, px), sz_str(inst, lots)


def ticker_view(exchange: Exchange, tracker: Tracker, inst: Instrument, now: int) -> dict[str, Any]:
    """``market/ticker``: best bid and ask, last trade (the mark before any trade) and the
    24 h window of trades."""
    window = tracker.trade_window(inst.inst_id, now - DAY_MS)
    trades = window.trades
    mark = exchange.state.mark_ticks[inst.inst_id]
    last_px, last_lots = (trades[-1][1], trades[-1][2]) if trades else (mark, 0)
    high, low = (window.high, window.low) if trades else (last_px, last_px)
    bid_px, bid_sz = _top(exchange, inst, BUY)
    ask_px, ask_sz = _top(exchange, inst, SELL)
    open_px = px_str(inst, trades[0][1] if trades else last_px)
    return {
        "instType": inst.inst_type, "instId": inst.inst_id, "last": px_str(inst, last_px),
        "lastSz": sz_str(inst, last_lots), "askPx": ask_px, "askSz": ask_sz, "bidPx": bid_px,
        "bidSz": bid_sz, "open24h": open_px, "high24h": px_str(inst, high),
        "low24h": px_str(inst, low), "vol24h": sz_str(inst, window.lots),
        "volCcy24h": fmt_decimal(base_volume(inst, window.lots, window.value)), "sodUtc0": open_px,
        "sodUtc8": open_px, "ts": ms(now),
    }


def base_volume(inst: Instrument, lots: int, value_ticks: int) -> Decimal:
    """24 h volume in the contract's currency: linear ctVal·contracts (coin); inverse
    Σ ctVal·contracts / px (coin, approximated with the volume-weighted price)."""
    contracts = inst.lots_to_sz(lots)
    if inst.is_linear:
        return contracts * inst.ct_val
    if value_ticks == 0:
        return Decimal(0)
    vwap = inst.ticks_to_px(value_ticks) / lots
    return (contracts * inst.ct_val / vwap).quantize(Decimal("0.00000001"), rounding=ROUND_HALF_EVEN)


def book_view(exchange: Exchange, inst: Instrument, depth: int, now: int) -> dict[str, Any]:
    """``market/books``: levels ``[px, sz, "0", numOrders]``."""
    book = exchange.state.books[inst.inst_id]

    def levels(side: int) -> list[list[str]]:
        return [[px_str(inst, px), sz_str(inst, lots), "0", str(count)]
                for px, lots, count in book.depth(side, depth)]

    return {"asks": levels(SELL), "bids": levels(BUY), "ts": ms(now)}


FUND_TYPES = ("regular_update", "liquidation_balance_deposit", "bankruptcy_loss",
              "platform_revenue", "adl")


def page_by_ts(items: list[Any], ts_of: Any, before: int | None, after: int | None,
               limit: int) -> list[Any]:
    """OKX ts-cursor paging over ``items`` (oldest first): ``after`` keeps older records
    (ts < after), ``before`` newer ones (ts > before). Returns at most ``limit``, newest first:
    the newest that qualify, or with ``before`` alone the ones just after the cursor (so
    paging forward misses nothing)."""
    chosen = [x for x in items if (after is None or ts_of(x) < after)
              and (before is None or ts_of(x) > before)]
    page = chosen[:limit] if before is not None and after is None else chosen[-limit:]
    return page[::-1]


def fund_detail(fund: Any, record: Any) -> dict[str, Any]:
    """One ``details[]`` row of ``public/insurance-fund``."""
    return {
        "balance": money(record.balance), "amt": money(record.amt), "ccy": fund.ccy,
        "type": record.type, "ts": ms(record.ts), "maxBal": money(record.max_bal),
        "maxBalTs": ms(record.max_bal_ts),
        "decRate": fmt_decimal(round_to(fund.decline_rate(record), Decimal("0.0001"))),
        "adlType": record.adl_type,
    }


def insurance_fund_views(exchange: Exchange, inst_type: str, inst_family: str, limit: int,
                         kind: str = "", before: int | None = None,
                         after: int | None = None) -> list[dict[str, Any]]:
    """``public/insurance-fund``: per fund, ``total`` (its balance now) and a page of its
    records, optionally of one ``type``."""
    state = exchange.state
    out = []
    for fund in state.funds.values():
        if fund.inst_type != inst_type or (inst_family and fund.inst_family != inst_family):
            continue
        records = [r for r in fund.history if not kind or r.type == kind]
        page = page_by_ts(records, lambda r: r.ts, before, after, limit)
        out.append({"total": money(fund_balance(state, fund)),
                    "instType": fund.inst_type, "instFamily": fund.inst_family,
                    "details": [fund_detail(fund, r) for r in page]})
    return out
