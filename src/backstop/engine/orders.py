"""Placing and cancelling orders: validate → plan the match → check margin → apply.

Nothing changes until every check has passed; a refusal is a :class:`Rejected` event carrying
OKX's code.
"""

from __future__ import annotations

from dataclasses import dataclass

from backstop.engine.settlement import apply_fill, calculate_fee
from backstop.engine.validation import parse_lots, parse_ticks
from backstop.math.margin import calculate_initial_margin, find_tier
from backstop.math.values import calculate_fill_value, calculate_notional
from backstop.model import errors
from backstop.model.commands import CancelOrder, PlaceOrder
from backstop.model.enums import MarginMode, OrderType, SelfTradeMode
from backstop.model.errors import Rejection
from backstop.model.events import Event, Filled, OrderCancelled, OrderPlaced, Rejected
from backstop.model.instrument import Instrument
from backstop.numeric import PPM, div_floor
from backstop.state.book import MatchPlan, OrderBook, RestingOrder
from backstop.state.exchange_state import ExchangeState, OrderInfo
from backstop.engine.queries import cross_figures, lever_cents

_STP = {SelfTradeMode.CANCEL_MAKER: 0, SelfTradeMode.CANCEL_TAKER: 1, SelfTradeMode.CANCEL_BOTH: 2}
_RESTING_TYPES = (OrderType.LIMIT, OrderType.POST_ONLY)


@dataclass(slots=True)
class OrderContext:
    """A validated order on its way through the stages."""

    cmd: PlaceOrder
    inst: Instrument
    book: OrderBook
    side: int
    lots: int
    px_ticks: int | None
    lever: int
    position_lots: int


def place_order(state: ExchangeState, cmd: PlaceOrder) -> list[Event]:
    """OKX ``trade/order``; returns the events, or one :class:`Rejected`."""
    ctx = _validate(state, cmd)
    if isinstance(ctx, Rejection):
        return [_rejected(cmd, ctx)]
    plan = _plan(ctx)
    if plan is None or (cmd.ord_type is OrderType.FOK and plan.filled_lots < ctx.lots):
        return _placed_then_cancelled(state, ctx, "post_only" if plan is None else "fok")
    margin = _check_margin(state, ctx, plan)
    if isinstance(margin, Rejection):
        return [_rejected(cmd, margin)]
    return _apply(state, ctx, plan, rest_frozen=margin)


def cancel_order(state: ExchangeState, cmd: CancelOrder) -> list[Event]:
    """OKX ``trade/cancel-order``: only the owner's live order on that instrument (51400)."""
    info = state.open_orders.get(cmd.uid, {}).get(cmd.ord_id)
    if info is None or info.inst_id != cmd.inst_id:
        return [_rejected(cmd, errors.reject(
            errors.CANCEL_FAILED,
            "Cancellation failed as the order has been filled, canceled or does not exist"))]
    resting = state.books[cmd.inst_id].cancel(cmd.ord_id)
    assert resting is not None, "open order missing from its book"
    return [apply_remove_order(state, info, resting.remaining, cmd.ts, "user")]


def apply_remove_order(state: ExchangeState, info: OrderInfo, remaining: int, ts: int,
                       reason: str) -> OrderCancelled:
    """Forget an order already taken out of its book; release all its frozen margin."""
    _release_frozen(state, info, info.frozen)
    del state.open_orders[info.uid][info.ord_id]
    return OrderCancelled(ts, info.ord_id, info.uid, info.inst_id, remaining, reason)


def _validate(state: ExchangeState, cmd: PlaceOrder) -> OrderContext | Rejection:
    inst = state.catalogue.get(cmd.inst_id)
    if inst is None:
        return errors.reject(errors.NO_SUCH_INSTRUMENT, "Instrument ID does not exist")
    lots = parse_lots(inst, cmd.sz)
    if isinstance(lots, Rejection):
        return lots
    px: int | Rejection | None = None
    if cmd.ord_type is not OrderType.MARKET:
        px = parse_ticks(inst, cmd.px)
        if isinstance(px, Rejection):
            return px
    side = cmd.side.sign
    pos = state.existing_position(cmd.uid, inst.inst_id, cmd.td_mode)
    pos_lots = pos.size_lots if pos else 0
    if cmd.reduce_only and (pos_lots * side >= 0 or lots > abs(pos_lots)):
        return errors.reject(errors.REDUCE_ONLY_INVALID,
                             "Reduce-only order exceeds the position it would reduce")
    lever = lever_cents(state, cmd.uid, inst, cmd.td_mode)
    tier = find_tier(inst.tiers, max(abs(pos_lots), abs(pos_lots + side * lots)))
    if tier is None or lever > tier.max_lever * 100:
        return errors.reject(errors.OVER_TIER_LIMIT,
                             "Order amount exceeds the current tier limit for this leverage")
    return OrderContext(cmd, inst, state.books[inst.inst_id], side, lots, px, lever, pos_lots)


