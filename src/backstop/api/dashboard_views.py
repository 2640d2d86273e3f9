"""What the dashboard shows, as JSON-ready dicts: insurance funds, open interest, the ADL
queue and indicator distribution, the margin-ratio histogram, and rows built from engine
events (liquidations, ADL closes, fund movements).

Read-only and for display: money goes out as exact decimal strings (the browser parses them
only to draw); ratios are compared exactly as ``Decimal`` against the bucket edges.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Any

from backstop.api.account_views import position_view
from backstop.api.wire import money, ms, px_str, sz_str
from backstop.engine import queries
from backstop.engine.exchange import Exchange
from backstop.model import events as ev

MARGIN_BUCKETS_PCT = (100, 150, 200, 300, 500, 1000)
"""Upper edges (inclusive) of the margin-ratio histogram buckets, in percent; one more
bucket holds everything above the last edge."""
ADL_QUEUE_ROWS = 20
ADL_LEVELS = 6


def margin_bucket_labels() -> list[str]:
    """``≤100%``, ``100–150%``, ..., ``>1000%``."""
    edges = MARGIN_BUCKETS_PCT
    middle = [f"{lo}–{hi}%" for lo, hi in pairwise(edges)]
    return [f"≤{edges[0]}%", *middle, f">{edges[-1]}%"]


def margin_bucket(ratio: Decimal) -> int:
    """The histogram bucket of a margin ratio (1 = 100%)."""
    for index, edge in enumerate(MARGIN_BUCKETS_PCT):
        if ratio * 100 <= edge:
            return index
    return len(MARGIN_BUCKETS_PCT)


def fund_balance(exchange: Exchange, fund: Any) -> int:
    """The fund's ledger balance in 1e-8 units of its currency."""
    return queries.fund_balance(exchange.state, fund)


def fund_summaries(exchange: Exchange, points: dict[str, list[list[Any]]]) -> list[dict[str, Any]]:
    """Every fund with its balance, state and chart points ``[ts, balance]``."""
    return [{"fundId": fund.fund_id, "instType": fund.inst_type, "instFamily": fund.inst_family,
             "ccy": fund.ccy, "balance": money(fund_balance(exchange, fund)),
             "adlState": fund.adl_state, "points": points.get(fund.fund_id, [])}
            for fund in exchange.state.funds.values()]


def open_interest(exchange: Exchange) -> list[dict[str, Any]]:
    """Per instrument with open positions: OI in contracts (the long side) and position count."""
    longs: dict[str, int] = {}
    counts: dict[str, int] = {}
    for pos in exchange.state.positions.values():
        if pos.size_lots:
            longs[pos.inst_id] = longs.get(pos.inst_id, 0) + max(pos.size_lots, 0)
            counts[pos.inst_id] = counts.get(pos.inst_id, 0) + 1
    catalogue = exchange.catalogue
    return [{"instId": inst_id, "oi": sz_str(catalogue.get(inst_id), lots), "positions": counts[inst_id]}
            for inst_id, lots in sorted(longs.items())]


def adl_distribution(exchange: Exchange) -> list[dict[str, Any]]:
    """Per instrument: how many open positions show each ``adl`` indicator 0–5."""
    counts: dict[str, list[int]] = {}
    state = exchange.state
    for pos in state.positions.values():
        if pos.size_lots:
            row = counts.setdefault(pos.inst_id, [0] * ADL_LEVELS)
            row[min(max(queries.adl_indicator(state, pos), 0), ADL_LEVELS - 1)] += 1
    return [{"instId": inst_id, "counts": row} for inst_id, row in sorted(counts.items())]


def adl_queue(exchange: Exchange, now: int, rows: int = ADL_QUEUE_ROWS) -> list[dict[str, Any]]:
    """The positions first in line for ADL: highest indicator first (then largest size).
    The indicator is the engine's (:func:`backstop.engine.queries.adl_indicator`): a
    position not in profit at the mark shows 0 and is not in the queue."""
    state = exchange.state
    indicator = {pos.key: queries.adl_indicator(state, pos) for pos in state.positions.values()}
    ranked = [pos for pos in state.positions.values() if indicator[pos.key]]
    ranked.sort(key=lambda p: (-indicator[p.key], -abs(p.size_lots), p.uid))
    out = []
    for pos in ranked[:rows]:
        view = position_view(exchange, pos, now)
        out.append({"uid": str(pos.uid), "instId": pos.inst_id, "mgnMode": pos.mgn_mode.value,
                    "pos": view["pos"], "adl": view["adl"], "upl": view["upl"],
                    "mgnRatio": view["mgnRatio"], "liqPx": view["liqPx"]})
    return out


