"""Private history routes: ``trade/orders-history`` (and ``-archive``), ``trade/fills`` and
``fills-history``, ``account/bills`` (and ``-archive``) and ``account/positions-history``.

Everything is built from engine events by the tracker (so it survives a restart, which
replays the log). Paging is OKX's: ``after`` returns records older than the cursor, ``before``
newer ones, newest first, at most ``limit`` (100); ``begin``/``end`` bound the time (ms).
Orders page by ``ordId``, fills and bills by ``billId``, position histories by ``uTime``. The
recent endpoints cover OKX's windows (orders and bills 7 days, fills 3 days); the archives
3 months.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from backstop.api import account_views as av
from backstop.api.context import Ctx
from backstop.api.history import fill_bill_codes
from backstop.api.market_data_views import page
from backstop.api.params import int_param, limit_param, optional, required
from backstop.api.wire import OkxError

T = TypeVar("T")
DAY_MS = 86_400_000
WINDOWS_MS = {"orders": 7 * DAY_MS, "fills": 3 * DAY_MS, "bills": 7 * DAY_MS, "archive": 92 * DAY_MS}
INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")


def _inst_type(ctx: Ctx, needed: bool) -> str:
    """``instType``: required where OKX requires it; only ``SWAP`` has records here."""
    inst_type = required(ctx.query, "instType") if needed else optional(ctx.query, "instType")
    if inst_type and inst_type not in INST_TYPES:
        raise OkxError("51000", "Parameter instType error")
    return inst_type


def _time_bounds(ctx: Ctx, window: str) -> tuple[int, int]:
    """``[begin, end]`` in ms, within the endpoint's window behind now."""
    begin = max(int_param(ctx.query, "begin") or 0, ctx.now - WINDOWS_MS[window])
    end = int_param(ctx.query, "end")
    return begin, end if end is not None else ctx.now + DAY_MS


def page_by_position(items: Sequence[T], id_of: Callable[[T], int], after: int | None,
                     before: int | None, limit: int) -> list[T]:
    """OKX id paging over ``items`` (oldest first) where ids need not rise with time (ADL
    orders carry ids of their own): a cursor is found by position; an unknown cursor
    compares by value."""
    def cut(cursor: int | None, older: bool) -> tuple[int, int]:
        if cursor is None:
            return (0, len(items))
        at = next((i for i, x in enumerate(items) if id_of(x) == cursor), None)
        if at is None:
            at = sum(1 for x in items if id_of(x) < cursor)
            return (0, at) if older else (at, len(items))
        return (0, at) if older else (at + 1, len(items))
    lo_after, hi_after = cut(after, True)
    lo_before, hi_before = cut(before, False)
    indices = range(max(lo_after, lo_before), min(hi_after, hi_before))
    chosen = [items[i] for i in indices]
    picked = chosen[:limit] if before is not None and after is None else chosen[-limit:]
    return picked[::-1]


def _orders(ctx: Ctx, window: str) -> list[Any]:
    """Finished orders (``filled``, ``canceled``), filtered by ``instId``, ``ordType``,
    ``state`` and ``category``."""
    inst_type = _inst_type(ctx, needed=True)
    inst_id, ord_type = optional(ctx.query, "instId"), optional(ctx.query, "ordType")
    state, category = optional(ctx.query, "state"), optional(ctx.query, "category")
    if state not in ("", "filled", "canceled"):
        raise OkxError("51000", "Parameter state error")
    begin, end = _time_bounds(ctx, window)
    limit = limit_param(ctx.query)
    if inst_type != "SWAP":
        return []
    chosen = [o for o in reversed(ctx.service.tracker.account_orders(ctx.uid))
              if o.state in ("filled", "canceled") and (not state or o.state == state)
              and (not inst_id or o.inst_id == inst_id) and (not category or o.category == category)
              and (not ord_type or ("market" if o.is_forced else o.ord_type) == ord_type)
              and begin <= o.c_time <= end]
    found = page_by_position(chosen, lambda o: o.ord_id, int_param(ctx.query, "after"),
                             int_param(ctx.query, "before"), limit)
    return [av.order_view(ctx.exchange, o) for o in found]


async def orders_history(ctx: Ctx) -> list[Any]:
    return _orders(ctx, "orders")


async def orders_history_archive(ctx: Ctx) -> list[Any]:
    return _orders(ctx, "archive")


