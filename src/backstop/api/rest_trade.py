"""Private trade routes (``/api/v5/trade/*``). An account sees and cancels only its own
orders. Order endpoints answer per item with ``sCode``/``sMsg``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backstop.api import account_views as av
from backstop.api.context import Ctx, ensure_accepted, rejection_of
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
from backstop.api.rest_history import GET_ROUTES as HISTORY_ROUTES
from backstop.api.tracker import OrderRecord, amend_cl_ord_id, is_reserved_cl_ord_id
from backstop.api.wire import OkxError, items_response, ms
from backstop.model.commands import CancelOrder, Command, PlaceOrder
from backstop.model.enums import MarginMode, OrderType, SelfTradeMode, Side
from backstop.model.events import Event, OrderPlaced
from backstop.numeric import NumericError

MAX_CL_ORD_ID = 32


def _check_cl_ord_id(cl_ord_id: str) -> None:
    """Up to 32 letters and digits, not starting with the amendment mark (51000)."""
    if len(cl_ord_id) > MAX_CL_ORD_ID or (not cl_ord_id.isalnum() and cl_ord_id) \
            or is_reserved_cl_ord_id(cl_ord_id):
        raise OkxError("51000", "Parameter clOrdId error")


def _order_command(ctx: Ctx, item: dict[str, Any]) -> PlaceOrder:
    """A :class:`PlaceOrder` from one request item, or :class:`OkxError`."""
    inst = instrument(ctx.catalogue, item)
    if optional(item, "posSide", "net") != "net":
        raise OkxError("51000", "Parameter posSide error")
    ord_type = enum_param(item, "ordType", OrderType)
    cl_ord_id = optional(item, "clOrdId")
    _check_cl_ord_id(cl_ord_id)
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


def _build_items(ctx: Ctx, items: list[dict[str, Any]], build: Build) -> list[Command | OkxError]:
    built: list[Command | OkxError] = []
    for item in items:
        try:
            built.append(build(ctx, item))
        except OkxError as exc:
            built.append(exc)
    return built


async def _submit_built(ctx: Ctx, items: list[dict[str, Any]], built: list[Command | OkxError],
                        answer: Answer) -> list[dict[str, Any]]:
    commands = [b for b in built if not isinstance(b, OkxError)]
    outcomes = iter(await ctx.service.submit_all(commands))
    return [answer(ctx, item, b, None if isinstance(b, OkxError) else next(outcomes))
            for item, b in zip(items, built, strict=True)]


async def _run_items(ctx: Ctx, items: list[dict[str, Any]], build: Build,
                     answer: Answer) -> list[dict[str, Any]]:
    """Validate each item, run the valid ones back to back, and answer per item."""
    return await _submit_built(ctx, items, _build_items(ctx, items, build), answer)


@dataclass
class Prepared:
    """Trading items checked before anything runs (the WebSocket ops answer at once when
    every item is refused): ``refused`` holds the answers then; otherwise :meth:`run`
    submits the valid items."""

    refused: list[dict[str, Any]] | None
    run: Callable[[], Awaitable[list[dict[str, Any]]]]


def prepare(ctx: Ctx, kind: str, items: list[dict[str, Any]]) -> Prepared:
    """``kind``: ``place``, ``cancel`` or ``amend``."""
    if kind == "amend":
        checked = [_amend_check(ctx, item) for item in items]
        refused = checked if all(a is not None for a in checked) else None
        return Prepared(refused, lambda: amend_items(ctx, items))  # type: ignore[arg-type]
    build, answer = ((_capped_orders(), _placed_item) if kind == "place"
                     else (_cancel_command, _cancelled_item))
    built = _build_items(ctx, items, build)
    if all(isinstance(b, OkxError) for b in built):
        return Prepared([answer(ctx, i, b, None) for i, b in zip(items, built, strict=True)],
                        lambda: _submit_built(ctx, items, built, answer))
    return Prepared(None, lambda: _submit_built(ctx, items, built, answer))


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


async def place_items(ctx: Ctx, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Place orders (REST ``order``/``batch-orders``, WS ``order``/``batch-orders``)."""
    return await _run_items(ctx, items, _capped_orders(), _placed_item)


async def place_order(ctx: Ctx):
    return items_response(await place_items(ctx, [json_object(ctx.body)]))


async def batch_orders(ctx: Ctx):
    return items_response(await place_items(ctx, json_list(ctx.body)))


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
    """Cancel the caller's order (the engine order now carrying it, if it was amended); an
    unknown or foreign order becomes ord_id 0, which the engine refuses like any order that
    is not open."""
    inst = instrument(ctx.catalogue, item)
    order = _own_order(ctx, item)
    return CancelOrder(0, ctx.uid, inst.inst_id, order.live_ord_id if order is not None else 0)


