"""A price-time priority limit order book over integer ticks and lots.

Levels are insertion-ordered dicts (time priority within a price); each side keeps its prices
in an ascending list maintained with :mod:`bisect` (the best bid is the last, the best ask the
first). Matching is split into :meth:`OrderBook.plan_match`
(read only) and :meth:`OrderBook.apply_plan`, so the engine can check margin on the exact fills
before anything changes.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field

BUY = 1
SELL = -1

STP_CANCEL_MAKER = 0
STP_CANCEL_TAKER = 1
STP_CANCEL_BOTH = 2


class RestingOrder:
    """An order in the book. ``side`` is +1 buy / −1 sell; ``remaining`` in lots.
    ``payload`` is the engine's own data about the order (opaque to the book)."""

    __slots__ = ("ord_id", "owner", "payload", "px", "remaining", "side")

    def __init__(self, ord_id: int, owner: int, side: int, px: int, remaining: int,
                 payload: object = None) -> None:
        self.ord_id = ord_id
        self.owner = owner
        self.side = side
        self.px = px
        self.remaining = remaining
        self.payload = payload


@dataclass(slots=True)
class MatchPlan:
    """What a taker order would do: fills ``(maker, lots, px)``, makers cancelled by
    self-trade prevention, and whether the taker itself is cancelled by it."""

    fills: list[tuple[RestingOrder, int, int]] = field(default_factory=list)
    stp_cancelled: list[RestingOrder] = field(default_factory=list)
    taker_stp_cancelled: bool = False
    filled_lots: int = 0


class OrderBook:
    """One instrument's book."""

    __slots__ = ("ask_prices", "asks", "bid_prices", "bids", "orders")

    def __init__(self) -> None:
        self.bids: dict[int, dict[int, RestingOrder]] = {}
        self.asks: dict[int, dict[int, RestingOrder]] = {}
        self.bid_prices: list[int] = []  # ascending; best bid last
        self.ask_prices: list[int] = []  # ascending; best ask first
        self.orders: dict[int, RestingOrder] = {}

    def best_bid(self) -> int | None:
        return self.bid_prices[-1] if self.bid_prices else None

    def best_ask(self) -> int | None:
        return self.ask_prices[0] if self.ask_prices else None

    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask

    def rest(self, order: RestingOrder) -> None:
        """Add an order at the back of its price level. The caller ensures it does not cross."""
        if order.side == BUY:
            level = self.bids.get(order.px)
            if level is None:
                level = self.bids[order.px] = {}
                insort(self.bid_prices, order.px)
        else:
            level = self.asks.get(order.px)
            if level is None:
                level = self.asks[order.px] = {}
                insort(self.ask_prices, order.px)
        level[order.ord_id] = order
        self.orders[order.ord_id] = order

    def cancel(self, ord_id: int) -> RestingOrder | None:
        """Remove an order; ``None`` if it is not resting."""
        order = self.orders.pop(ord_id, None)
        if order is None:
            return None
        if order.side == BUY:
            levels, prices = self.bids, self.bid_prices
        else:
            levels, prices = self.asks, self.ask_prices
        level = levels[order.px]
        del level[ord_id]
        if not level:
            del levels[order.px]
            del prices[bisect_left(prices, order.px)]
        return order

    def would_cross(self, side: int, px: int) -> bool:
        """Whether a limit order at ``px`` would trade on arrival."""
        if side == BUY:
            return bool(self.ask_prices) and px >= self.ask_prices[0]
        return bool(self.bid_prices) and px <= self.bid_prices[-1]

    def plan_match(self, side: int, limit_px: int | None, lots: int, owner: int,
                   stp: int = STP_CANCEL_MAKER) -> MatchPlan:
        """Walk the opposite side from the best price without changing anything.

        ``limit_px`` ``None`` means no price limit (a market order).
        """
        plan = MatchPlan()
        remaining = lots
        if side == BUY:
            levels, prices = self.asks, self.ask_prices
        else:
            levels, prices = self.bids, reversed(self.bid_prices)
        for px in prices:
            if remaining == 0 or plan.taker_stp_cancelled:
                break
            if limit_px is not None and (px > limit_px if side == BUY else px < limit_px):
                break
            remaining = self._plan_level(plan, levels[px], px, remaining, owner, stp)
        plan.filled_lots = lots - remaining
        return plan

    @staticmethod
    def _plan_level(plan: MatchPlan, level: dict[int, RestingOrder], px: int, remaining: int,
                    owner: int, stp: int) -> int:
        for maker in level.values():
            if maker.owner == owner:
                if stp != STP_CANCEL_TAKER:
                    plan.stp_cancelled.append(maker)
                if stp != STP_CANCEL_MAKER:
                    plan.taker_stp_cancelled = True
                    return remaining
                continue
            qty = maker.remaining if maker.remaining < remaining else remaining
            plan.fills.append((maker, qty, px))
            remaining -= qty
            if remaining == 0:
                break
        return remaining

    def apply_plan(self, plan: MatchPlan) -> None:
        """Carry out a plan made by :meth:`plan_match` on this unchanged book."""
        for maker in plan.stp_cancelled:
            self.cancel(maker.ord_id)
        for maker, qty, _px in plan.fills:
            maker.remaining -= qty
            if maker.remaining == 0:
                self.cancel(maker.ord_id)

    def depth(self, side: int, n: int) -> list[tuple[int, int, int]]:
        """Top ``n`` levels of one side as ``(px_ticks, total_lots, order_count)``."""
        if side == BUY:
            levels, prices = self.bids, self.bid_prices[::-1][:n]
        else:
            levels, prices = self.asks, self.ask_prices[:n]
        return [(px, sum(o.remaining for o in levels[px].values()), len(levels[px]))
                for px in prices]
