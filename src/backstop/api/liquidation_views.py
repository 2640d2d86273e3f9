"""OKX views of the liquidation side, built from engine events (through the tracker) and the
funds' state: legacy ``public/liquidation-orders`` rows, the ``liquidation-orders`` and
``adl-warning`` WebSocket pushes. Prices from ticks, sizes from lots, money from 1e-8 units."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from backstop.api.market_views import page_by_ts
from backstop.api.tracker import LiquidationRecord, Tracker
from backstop.api.wire import money, ms, px_str, sz_str
from backstop.engine.exchange import Exchange
from backstop.engine.queries import fund_balance
from backstop.model.catalogue import Catalogue
from backstop.numeric import fmt_decimal, round_to

WARNING_SHARE = Decimal("0.5")
"""A fund is in ``warning`` once it is down from its trailing peak by more than this share of
the ADL decline trigger (e.g. 15% when ADL starts at 30%)."""


def liquidation_detail(catalogue: Catalogue, record: LiquidationRecord) -> dict[str, Any]:
    """One ``details[]`` row: side, posSide, bkPx, sz, bkLoss, ccy, ts."""
    inst = catalogue.get(record.inst_id)
    return {"side": record.side, "posSide": record.pos_side,
            "bkPx": px_str(inst, record.bk_px_ticks), "sz": sz_str(inst, record.lots),
            "bkLoss": money(record.bk_loss), "ccy": inst.settle_ccy, "ts": ms(record.ts)}


def liquidation_push(catalogue: Catalogue, record: LiquidationRecord) -> dict[str, Any]:
    """The ``liquidation-orders`` channel's data item for one record."""
    inst = catalogue.get(record.inst_id)
    return {"instType": inst.inst_type, "instId": inst.inst_id, "instFamily": inst.inst_family,
            "uly": inst.inst_family, "details": [liquidation_detail(catalogue, record)]}


def liquidation_order_views(catalogue: Catalogue, tracker: Tracker, inst_type: str, family: str,
                            inst_id: str, mode: str, limit: int, before: int | None,
                            after: int | None) -> list[dict[str, Any]]:
    """``public/liquidation-orders``: one item per family, ``details`` newest first."""
    by_family: dict[str, list[LiquidationRecord]] = {}
    for record in tracker.liquidations:
        inst = catalogue.get(record.inst_id)
        if inst is None or inst.inst_type != inst_type or (family and inst.inst_family != family) \
                or (inst_id and record.inst_id != inst_id) or (mode and record.mgn_mode != mode):
            continue
        by_family.setdefault(inst.inst_family, []).append(record)
    out = []
    for fam in sorted(by_family):
        page = page_by_ts(by_family[fam], lambda r: r.ts, before, after, limit)
        out.append({"instType": inst_type, "instFamily": fam, "uly": fam, "instId": inst_id,
                    "totalLoss": money(sum(r.bk_loss for r in page)),
                    "details": [liquidation_detail(catalogue, r) for r in page]})
    return out


def adl_warning_views(exchange: Exchange, now: int,
                      fund_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """Each fund's ``adl-warning`` state: ``adl`` while in ADL mode, ``warning`` when its
    decline from the trailing peak passes :data:`WARNING_SHARE` of the trigger, else
    ``normal``."""
    state, share = exchange.state, exchange.config.adl.decline_share
    out = []
    for fund in state.funds.values():
        if fund_ids is not None and fund.fund_id not in fund_ids:
            continue
        balance = fund_balance(state, fund)
        peak, peak_ts = fund.peak(now)
        rate = Decimal(peak - balance) / Decimal(peak) if peak > 0 else Decimal(0)
        level = "adl" if fund.adl_state else "warning" if rate > share * WARNING_SHARE else "normal"
        out.append({"instType": fund.inst_type, "instFamily": fund.inst_family, "state": level,
                    "bal": money(balance), "maxBal": money(peak), "maxBalTs": ms(peak_ts),
                    "decRate": fmt_decimal(round_to(max(rate, Decimal(0)), Decimal("0.0001"))),
                    "adlRecBal": "", "adlType": fund.adl_state, "ccy": fund.ccy, "ts": ms(now)})
    return out