def _fills(ctx: Ctx, window: str, needs_type: bool) -> list[Any]:
    inst_type = _inst_type(ctx, needs_type)
    inst_id, sub_type = optional(ctx.query, "instId"), optional(ctx.query, "subType")
    ord_id = int_param(ctx.query, "ordId")
    begin, end = _time_bounds(ctx, window)
    limit = limit_param(ctx.query)
    if inst_type not in ("", "SWAP"):
        return []
    chosen = [f for f in reversed(ctx.service.tracker.account_fills(ctx.uid))
              if (not inst_id or f.inst_id == inst_id) and (ord_id is None or f.ord_id == ord_id)
              and (not sub_type or fill_bill_codes(f)[1] == sub_type) and begin <= f.ts <= end]
    found = page(chosen, lambda f: f.bill_id, int_param(ctx.query, "after"), int_param(ctx.query, "before"),
                 limit)
    return [av.fill_view(ctx.exchange, f) for f in found]


async def fills(ctx: Ctx) -> list[Any]:
    return _fills(ctx, "fills", needs_type=False)


async def fills_history(ctx: Ctx) -> list[Any]:
    return _fills(ctx, "archive", needs_type=True)


def _bills(ctx: Ctx, window: str) -> list[Any]:
    """Bills filtered by ``instType``, ``instId``, ``ccy``, ``mgnMode``, ``type``,
    ``subType``; ``bal`` is each bill's balance after it."""
    inst_type = _inst_type(ctx, needed=False)
    query = ctx.query
    wanted = {name: optional(query, name) for name in ("instId", "ccy", "mgnMode", "type", "subType")}
    begin, end = _time_bounds(ctx, window)
    limit = limit_param(query)
    catalogue = ctx.catalogue

    def ccy_of(ccy: str, inst_id: str) -> str:
        inst = catalogue.get(inst_id) if inst_id else None
        return inst.settle_ccy if inst is not None else ccy

    history = ctx.service.tracker.history
    balances = history.balances(ctx.uid, ccy_of)
    chosen = [b for b in history.account_bills(ctx.uid)
              if (not wanted["instId"] or b.inst_id == wanted["instId"])
              and (not wanted["ccy"] or ccy_of(b.ccy, b.inst_id) == wanted["ccy"])
              and (not wanted["mgnMode"] or b.mgn_mode == wanted["mgnMode"])
              and (not wanted["type"] or b.type == wanted["type"])
              and (not wanted["subType"] or b.sub_type == wanted["subType"])
              and (not inst_type or (b.inst_id and inst_type == "SWAP"))
              and begin <= b.ts <= end]
    found = page(chosen, lambda b: b.bill_id, int_param(query, "after"), int_param(query, "before"), limit)
    return [av.bill_view(ctx.exchange, b, balances[b.bill_id]) for b in found]


async def bills(ctx: Ctx) -> list[Any]:
    return _bills(ctx, "bills")


async def bills_archive(ctx: Ctx) -> list[Any]:
    return _bills(ctx, "archive")


async def positions_history(ctx: Ctx) -> list[Any]:
    """Closed (or partly closed) positions, latest close first, paged by ``uTime``,
    filtered by ``instType``, ``instId``, ``mgnMode``, ``type`` and ``posId``."""
    inst_type = _inst_type(ctx, needed=False)
    query = ctx.query
    inst_id, mode, kind = optional(query, "instId"), optional(query, "mgnMode"), optional(query, "type")
    pos_id = optional(query, "posId")
    if mode not in ("", "cross", "isolated"):
        raise OkxError("51000", "Parameter mgnMode error")
    limit = limit_param(query)
    if inst_type not in ("", "SWAP"):
        return []
    chosen = [r for r in reversed(ctx.service.tracker.history.closed_positions(ctx.uid))
              if (not inst_id or r.inst_id == inst_id) and (not mode or r.mgn_mode == mode)
              and (not kind or r.type == kind) and (not pos_id or str(r.pos_id) == pos_id)]
    found = page(chosen, lambda r: r.u_time, int_param(query, "after"), int_param(query, "before"), limit)
    return [av.position_history_view(ctx.exchange, r) for r in found]


GET_ROUTES = {
    "trade/orders-history": orders_history,
    "trade/orders-history-archive": orders_history_archive,
    "trade/fills": fills,
    "trade/fills-history": fills_history,
    "account/bills": bills,
    "account/bills-archive": bills_archive,
    "account/positions-history": positions_history,
}
