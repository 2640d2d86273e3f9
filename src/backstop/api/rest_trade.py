"""Private trade routes (``/api/v5/trade/*``). An account sees and cancels only its own
orders. Order endpoints answer per item with ``sCode``/``sMsg``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backstop.api import account_views as av
from backstop.api.context import Ctx, rejection_of
from backstop.api.limits import ensure_open_order_room
from backstop.api.params import (
    bool_param,
    decimal_param,
    enum_param,
    instrument,
    int_param,
    json_list,
    json_object,
    limit_param,
    optional,
)
from backstop.api.tracker import OrderRecord
from backstop.api.wire import OkxError, items_response, ms
from backstop.model.commands import CancelOrder, Command, PlaceOrder
from backstop.model.enums import MarginMode, OrderType, SelfTradeMode, Side
from backstop.model.events import Event, OrderPlaced

MAX_CL_ORD_ID = 32


def _order_command(ctx: Ctx, item: dict[str, Any]) -> PlaceOrder:
    """A :class:`PlaceOrder` from one request item, or :class:`OkxError`."""
    inst = instrument(ctx.catalogue, item)
    if optional(item, "posSide", "net") != "net":
        raise OkxError("51000", "Parameter posSide error")
    ord_type = enum_param(item, "ordType", OrderType)
    cl_ord_id = optional(item, "clOrdId")
    if len(cl_ord_id) > MAX_CL_ORD_ID or (not cl_ord_id.isalnum() and cl_ord_id):
        raise OkxError("51000", "Parameter clOrdId error")
    live = ctx.service.tracker.order_by_client_id(ctx.uid, cl_ord_id) if cl_ord_id else None
    if live is not None and live.state in ("live", "partially_filled"):
        raise OkxError("51016", "Duplicated clOrdId")
    return PlaceOrder(
        ts=0, uid=ctx.uid, inst_id=inst.inst_id, side=enum_param(item, "side", Side),
        ord_type=ord_type, sz=decimal_param(item, "sz"),
        px=None if ord_type is OrderType.MARKET else decimal_param(item, "px"),
        td_mode=enum_param(item, "tdMode", MarginMode), reduce_only=bool_param(item, "reduceOnly"),
        cl_ord_id=cl_ord_id,
        stp_mode=enum_param(item, "stpMode", SelfTradeMode, SelfTradeMode.CANCEL_MAKER))


def _order_item(ord_id: str, item: dict[str, Any], code: str, msg: str, now: int) -> dict[str, Any]:
    return {"ordId": ord_id, "clOrdId": str(item.get("clOrdId", "")), "tag": str(item.get("tag", "")),
            "ts": ms(now), "sCode": code, "sMsg": msg}


Build = Callable[[Ctx, dict[str, Any]], Command]
Answer = Callable[[Ctx, dict[str, Any], Command | OkxError, list[Event] | None], dict[str, Any]]


async def _run_items(ctx: Ctx, items: list[dict[str, Any]], build: Build,
                     answer: Answer) -> list[dict[str, Any]]:
    """Validate each item, run the valid ones back to back, and answer per item."""
    built: list[Command | OkxError] = []
    for item in items:
        try:
            built.append(build(ctx, item))
        except OkxError as exc:
            built.append(exc)
    commands = [b for b in built if not isinstance(b, OkxError)]
    outcomes = iter(await ctx.service.submit_all(commands))
    return [answer(ctx, item, b, None if isinstance(b, OkxError) else next(outcomes))
            for item, b in zip(items, built, strict=True)]


def _placed_item(ctx: Ctx, item: dict[str, Any], built: Command | OkxError,
                 events: list[Event] | None) -> dict[str, Any]:
    if isinstance(built, OkxError) or events is None:
        return _order_item("", item, built.code, built.msg, ctx.now)  # type: ignore[union-attr]
    rejected = rejection_of(events)
    if rejected is not None:
        return _order_item("", item, rejected.code, rejected.msg, ctx.now)
    placed = next(e for e in events if isinstance(e, OrderPlaced))
    return _order_item(str(placed.ord_id), item, "0", "Order placed", placed.ts)


def _capped_orders() -> Build:
    """:func:`_order_command` with the open-order cap (:mod:`backstop.api.limits`): the
    account's open orders in the engine state plus the resting orders already accepted
    earlier in the same request."""
    accepted = 0

    def build(ctx: Ctx, item: dict[str, Any]) -> PlaceOrder:
        nonlocal accepted
        command = _order_command(ctx, item)
        if command.ord_type is not OrderType.MARKET:
            open_now = len(ctx.exchange.state.open_orders.get(ctx.uid, {}))
            ensure_open_order_room(open_now + accepted, ctx.limits.max_open_orders)
            accepted += 1
        return command
    return build


async def place_order(ctx: Ctx):
    return items_response(await _run_items(ctx, [json_object(ctx.body)], _capped_orders(), _placed_item))


async def batch_orders(ctx: Ctx):
    return items_response(await _run_items(ctx, json_list(ctx.body), _capped_orders(), _placed_item))


def _own_order(ctx: Ctx, item: dict[str, Any]) -> OrderRecord | None:
    """The caller's order named by ``ordId`` or ``clOrdId`` (another account's is invisible)."""
    ord_id = int_param(item, "ordId")
    cl_ord_id = optional(item, "clOrdId")
    if ord_id is None and not cl_ord_id:
        raise OkxError("50014", "Parameter ordId can not be empty")
    tracker = ctx.service.tracker
    if ord_id is not None:
        order = tracker.orders.get(ord_id)
    else:
        order = tracker.order_by_client_id(ctx.uid, cl_ord_id)
    return order if order is not None and order.uid == ctx.uid else None


def _cancel_command(ctx: Ctx, item: dict[str, Any]) -> CancelOrder:
    """Cancel the caller's order; an unknown or foreign order becomes ord_id 0, which the
    engine refuses (51400) like any order that is not open."""
    inst = instrument(ctx.catalogue, item)
    order = _own_order(ctx, item)
    return CancelOrder(0, ctx.uid, inst.inst_id, order.ord_id if order is not None else 0)


def _cancelled_item(ctx: Ctx, item: dict[str, Any], built: Command | OkxError,
                    events: list[Event] | None) -> dict[str, Any]:
    if isinstance(built, OkxError) or events is None:
        return _cancel_item(item, str(item.get("ordId", "")), built.code, built.msg, ctx.now)  # type: ignore[union-attr]
    rejected = rejection_of(events)
    code, msg = (rejected.code, rejected.msg) if rejected else ("0", "")
    ord_id = built.ord_id or item.get("ordId", "")  # type: ignore[union-attr]
    return _cancel_item(item, str(ord_id), code, msg, ctx.now)


def _cancel_item(item: dict[str, Any], ord_id: str, code: str, msg: str, now: int) -> dict[str, Any]:
    return {"ordId": ord_id, "clOrdId": str(item.get("clOrdId", "")), "ts": ms(now), "sCode": code,
            "sMsg": msg}


async def cancel_order(ctx: Ctx):
    return items_response(await _run_items(ctx, [json_object(ctx.body)], _cancel_command, _cancelled_item))


async def cancel_batch_orders(ctx: Ctx):
    return items_response(await _run_items(ctx, json_list(ctx.body), _cancel_command, _cancelled_item))


async def get_order(ctx: Ctx) -> list[Any]:
    inst = instrument(ctx.catalogue, ctx.query)
    order = _own_order(ctx, ctx.query)
    if order is None or order.inst_id != inst.inst_id:
        raise OkxError("51603", "Order does not exist")
    return [av.order_view(ctx.exchange, order)]


def _listed(ctx: Ctx, states: tuple[str, ...]) -> list[Any]:
    """The caller's orders in ``states``, newest first, filtered by ``instType``, ``instId``,
    ``ordType``, ``state`` and the ``after``/``before`` ordId cursors."""
    query = ctx.query
    inst_type, inst_id, ord_type = (optional(query, n) for n in ("instType", "instId", "ordType"))
    state = optional(query, "state")
    after, before = int_param(query, "after"), int_param(query, "before")
    limit = limit_param(query)
    out = []
    for order in ctx.service.tracker.account_orders(ctx.uid):
        if (order.state not in states or (state and order.state != state)
                or (inst_id and order.inst_id != inst_id) or (inst_type and inst_type != "SWAP")
                or (ord_type and order.ord_type != ord_type)
                or (after is not None and order.ord_id >= after)
                or (before is not None and order.ord_id <= before)):
            continue
        out.append(av.order_view(ctx.exchange, order))
        if len(out) == limit:
            break
    return out


async def orders_pending(ctx: Ctx) -> list[Any]:
    return _listed(ctx, ("live", "partially_filled"))


async def orders_history(ctx: Ctx) -> list[Any]:
    return _listed(ctx, ("filled", "canceled"))


async def fills(ctx: Ctx) -> list[Any]:
    inst_id = optional(ctx.query, "instId")
    ord_id = int_param(ctx.query, "ordId")
    limit = limit_param(ctx.query)
    out = []
    for fill in ctx.service.tracker.account_fills(ctx.uid):
        if (inst_id and fill.inst_id != inst_id) or (ord_id is not None and fill.ord_id != ord_id):
            continue
        out.append(av.fill_view(ctx.exchange, fill))
        if len(out) == limit:
            break
    return out


GET_ROUTES = {
    "trade/order": get_order,
    "trade/orders-pending": orders_pending,
    "trade/orders-history": orders_history,
    "trade/fills": fills,
}
POST_ITEM_ROUTES = {
    "trade/order": place_order,
    "trade/batch-orders": batch_orders,
    "trade/cancel-order": cancel_order,
    "trade/cancel-batch-orders": cancel_batch_orders,
}
"""Routes that build their own per-item response."""
