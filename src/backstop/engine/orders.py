"""Placing and cancelling orders: validate → plan the match → check margin → apply.

Nothing changes until every check has passed; a refusal is a :class:`Rejected` event carrying
OKX's code.

Money rules:
- every order lies inside the instrument's price band (``buyLmt``/``sellLmt`` around the
  mark, :func:`backstop.engine.queries.price_limits`): a limit price outside it is refused
  with 51006, and a market order fills at most up to it;
- a resting order's lots are backed by money moved from the account's cash to its
  ``reserved`` ledger account: per lot, the IM at the order's leverage plus its maker fee,
  each rounded up, as if every lot opened exposure. A fill releases exactly its lots' share,
  a cancel the rest, so a maker's fill never needs money the account no longer has;
- an order's fills (its taker fills now, and its resting rest were it filled at its own price)
  may not leave its unit (isolated position or cross account) with negative equity at the
  mark: the order is refused with 51008 rather than hand a loss to the fund.
"""

from __future__ import annotations

from typing import NamedTuple

from backstop.engine.config import EngineConfig
from backstop.engine.queries import (
    cross_figures,
    isolated_equity,
    lever_cents,
    price_limits,
)
from backstop.engine.settlement import apply_fill, calculate_fee
from backstop.engine.validation import parse_lots, parse_ticks
from backstop.math.margin import calculate_initial_margin, find_tier
from backstop.math.values import calculate_fill_value, calculate_notional
from backstop.model import errors
from backstop.model.commands import CancelOrder, PlaceOrder
from backstop.model.enums import MarginMode, OrderType, SelfTradeMode, Side
from backstop.model.errors import Rejection
from backstop.model.events import Event, Filled, OrderCancelled, OrderPlaced, Rejected
from backstop.model.instrument import Instrument
from backstop.numeric import PPM, div_floor
from backstop.state.book import STP_CANCEL_MAKER, MatchPlan, RestingOrder
from backstop.state.exchange_state import ExchangeState, OrderInfo
from backstop.state.ledger import cash_key, reserved_key
from backstop.state.positions import Position

_STP = {SelfTradeMode.CANCEL_MAKER: 0, SelfTradeMode.CANCEL_TAKER: 1, SelfTradeMode.CANCEL_BOTH: 2}
_RESTING_TYPES = (OrderType.LIMIT, OrderType.POST_ONLY)
# Members as module constants: a global is read faster than an enum class attribute.
_BUY, _MARKET, _POST_ONLY, _FOK = Side.BUY, OrderType.MARKET, OrderType.POST_ONLY, OrderType.FOK
_ISOLATED = MarginMode.ISOLATED


class Checked(NamedTuple):
    """A validated order's figures. ``px_ticks`` is ``None`` for a market order; ``limit_ticks``
    is the price its taker part may trade up to: its own, or the band's edge for a market
    order. ``lever`` in hundredths; ``position_lots`` the position's signed size before it."""

    inst: Instrument
    side: int
    lots: int
    px_ticks: int | None
    limit_ticks: int
    lever: int
    position_lots: int


def place_order(state: ExchangeState, config: EngineConfig, cmd: PlaceOrder) -> list[Event]:
    """OKX ``trade/order``; returns the events, or one :class:`Rejected`.

    Accounts with a progressive liquidation under way are frozen (50020) until the risk pass
    finds them healthy again: a frozen account cannot, say, close a bankrupt position itself
    and leave a deficit behind. An order that cannot take (a limit or post-only order that does
    not cross) skips the match plan: it has no fills, and nothing else a plan would hold."""
    cooling = state.liquidation_cooldown
    if cooling and any(k[0] == cmd.uid for k in cooling):
        return [_rejected(cmd, errors.reject(errors.ACCOUNT_FROZEN_LIQUIDATION,
                                             "Account is being liquidated"))]
    order = _validate(state, config, cmd)
    if type(order) is Rejection:
        return [_rejected(cmd, order)]
    ord_type = cmd.ord_type
    resting_type = ord_type in _RESTING_TYPES
    crosses = not resting_type or state.books[cmd.inst_id].would_cross(order.side, order.limit_ticks)
    if crosses and ord_type is _POST_ONLY:
        return _placed_then_cancelled(state, cmd, order, "post_only")
    plan = _plan(state, cmd, order) if crosses else None
    if ord_type is _FOK and plan.filled_lots < order.lots:  # type: ignore[union-attr]
        return _placed_then_cancelled(state, cmd, order, "fok")
    filled = 0 if plan is None else plan.filled_lots
    rests = resting_type and filled < order.lots and (plan is None or not plan.taker_stp_cancelled)
    reserve_per_lot = _check_margin(state, cmd, order, plan, filled, rests)
    if type(reserve_per_lot) is Rejection:
        return [_rejected(cmd, reserve_per_lot)]
    return _apply(state, cmd, order, plan, filled, rests, reserve_per_lot)  # type: ignore[arg-type]