def _plan(ctx: OrderContext) -> MatchPlan | None:
    """The match a taker would make; ``None`` for a post-only order that would take."""
    if ctx.cmd.ord_type is OrderType.POST_ONLY:
        if ctx.book.would_cross(ctx.side, ctx.px_ticks):  # type: ignore[arg-type]
            return None
        return MatchPlan()
    return ctx.book.plan_match(ctx.side, ctx.px_ticks, ctx.lots, ctx.cmd.uid,
                               _STP[ctx.cmd.stp_mode])


def _opening_lots(position_lots: int, side: int, lots: int) -> int:
    """Lots of a trade that open new exposure (net mode) rather than close."""
    if position_lots * side >= 0:
        return lots
    return max(0, lots - abs(position_lots))


def _check_margin(state: ExchangeState, ctx: OrderContext, plan: MatchPlan) -> int | Rejection:
    """Available ≥ IM of the new exposure + taker fees. Returns the IM to freeze for the
    resting remainder. Orders that only close are never refused for margin."""
    inst, side = ctx.inst, ctx.side
    running, open_notional, fees = ctx.position_lots, 0, 0
    for _maker, qty, px in plan.fills:
        open_notional += calculate_notional(inst, _opening_lots(running, side, qty), px)
        fees += calculate_fee(inst, qty, px, inst.taker_fee_ppm)
        running += side * qty
    rest_frozen = 0
    if _rests(ctx, plan):
        rest_lots = _opening_lots(running, side, ctx.lots - plan.filled_lots)
        # IM of the resting exposure, plus the maker fee it pays when filled: one lot's fee
        # (rounded up) per lot covers any way the order is split into fills
        px = ctx.px_ticks  # a resting order always has a price
        rest_frozen = (calculate_initial_margin(calculate_notional(inst, rest_lots, px), ctx.lever)  # type: ignore[arg-type]
                       + rest_lots * calculate_fee(inst, 1, px, inst.maker_fee_ppm))  # type: ignore[arg-type]
    required = calculate_initial_margin(open_notional, ctx.lever) + rest_frozen + fees
    if open_notional == 0 and rest_frozen == 0:
        return 0
    if required > cross_figures(state, ctx.cmd.uid, inst.settle_ccy).available:
        return errors.reject(errors.INSUFFICIENT_MARGIN, "Insufficient margin")
    return rest_frozen


def _rests(ctx: OrderContext, plan: MatchPlan) -> bool:
    return (ctx.cmd.ord_type in _RESTING_TYPES and not plan.taker_stp_cancelled
            and plan.filled_lots < ctx.lots)


def _apply(state: ExchangeState, ctx: OrderContext, plan: MatchPlan,
           rest_frozen: int) -> list[Event]:
    cmd = ctx.cmd
    ord_id = next_ord_id(state)
    events: list[Event] = [_order_placed(ctx, ord_id)]
    taker = Taker(cmd.uid, cmd.td_mode, ctx.side, ctx.lever, ctx.inst.taker_fee_ppm, ord_id)
    events.extend(apply_match(state, ctx.inst, taker, plan, cmd.ts))
    remaining = ctx.lots - plan.filled_lots
    if _rests(ctx, plan):
        _rest(state, ctx, ord_id, remaining, rest_frozen)
    elif remaining:
        reason = "self_trade" if plan.taker_stp_cancelled else cmd.ord_type.value
        events.append(OrderCancelled(cmd.ts, ord_id, cmd.uid, cmd.inst_id, remaining, reason))
    return events


@dataclass(frozen=True, slots=True)
class Taker:
    """The aggressive side of a match: a user order or a liquidation order."""

    uid: int
    mgn_mode: MarginMode
    side: int
    lever: int
    fee_ppm: int
    ord_id: int
    category: str = "normal"


def apply_match(state: ExchangeState, inst: Instrument, taker: Taker, plan: MatchPlan,
                ts: int) -> list[Event]:
    """Carry out a planned match: STP cancels, fills settled for both sides, book updated."""
    events: list[Event] = []
    for maker in plan.stp_cancelled:
        events.append(apply_remove_order(state, maker.payload, maker.remaining, ts, "self_trade"))
    for maker, qty, px in plan.fills:
        events.extend(_apply_one_fill(state, inst, taker, maker, qty, px, ts))
    state.books[inst.inst_id].apply_plan(plan)
    return events