def _cancelled_item(ctx: Ctx, item: dict[str, Any], built: Command | OkxError,
                    events: list[Event] | None) -> dict[str, Any]:
    if isinstance(built, OkxError) or events is None:
        return _cancel_item(item, str(item.get("ordId", "")), built.code, built.msg, ctx.now)  # type: ignore[union-attr]
    rejected = rejection_of(events)
    code, msg = (rejected.code, rejected.msg) if rejected else ("0", "")
    engine_id = built.ord_id  # type: ignore[union-attr]
    ord_id = ctx.service.tracker.aliases.get(engine_id, engine_id) or item.get("ordId", "")
    return _cancel_item(item, str(ord_id), code, msg, ctx.now)


def _cancel_item(item: dict[str, Any], ord_id: str, code: str, msg: str, now: int) -> dict[str, Any]:
    return {"ordId": ord_id, "clOrdId": str(item.get("clOrdId", "")), "ts": ms(now), "sCode": code,
            "sMsg": msg}


async def cancel_items(ctx: Ctx, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cancel orders (REST and WS)."""
    return await _run_items(ctx, items, _cancel_command, _cancelled_item)


async def cancel_order(ctx: Ctx):
    return items_response(await cancel_items(ctx, [json_object(ctx.body)]))


async def cancel_batch_orders(ctx: Ctx):
    return items_response(await cancel_items(ctx, json_list(ctx.body)))


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


def _amend_error(order: OrderRecord | None, inst_id: str) -> OkxError | None:
    """Why an order cannot be amended, with OKX's code, or ``None``."""
    if order is None or order.inst_id != inst_id:
        return OkxError("51503", "Order modification failed as the order does not exist")
    if order.state == "filled":
        return OkxError("51510", "Modification failed as the order has been completed")
    if order.state == "canceled":
        return OkxError("51509", "Modification failed as the order has been canceled")
    if order.is_forced or order.ord_type not in _AMENDABLE:
        return OkxError("51506", "Order modification unavailable for the order type")
    return None


_AMENDABLE = ("limit", "post_only", "fok", "ioc")


def _amend_target(ctx: Ctx, item: dict[str, Any]) -> tuple[OrderRecord, int, int]:
    """The order and its new ``(px_ticks, total lots)``, or :class:`OkxError`."""
    inst = instrument(ctx.catalogue, item)
    order = _own_order(ctx, item)
    refused = _amend_error(order, inst.inst_id)
    if refused is not None:
        raise refused
    assert order is not None
    new_sz, new_px = optional(item, "newSz"), optional(item, "newPx")
    if not new_sz and not new_px:
        raise OkxError("51500", "Either order price or amount is required")
    try:
        lots = inst.sz_to_lots(decimal_param(item, "newSz")) if new_sz else order.sz_lots
        ticks = inst.px_to_ticks(decimal_param(item, "newPx")) if new_px else order.px_ticks
    except NumericError as exc:
        raise OkxError("51000", "Parameter newSz or newPx error") from exc
    if lots <= order.filled_lots:
        raise OkxError("51000", "Parameter newSz error: it must exceed the filled size")
    if ticks <= 0:
        raise OkxError("51000", "Parameter newPx error")
    return order, ticks, lots


def _replacement(ctx: Ctx, order: OrderRecord, ticks: int, lots: int) -> PlaceOrder:
    inst = ctx.catalogue.get(order.inst_id)
    return PlaceOrder(0, ctx.uid, order.inst_id, Side(order.side), OrderType(order.ord_type),
                      inst.lots_to_sz(lots - order.filled_lots), inst.ticks_to_px(ticks),
                      MarginMode(order.td_mode), order.reduce_only,
                      amend_cl_ord_id(order.ord_id))


def _amend_check(ctx: Ctx, item: dict[str, Any]) -> dict[str, Any] | None:
    """The refusal of an amendment that cannot run, or ``None``."""
    try:
        _amend_target(ctx, item)
        bool_param(item, "cxlOnFail")
    except OkxError as exc:
        return _amend_item(str(item.get("ordId", "")), item, str(item.get("reqId", "")), exc.code, exc.msg,
                           ctx.now)
    return None


async def _amend_one(ctx: Ctx, item: dict[str, Any]) -> dict[str, Any]:
    """OKX ``amend-order`` as one serialized step: cancel the engine order and place its
    replacement back to back, the public ``ordId`` kept. If the replacement is refused, the
    original is put back (unless ``cxlOnFail``), and the refusal is answered."""
    req_id = str(item.get("reqId", ""))
    try:
        order, ticks, lots = _amend_target(ctx, item)
        cancel_on_fail = bool_param(item, "cxlOnFail")
    except OkxError as exc:
        return _amend_item(str(item.get("ordId", "")), item, req_id, exc.code, exc.msg, ctx.now)
    tracker = ctx.service.tracker
    tracker.expect_amend(order.live_ord_id)
    cancel = CancelOrder(0, ctx.uid, order.inst_id, order.live_ord_id)
    cancelled, placed = await ctx.service.submit_all([cancel, _replacement(ctx, order, ticks, lots)])
    refused = rejection_of(cancelled)
    if refused is not None:  # it filled or left the book since it was read
        tracker.amending.discard(cancel.ord_id)
        error = _amend_error(order, order.inst_id) or OkxError("51503", refused.msg)
        return _amend_item(str(order.ord_id), item, req_id, error.code, error.msg, ctx.now)
    refused = rejection_of(placed)
    if refused is None:
        return _amend_item(str(order.ord_id), item, req_id, "0", "", ctx.now)
    restored = None if cancel_on_fail else rejection_of(
        await ctx.service.submit(_replacement(ctx, order, order.px_ticks, order.sz_lots)))
    if cancel_on_fail or restored is not None:
        tracker.amend_failed(order.ord_id, ctx.service.now_ms())
    code = "51502" if refused.code == "51008" else refused.code
    return _amend_item(str(order.ord_id), item, req_id, code, refused.msg, ctx.now)


def _amend_item(ord_id: str, item: dict[str, Any], req_id: str, code: str, msg: str,
                now: int) -> dict[str, Any]:
    return {"ordId": ord_id, "clOrdId": str(item.get("clOrdId", "")), "ts": ms(now), "reqId": req_id,
            "sCode": code, "sMsg": msg}


async def amend_items(ctx: Ctx, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Amend orders one after another (REST and WS)."""
    return [await _amend_one(ctx, item) for item in items]


async def amend_order(ctx: Ctx):
    return items_response(await amend_items(ctx, [json_object(ctx.body)]))


async def amend_batch_orders(ctx: Ctx):
    return items_response(await amend_items(ctx, json_list(ctx.body)))


async def close_position(ctx: Ctx) -> Any:
    """OKX ``close-position``: the whole position at market, reduce-only. ``autoCxl`` cancels
    the account's open orders on the instrument first; without it, an open reduce-only
    order refuses the close (51115)."""
    body = json_object(ctx.body)
    inst = instrument(ctx.catalogue, body)
    mode = enum_param(body, "mgnMode", MarginMode)
    if optional(body, "posSide", "net") != "net":
        raise OkxError("51000", "Parameter posSide error")
    cl_ord_id = optional(body, "clOrdId")
    _check_cl_ord_id(cl_ord_id)
    lots = ctx.service.tracker.position_lots.get((ctx.uid, inst.inst_id, mode.value), 0)
    if not lots:
        raise OkxError("51023", "Position does not exist")
    pending = [o for o in ctx.service.tracker.account_orders(ctx.uid)
               if o.inst_id == inst.inst_id and o.state in ("live", "partially_filled")]
    if bool_param(body, "autoCxl"):
        await ctx.service.submit_all([CancelOrder(0, ctx.uid, inst.inst_id, o.live_ord_id) for o in pending])
    elif any(o.reduce_only for o in pending):
        raise OkxError("51115", "Cancel all pending close-orders before liquidation")
    close = PlaceOrder(0, ctx.uid, inst.inst_id, Side.SELL if lots > 0 else Side.BUY, OrderType.MARKET,
                       inst.lots_to_sz(abs(lots)), None, mode, True, cl_ord_id)
    ensure_accepted(await ctx.service.submit(close))
    return [{"instId": inst.inst_id, "posSide": "net", "clOrdId": cl_ord_id, "tag": optional(body, "tag")}]


GET_ROUTES = {
    "trade/order": get_order,
    "trade/orders-pending": orders_pending,
    **{path: handler for path, handler in HISTORY_ROUTES.items() if path.startswith("trade/")},
}
POST_ITEM_ROUTES = {
    "trade/order": place_order,
    "trade/batch-orders": batch_orders,
    "trade/cancel-order": cancel_order,
    "trade/cancel-batch-orders": cancel_batch_orders,
    "trade/amend-order": amend_order,
    "trade/amend-batch-orders": amend_batch_orders,
    "trade/close-position": close_position,
}
"""Routes that build their own per-item response."""
