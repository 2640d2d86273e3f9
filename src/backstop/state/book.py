"""A price-time priority limit order book over integer ticks and lots.

Levels are insertion-ordered dicts (time priority within a price); each side keeps its prices
in an ascending list maintained with :mod:`bisect` (the best bid is the last, the best ask the
first). Matching is split into :meth:`OrderBook.plan_match`
(read only) and :meth:`OrderBook.apply_plan`, so the engine can check margin on the exact fills
before anything changes.

The hot paths (``rest``, ``cancel``, ``would_cross``, ``plan_match``, ``apply_plan``) are written
out per side with locals instead of shared helpers: in CPython every call and attribute lookup
counts (see ``bench/matching.py``).
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
        prices = self.bid_prices
        return prices[-1] if prices else None

    def best_ask(self) -> int | None:
        prices = self.ask_prices
        return prices[0] if prices else None

    def is_crossed(self) -> bool:
        bids, asks = self.bid_prices, self.ask_prices
        return bool(bids) and bool(asks) and bids[-1] >= asks[0]

    def rest(self, order: RestingOrder) -> None:
        """Add an order at the back of its price level. The caller ensures it does not cross."""
        px = order.px
        if order.side == BUY:
            levels = self.bids
            prices = self.bid_prices
        else:
            levels = self.asks
            prices = self.ask_prices
        try:
            level = levels[px]
        except KeyError:
            level = levels[px] = {}
            insort(prices, px)
        ord_id = order.ord_id
        level[ord_id] = order
        self.orders[ord_id] = order

    def cancel(self, ord_id: int) -> RestingOrder | None:
        """Remove an order; ``None`` if it is not resting."""
        order = self.orders.pop(ord_id, None)
        if order is None:
            return None
        px = order.px
        if order.side == BUY:
            levels = self.bids
            prices = self.bid_prices
        else:
            levels = self.asks
            prices = self.ask_prices
        level = levels[px]
        del level[ord_id]
        if not level:
            del levels[px]
            del prices[bisect_left(prices, px)]
        return order

    def would_cross(self, side: int, px: int) -> bool:
        """Whether a limit order at ``px`` would trade on arrival."""
        if side == BUY:
            prices = self.ask_prices
            return bool(prices) and px >= prices[0]
        prices = self.bid_prices
        return bool(prices) and px <= prices[-1]

    def plan_match(self, side: int, limit_px: int | None, lots: int, owner: int,
                   stp: int = STP_CANCEL_MAKER) -> MatchPlan:
        """Walk the opposite side from the best price without changing anything.

        ``limit_px`` ``None`` means no price limit (a market order).
        """
        if side == BUY:
            prices = self.ask_prices
            if not prices or (limit_px is not None and prices[0] > limit_px):
                return MatchPlan([], [], False, 0)
            levels = self.asks
            walk = prices
        else:
            prices = self.bid_prices
            if not prices or (limit_px is not None and prices[-1] < limit_px):
                return MatchPlan([], [], False, 0)
            levels = self.bids
            walk = reversed(prices)
        fills: list[tuple[RestingOrder, int, int]] = []
        stp_cancelled: list[RestingOrder] = []
        taker_cancelled = False
        remaining = lots
        for px in walk:
            if limit_px is not None and (px > limit_px if side == BUY else px < limit_px):
                break
            for maker in levels[px].values():
                if maker.owner == owner:
                    if stp != STP_CANCEL_TAKER:
                        stp_cancelled.append(maker)
                    if stp != STP_CANCEL_MAKER:
                        taker_cancelled = True
                        break
                    continue
                qty = maker.remaining
                if qty >= remaining:
                    fills.append((maker, remaining, px))
                    remaining = 0
                    break
                fills.append((maker, qty, px))
                remaining -= qty
            if remaining == 0 or taker_cancelled:
                break
        return MatchPlan(fills, stp_cancelled, taker_cancelled, lots - remaining)

    def apply_plan(self, plan: MatchPlan) -> None:
        """Carry out a plan made by :meth:`plan_match` on this unchanged book."""
        for maker in plan.stp_cancelled:
            self.cancel(maker.ord_id)
        fills = plan.fills
        if not fills:
            return
        orders = self.orders
        if fills[0][0].side == BUY:
            levels, prices, best = self.bids, self.bid_prices, -1
        else:
            levels, prices, best = self.asks, self.ask_prices, 0
        for maker, qty, px in fills:
            left = maker.remaining - qty
            maker.remaining = left
            if left == 0:
                ord_id = maker.ord_id
                del orders[ord_id]
                level = levels[px]
                del level[ord_id]
                if not level:
                    del levels[px]
                    # fills walk from the best price, so an emptied level is the best one
                    if prices[best] == px:
                        del prices[best]
                    else:
                        del prices[bisect_left(prices, px)]

    def depth(self, side: int, n: int) -> list[tuple[int, int, int]]:
        """Top ``n`` levels of one side as ``(px_ticks, total_lots, order_count)``."""
        if side == BUY:
            levels, prices = self.bids, self.bid_prices[::-1][:n]
        else:
            levels, prices = self.asks, self.ask_prices[:n]
        return [(px, sum(o.remaining for o in levels[px].values()), len(levels[px]))
                for px in prices]