def cancel_order(state: ExchangeState, cmd: CancelOrder) -> list[Event]:
    """OKX ``trade/cancel-order``: only the owner's live order on that instrument (51400)."""
    orders = state.open_orders.get(cmd.uid)
    info = orders.get(cmd.ord_id) if orders else None
    if info is None or info.inst_id != cmd.inst_id:
        return [_rejected(cmd, errors.reject(
            errors.CANCEL_FAILED,
            "Cancellation failed as the order has been filled, canceled or does not exist"))]
    return [apply_cancel_resting(state, info, cmd.ts, "user")]


def apply_cancel_resting(state: ExchangeState, info: OrderInfo, ts: int, reason: str) -> OrderCancelled:
    """Take a resting order out of its book and forget it, releasing its reserved money."""
    resting = state.books[info.inst_id].cancel(info.ord_id)
    assert resting is not None, "open order missing from its book"
    return apply_remove_order(state, info, resting.remaining, ts, reason)


def apply_remove_order(state: ExchangeState, info: OrderInfo, remaining: int, ts: int,
                       reason: str) -> OrderCancelled:
    """Forget an order already taken out of its book; release all its reserved money."""
    _forget(state, info)
    return OrderCancelled(ts, info.ord_id, info.uid, info.inst_id, remaining, reason)


def calculate_reserve_per_lot(inst: Instrument, px_ticks: int, lever: int) -> int:
    """Money reserved for one resting lot: its IM at ``lever`` plus its maker fee, each
    rounded up. Per-lot rounding up covers any way the order is split into fills
    (``⌈a + b⌉ ≤ ⌈a⌉ + ⌈b⌉``)."""
    one_lot = calculate_notional(inst, 1, px_ticks)
    return calculate_initial_margin(one_lot, lever) + calculate_fee(inst, 1, px_ticks, inst.maker_fee_ppm)


def _validate(state: ExchangeState, config: EngineConfig, cmd: PlaceOrder) -> Checked | Rejection:
    inst = state.catalogue.instruments.get(cmd.inst_id)  # type: ignore[call-overload]
    if inst is None:
        return errors.reject(errors.NO_SUCH_INSTRUMENT, "Instrument ID does not exist")
    lots = parse_lots(inst, cmd.sz)
    if type(lots) is Rejection:
        return lots
    if cmd.cl_ord_id and (cmd.uid, cmd.cl_ord_id) in state.live_cl_ord_ids:
        return errors.reject(errors.DUPLICATE_CL_ORD_ID, "Duplicated clOrdId")
    side = 1 if cmd.side is _BUY else -1
    buy_lmt, sell_lmt = price_limits(state, inst, state.price_band_ppm[inst.inst_id])
    px: int | Rejection | None = None
    limit = buy_lmt if side > 0 else sell_lmt
    if cmd.ord_type is not _MARKET:
        px = parse_ticks(inst, cmd.px)
        if type(px) is Rejection:
            return px
        if (side > 0 and px > buy_lmt) or (side < 0 and px < sell_lmt):  # type: ignore[operator]
            return errors.reject(errors.PRICE_OUT_OF_LIMIT,
                                 "Order price is not within the price limit")
        limit = px  # type: ignore[assignment]
    pos = state.positions.get((cmd.uid, inst.inst_id, cmd.td_mode))
    pos_lots = pos.size_lots if pos else 0
    if cmd.reduce_only and not _fits_reduce_only(state, cmd, side, lots, pos_lots):  # type: ignore[arg-type]
        return errors.reject(errors.REDUCE_ONLY_INVALID,
                             "Reduce-only order exceeds the position it would reduce")
    lever = lever_cents(state, cmd.uid, inst, cmd.td_mode)
    after_lots = abs(pos_lots + side * lots)  # type: ignore[operator]
    tier = find_tier(inst.tiers, after_lots if after_lots > abs(pos_lots) else abs(pos_lots))
    if tier is None or lever > tier.max_lever * 100:
        return errors.reject(errors.OVER_TIER_LIMIT,
                             "Order amount exceeds the current tier limit for this leverage")
    return Checked(inst, side, lots, px, limit, lever, pos_lots)  # type: ignore[arg-type]