def margin_histogram(exchange: Exchange) -> dict[str, Any]:
    """Counts of margin ratios: one per cross account and currency, one per isolated position."""
    state = exchange.state
    counts = [0] * (len(MARGIN_BUCKETS_PCT) + 1)
    for positions in state.account_positions.values():
        units: dict[tuple[str, str], tuple[int, int]] = {}
        for pos in positions.values():
            if pos.size_lots:
                ccy = exchange.catalogue.get(pos.inst_id).settle_ccy
                unit = (pos.inst_id, "") if pos.is_isolated else ("", ccy)
                units.setdefault(unit, queries.unit_equity_and_requirement(state, pos))
        for equity, requirement in units.values():
            ratio = queries.margin_ratio(equity, requirement)
            if ratio is not None:
                counts[margin_bucket(ratio)] += 1
    return {"labels": margin_bucket_labels(), "counts": counts}


def aggregates(exchange: Exchange, now: int) -> dict[str, Any]:
    """The figures recomputed from state on each refresh."""
    return {"openInterest": open_interest(exchange), "adlDistribution": adl_distribution(exchange),
            "adlQueue": adl_queue(exchange, now), "marginHistogram": margin_histogram(exchange),
            "ts": ms(now)}


def fund_event_row(fund: Any, e: ev.InsuranceFundChanged) -> dict[str, Any]:
    """A fund-events table row from a fund movement."""
    family = fund.inst_family if fund is not None else e.fund_id
    return {"ts": ms(e.ts), "fundId": e.fund_id, "instFamily": family, "ccy": e.ccy, "type": e.type,
            "amt": money(e.amt), "balance": money(e.balance), "adlType": e.adl_type}


def adl_state_row(fund: Any, e: ev.AdlStateChanged) -> dict[str, Any]:
    """A fund-events table row from an ADL trigger starting or ending."""
    family = fund.inst_family if fund is not None else e.fund_id
    ccy = fund.ccy if fund is not None else ""
    return {"ts": ms(e.ts), "fundId": e.fund_id, "instFamily": family, "ccy": ccy, "type": e.adl_type,
            "amt": "0", "balance": money(e.balance), "adlType": e.adl_type}


def liquidation_row(exchange: Exchange, e: ev.LiquidationStarted) -> dict[str, Any]:
    """A liquidation-feed row; its money fields are filled in when the slice settles."""
    inst = exchange.catalogue.get(e.inst_id)
    return {"kind": "liquidation", "ts": ms(e.ts), "uid": str(e.uid), "instId": e.inst_id,
            "mgnMode": e.mgn_mode, "sz": sz_str(inst, e.lots), "bkPx": px_str(inst, e.bankruptcy_ticks),
            "markPx": px_str(inst, e.mark_ticks), "category": e.category, "route": e.route,
            "fee": "", "toFund": "", "fromFund": "", "socialized": "", "ccy": inst.settle_ccy}


def settle_row(row: dict[str, Any], e: ev.LiquidationSettled) -> None:
    """Fill in a liquidation row's money once its slice settled."""
    row.update(fee=money(e.fee), toFund=money(e.to_fund), fromFund=money(e.from_fund),
               socialized=money(e.socialized))


def adl_row(exchange: Exchange, e: ev.AutoDeleveraged) -> dict[str, Any]:
    """A liquidation-feed row for a position closed by auto-deleveraging."""
    inst = exchange.catalogue.get(e.inst_id)
    return {"kind": "adl", "ts": ms(e.ts), "uid": str(e.uid), "instId": e.inst_id, "mgnMode": e.mgn_mode,
            "sz": sz_str(inst, e.lots), "px": px_str(inst, e.px_ticks),
            "liquidatedUid": str(e.liquidated_uid), "uplTaken": money(e.upl_taken), "ccy": inst.settle_ccy}


def haircut_row(exchange: Exchange, e: ev.ProfitHaircut) -> dict[str, Any]:
    """A liquidation-feed row for profit taken by an ADL haircut (the position stays open)."""
    inst = exchange.catalogue.get(e.inst_id)
    return {"kind": "haircut", "ts": ms(e.ts), "uid": str(e.uid), "instId": e.inst_id,
            "mgnMode": e.mgn_mode, "amt": money(e.amount), "profit": money(e.profit),
            "liquidatedUid": str(e.liquidated_uid), "ccy": inst.settle_ccy}