def _apply_one_fill(state: ExchangeState, inst: Instrument, taker: Taker, maker: RestingOrder,
                    qty: int, px: int, ts: int) -> list[Event]:
    info: OrderInfo = maker.payload  # type: ignore[assignment]
    before = maker.remaining  # the book is changed after all fills, by apply_plan
    if qty == before:
        _release_frozen(state, info, info.frozen)
        del state.open_orders[info.uid][info.ord_id]
    else:
        _release_frozen(state, info, div_floor(info.frozen * qty, before))
    trade_id = state.next_trade_id
    state.next_trade_id += 1
    buyer_value = calculate_fill_value(inst, qty, px)
    taker_value = buyer_value if taker.side > 0 else -buyer_value
    taker_fee = calculate_fee(inst, qty, px, taker.fee_ppm)
    maker_fee = calculate_fee(inst, qty, px, inst.maker_fee_ppm)
    if state.fee_share_ppm:
        _accrue_fee_share(state, inst, taker_fee + maker_fee)
    taker_change = apply_fill(state, inst, taker.uid, taker.mgn_mode, taker.side * qty,
                              taker_value, px, taker_fee, taker.lever, ts)
    maker_lever = lever_cents(state, info.uid, inst, info.td_mode)
    maker_change = apply_fill(state, inst, info.uid, info.td_mode, -taker.side * qty, -taker_value,
                              px, maker_fee, maker_lever, ts)
    filled = Filled(ts, trade_id, inst.inst_id, px, qty, "buy" if taker.side > 0 else "sell",
                    taker.ord_id, taker.uid, info.ord_id, info.uid, taker_fee, maker_fee,
                    taker.category)
    return [filled, taker_change, maker_change]


def _accrue_fee_share(state: ExchangeState, inst: Instrument, fees: int) -> None:
    """The fund's share of trading fees, rounded down (the exchange keeps the dust)."""
    fund_id = state.fund_of[inst.inst_id]
    share = div_floor(fees * state.fee_share_ppm, PPM)
    state.fee_share_accrued[fund_id] = state.fee_share_accrued.get(fund_id, 0) + share


def _rest(state: ExchangeState, ctx: OrderContext, ord_id: int, remaining: int, frozen: int) -> None:
    cmd, inst = ctx.cmd, ctx.inst
    info = OrderInfo(ord_id, cmd.uid, inst.inst_id, cmd.side.value, cmd.ord_type.value,
                     ctx.px_ticks, ctx.lots, cmd.td_mode, cmd.reduce_only, cmd.cl_ord_id,
                     inst.settle_ccy, frozen, cmd.ts)  # type: ignore[arg-type]
    ctx.book.rest(RestingOrder(ord_id, cmd.uid, ctx.side, ctx.px_ticks, remaining, info))  # type: ignore[arg-type]
    state.open_orders.setdefault(cmd.uid, {})[ord_id] = info
    key = (cmd.uid, inst.settle_ccy)
    state.frozen[key] = state.frozen.get(key, 0) + frozen


def _release_frozen(state: ExchangeState, info: OrderInfo, amount: int) -> None:
    info.frozen -= amount
    key = (info.uid, info.ccy)
    state.frozen[key] -= amount


def next_ord_id(state: ExchangeState) -> int:
    ord_id = state.next_ord_id
    state.next_ord_id += 1
    return ord_id


def _order_placed(ctx: OrderContext, ord_id: int) -> OrderPlaced:
    cmd = ctx.cmd
    return OrderPlaced(cmd.ts, ord_id, cmd.uid, cmd.inst_id, cmd.side.value, cmd.ord_type.value,
                       ctx.px_ticks or 0, ctx.lots, cmd.td_mode.value, cmd.reduce_only,
                       cmd.cl_ord_id)


def _placed_then_cancelled(state: ExchangeState, ctx: OrderContext, reason: str) -> list[Event]:
    """OKX accepts a post-only order that would take, or a FOK that cannot fill whole, and
    cancels it at once."""
    ord_id = next_ord_id(state)
    cmd = ctx.cmd
    return [_order_placed(ctx, ord_id),
            OrderCancelled(cmd.ts, ord_id, cmd.uid, cmd.inst_id, ctx.lots, reason)]


def _rejected(cmd: PlaceOrder | CancelOrder, rejection: Rejection) -> Rejected:
    cl_ord_id = getattr(cmd, "cl_ord_id", "")
    return Rejected(cmd.ts, cmd.uid, type(cmd).__name__, rejection.code, rejection.msg, cl_ord_id)