def _fits_reduce_only(state: ExchangeState, cmd: PlaceOrder, side: int, lots: int, pos_lots: int) -> bool:
    """A reduce-only order closes the position: opposite side, and together with the
    account's other resting reduce-only orders on it, no larger than the position."""
    if pos_lots * side >= 0:
        return False
    resting = sum(o.sz_lots for o in state.open_orders.get(cmd.uid, {}).values()
                  if o.reduce_only and o.inst_id == cmd.inst_id and o.td_mode is cmd.td_mode)
    return resting + lots <= abs(pos_lots)


def _plan(state: ExchangeState, cmd: PlaceOrder, order: Checked) -> MatchPlan:
    """The match the order would make as a taker, within its limit (the price band's edge for
    a market order)."""
    return state.books[cmd.inst_id].plan_match(order.side, order.limit_ticks, order.lots, cmd.uid,
                                               _STP[cmd.stp_mode])


def _opening_lots(position_lots: int, side: int, lots: int) -> int:
    """Lots of a trade that open new exposure (net mode) rather than close."""
    if position_lots * side >= 0:
        return lots
    beyond = lots - abs(position_lots)
    return beyond if beyond > 0 else 0


def _check_margin(state: ExchangeState, cmd: PlaceOrder, order: Checked, plan: MatchPlan | None,
                  filled: int, rests: bool) -> int | Rejection:
    """Available ≥ IM of the new exposure + taker fees + the resting remainder's reserve (the
    money that moves must be spendable cash), and the unit keeps equity ≥ 0 at the mark after
    the fills. Returns the reserve per resting lot (0 when nothing rests). Orders that only
    close need no margin. ``plan`` ``None``: the order takes nothing; ``filled``: the lots it
    takes; ``rests``: whether the rest of it rests in the book."""
    inst, side, lots, px, _limit, lever, position_lots = order
    mark = state.mark_ticks[inst.inst_id]
    if plan is None:
        open_notional = fees = loss_vs_mark = 0
    else:
        open_notional, fees, loss_vs_mark = _taker_costs(inst, side, position_lots, mark, plan)
    per_lot = rest_reserve = rest_im = 0
    if rests:
        rest_lots = lots - filled
        per_lot = calculate_reserve_per_lot(inst, px, lever)  # type: ignore[arg-type]
        rest_reserve = per_lot * rest_lots
        opens = _opening_lots(position_lots + side * filled, side, rest_lots)
        rest_im = calculate_initial_margin(calculate_notional(inst, opens, px), lever)  # type: ignore[arg-type]
        loss_vs_mark += _loss_against_mark(inst, side, mark, rest_lots, px)  # type: ignore[arg-type]
    opening_im = calculate_initial_margin(open_notional, lever) if open_notional else 0
    required = opening_im + rest_reserve + fees
    figures = cross_figures(state, cmd.uid, inst.settle_ccy)
    isolated = cmd.td_mode is _ISOLATED
    moving = rest_reserve + (opening_im if isolated else 0)
    if (open_notional or rest_reserve) and (required > figures.available or moving > figures.spendable):
        return errors.reject(errors.INSUFFICIENT_MARGIN, "Insufficient margin")
    if isolated:
        after = _isolated_equity_before(state, cmd.uid, inst) + opening_im + rest_im - loss_vs_mark
    else:
        after = figures.equity - fees - loss_vs_mark
    if after < 0:
        return errors.reject(errors.INSUFFICIENT_MARGIN,
                             "Insufficient margin: the fills would leave the position bankrupt")
    return per_lot


def _taker_costs(inst: Instrument, side: int, position_lots: int, mark: int,
                 plan: MatchPlan) -> tuple[int, int, int]:
    """The planned fills' ``(notional that opens exposure, taker fees, loss against the
    mark)``, in money units."""
    running, open_notional, fees, loss = position_lots, 0, 0, 0
    for _maker, qty, px in plan.fills:
        open_notional += calculate_notional(inst, _opening_lots(running, side, qty), px)
        fees += calculate_fee(inst, qty, px, inst.taker_fee_ppm)
        loss += _loss_against_mark(inst, side, mark, qty, px)
        running += side * qty
    return open_notional, fees, loss


def _loss_against_mark(inst: Instrument, side: int, mark: int, lots: int, px_ticks: int) -> int:
    """What trading ``lots`` at ``px_ticks`` costs against trading at the mark (≥ 0: a gain
    counts for nothing, as a resting order may never fill), plus one unit of slack for the
    inverse value's rounding."""
    gap = calculate_fill_value(inst, lots, px_ticks) - calculate_fill_value(inst, lots, mark)
    loss = side * gap
    return (loss if loss > 0 else 0) + 1


def _isolated_equity_before(state: ExchangeState, uid: int, inst: Instrument) -> int:
    """The isolated position's equity at the mark before the order (0 when flat). After the
    order's fills an isolated unit's equity is this plus the IM its fills move in, less their
    loss against the mark (fees come from cash); a cross account pays the taker fees from its
    equity."""
    pos = state.existing_position(uid, inst.inst_id, MarginMode.ISOLATED)
    return isolated_equity(state, pos, inst) if pos is not None and pos.size_lots else 0


def _apply(state: ExchangeState, cmd: PlaceOrder, order: Checked, plan: MatchPlan | None,
           filled: int, rests: bool, reserve_per_lot: int) -> list[Event]:
    """Place the order: its fills (and the self-trade cancels) settled, the reduce-only orders
    they left too large trimmed (the taker's are checked even without fills), then its rest
    in the book or its cancel."""
    inst = order.inst
    ord_id = next_ord_id(state)
    events: list[Event] = [_order_placed(cmd, order, ord_id)]
    if plan is not None:
        taker = Taker(cmd.uid, cmd.td_mode, order.side, order.lever, inst.taker_fee_ppm, ord_id)
        events.extend(apply_match(state, inst, taker, plan, cmd.ts))
    elif cmd.uid in state.reduce_only_orders:
        events.extend(apply_trim_reduce_only(state, cmd.uid, inst.inst_id, cmd.td_mode, cmd.ts))
    remaining = order.lots - filled
    if rests:
        _rest(state, cmd, order, ord_id, remaining, reserve_per_lot)
    elif remaining:
        reason = "self_trade" if plan is not None and plan.taker_stp_cancelled else cmd.ord_type.value
        events.append(OrderCancelled(cmd.ts, ord_id, cmd.uid, cmd.inst_id, remaining, reason))
    return events


class Taker(NamedTuple):
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
    """Carry out a planned match: STP cancels, fills settled for both sides, book updated,
    then reduce-only orders the fills left too large are cancelled."""
    events: list[Event] = []
    for maker in plan.stp_cancelled:
        events.append(apply_remove_order(state, maker.payload, maker.remaining, ts, "self_trade"))
    touched = {(taker.uid, taker.mgn_mode)}
    for maker, qty, px in plan.fills:
        events.extend(_apply_one_fill(state, inst, taker, maker, qty, px, ts))
        touched.add((maker.owner, maker.payload.td_mode))
    state.books[inst.inst_id].apply_plan(plan)
    trimming = state.reduce_only_orders
    for uid, mode in sorted(touched):
        if uid in trimming:
            events.extend(apply_trim_reduce_only(state, uid, inst.inst_id, mode, ts))
    return events


def apply_trim_reduce_only(state: ExchangeState, uid: int, inst_id: str, mode: MarginMode,
                           ts: int) -> list[Event]:
    """Cancel the account's reduce-only orders on this position that could no longer only
    reduce it: those on the wrong side, and the newest ones beyond the position's size."""
    orders = state.open_orders.get(uid)
    if not orders:
        return []
    pos = state.existing_position(uid, inst_id, mode)
    left = abs(pos.size_lots) if pos is not None else 0
    closing_side = "sell" if pos is not None and pos.size_lots > 0 else "buy"
    events: list[Event] = []
    for info in sorted((o for o in orders.values()
                        if o.reduce_only and o.inst_id == inst_id and o.td_mode is mode),
                       key=lambda o: o.ord_id):
        resting = state.books[inst_id].orders[info.ord_id].remaining
        if info.side == closing_side and resting <= left:
            left -= resting
        else:
            events.append(apply_cancel_resting(state, info, ts, "reduce_only"))
    return events


def _apply_one_fill(state: ExchangeState, inst: Instrument, taker: Taker, maker: RestingOrder,
                    qty: int, px: int, ts: int) -> list[Event]:
    info: OrderInfo = maker.payload  # type: ignore[assignment]
    if qty == maker.remaining:  # the book itself is changed after all fills, by apply_plan
        _forget(state, info)
    else:
        _release(state, info, info.reserve_per_lot * qty)
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


def _rest(state: ExchangeState, cmd: PlaceOrder, order: Checked, ord_id: int, remaining: int,
          per_lot: int) -> None:
    inst = order.inst
    reserve = per_lot * remaining
    info = OrderInfo(ord_id, cmd.uid, inst.inst_id, cmd.side._value_, cmd.ord_type._value_,
                     order.px_ticks, order.lots, cmd.td_mode, cmd.reduce_only, cmd.cl_ord_id,
                     inst.settle_ccy, reserve, per_lot, cmd.ts)  # type: ignore[arg-type]
    state.books[inst.inst_id].rest(RestingOrder(ord_id, cmd.uid, order.side, order.px_ticks,  # type: ignore[arg-type]
                                                remaining, info))
    state.add_open_order(info)
    state.ledger.transfer(cash_key(cmd.uid, inst.settle_ccy), reserved_key(cmd.uid, inst.settle_ccy),
                          reserve)


def apply_reserve_change(state: ExchangeState, info: OrderInfo, per_lot: int, remaining: int) -> None:
    """Re-reserve a resting order at a new per-lot amount (a leverage change); the caller has
    checked that the account can afford it."""
    target = per_lot * remaining
    state.ledger.transfer(cash_key(info.uid, info.ccy), reserved_key(info.uid, info.ccy),
                          target - info.reserved)
    info.reserved, info.reserve_per_lot = target, per_lot


def _release(state: ExchangeState, info: OrderInfo, amount: int) -> None:
    info.reserved -= amount
    state.ledger.transfer(reserved_key(info.uid, info.ccy), cash_key(info.uid, info.ccy), amount)


def _forget(state: ExchangeState, info: OrderInfo) -> None:
    """Release everything the order still reserves and drop it from the account's orders."""
    _release(state, info, info.reserved)
    state.remove_open_order(info)


def next_ord_id(state: ExchangeState) -> int:
    ord_id = state.next_ord_id
    state.next_ord_id += 1
    return ord_id


def plan_forced_close(state: ExchangeState, inst: Instrument, pos: Position, lots: int,
                      limit_ticks: int | None = None) -> MatchPlan:
    """A forced close (liquidation) of ``lots`` of ``pos`` planned in the book, no further
    than ``limit_ticks`` (any price when ``None``); a self-trade cancels the maker."""
    side = -1 if pos.size_lots > 0 else 1
    return state.books[inst.inst_id].plan_match(side, limit_ticks, lots, pos.uid, STP_CANCEL_MAKER)


def apply_forced_close(state: ExchangeState, inst: Instrument, pos: Position, plan: MatchPlan,
                       category: str, ts: int) -> list[Event]:
    """The reduce-only IOC of a forced close, then its fills as ``plan`` planned them."""
    side = -1 if pos.size_lots > 0 else 1
    ord_id = next_ord_id(state)
    taker = Taker(pos.uid, pos.mgn_mode, side, lever_cents(state, pos.uid, inst, pos.mgn_mode), 0,
                  ord_id, category)
    placed = OrderPlaced(ts, ord_id, pos.uid, inst.inst_id, "buy" if side > 0 else "sell", "ioc",
                         0, plan.filled_lots, pos.mgn_mode.value, True, "", category)
    return [placed, *apply_match(state, inst, taker, plan, ts)]


def _order_placed(cmd: PlaceOrder, order: Checked, ord_id: int) -> OrderPlaced:
    return OrderPlaced(cmd.ts, ord_id, cmd.uid, cmd.inst_id, cmd.side._value_, cmd.ord_type._value_,
                       order.px_ticks or 0, order.lots, cmd.td_mode._value_, cmd.reduce_only,
                       cmd.cl_ord_id)


def _placed_then_cancelled(state: ExchangeState, cmd: PlaceOrder, order: Checked,
                           reason: str) -> list[Event]:
    """OKX accepts a post-only order that would take, or a FOK that cannot fill whole, and
    cancels it at once."""
    ord_id = next_ord_id(state)
    return [_order_placed(cmd, order, ord_id),
            OrderCancelled(cmd.ts, ord_id, cmd.uid, cmd.inst_id, order.lots, reason)]


def _rejected(cmd: PlaceOrder | CancelOrder, rejection: Rejection) -> Rejected:
    cl_ord_id = getattr(cmd, "cl_ord_id", "")
    return Rejected(cmd.ts, cmd.uid, type(cmd).__name__, rejection.code, rejection.msg, cl_ord_id)
