"""Orders, fills and last trades as the API reports them, built from engine events alone.

The engine keeps only open orders; OKX also answers for filled and cancelled ones
(``trade/order``, ``trade/fills``), so this module follows the event stream. Event types it
does not know are ignored; following a new one is one entry in :data:`_HANDLERS`.
Units: prices in ticks, sizes in lots, money in 1e-8 units.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from backstop.model import events as ev

FILLS_KEPT = 10_000
"""Fills kept per account for ``trade/fills`` (the oldest drop off)."""
LIQUIDATIONS_KEPT = 10_000
"""Liquidation records kept for ``public/liquidation-orders`` (the oldest drop off)."""
DONE_ORDERS_KEPT = 10_000
"""Filled or cancelled orders kept per account for ``trade/order`` and
``trade/orders-history`` (the earliest finished drop off; open orders are always kept).
Without a bound the replay market's re-quoting makers grow the server's memory for as long as
it runs (found by ``bench/soak.py``)."""
TRADES_WINDOW_MS = 86_400_000
"""Trades older than this (behind the newest) are dropped: tickers need 24 hours."""


@dataclass(slots=True)
class OrderRecord:
    """One order's lifetime. ``fee`` is charged money (positive); ``fill_value_ticks`` is
    Σ px_ticks·lots, so the average price is ``fill_value_ticks / filled_lots`` ticks."""

    ord_id: int
    uid: int
    inst_id: str
    side: str
    ord_type: str
    px_ticks: int
    sz_lots: int
    td_mode: str
    reduce_only: bool
    cl_ord_id: str
    category: str
    c_time: int
    u_time: int
    state: str = "live"
    filled_lots: int = 0
    fill_value_ticks: int = 0
    fee: int = 0
    last_trade_id: int = 0
    last_fill_ticks: int = 0
    last_fill_lots: int = 0
    last_fill_time: int = 0
    cancel_reason: str = ""


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One side of a match, as ``trade/fills`` lists it (``exec_type`` ``T`` taker, ``M``
    maker)."""

    trade_id: int
    ord_id: int
    uid: int
    inst_id: str
    side: str
    px_ticks: int
    lots: int
    fee: int
    exec_type: str
    cl_ord_id: str
    ts: int


@dataclass(frozen=True, slots=True)
class LiquidationRecord:
    """One settled liquidation slice (legacy ``public/liquidation-orders`` ``details[]``).
    ``side`` is the liquidation order's side, ``pos_side`` the position's direction
    (``long``/``short``); ``bk_loss`` is the loss beyond the bankruptcy price that the fund
    paid or that was socialized (money units); ``seq`` counts records from 1."""

    seq: int
    ts: int
    uid: int
    inst_id: str
    mgn_mode: str
    side: str
    pos_side: str
    bk_px_ticks: int
    lots: int
    bk_loss: int


@dataclass(slots=True)
class TradeWindow:
    """An instrument's recent trades ``(ts, px_ticks, lots)`` with the window's running
    volume, value and (monotonic deques of) high and low, so a ticker costs O(1) however many
    trades the 24 hours hold (found by ``bench/soak.py``: summing the window per push made
    every ticker slower as the day filled)."""

    trades: deque[tuple[int, int, int]] = field(default_factory=deque)
    lots: int = 0
    value: int = 0
    """Σ px_ticks·lots."""
    highs: deque[tuple[int, int]] = field(default_factory=deque)
    """``(seq, px)``, prices strictly falling: the front is the window's high."""
    lows: deque[tuple[int, int]] = field(default_factory=deque)
    first_seq: int = 0
    """The sequence number of ``trades[0]``."""

    def add(self, ts: int, px: int, lots: int) -> None:
        seq = self.first_seq + len(self.trades)
        self.trades.append((ts, px, lots))
        self.lots += lots
        self.value += px * lots
        while self.highs and self.highs[-1][1] <= px:
            self.highs.pop()
        self.highs.append((seq, px))
        while self.lows and self.lows[-1][1] >= px:
            self.lows.pop()
        self.lows.append((seq, px))

    def prune(self, since_ts: int) -> None:
        """Drop trades before ``since_ts``."""
        while self.trades and self.trades[0][0] < since_ts:
            _, px, lots = self.trades.popleft()
            self.lots -= lots
            self.value -= px * lots
            for extremes in (self.highs, self.lows):
                if extremes and extremes[0][0] == self.first_seq:
                    extremes.popleft()
            self.first_seq += 1

    @property
    def high(self) -> int:
        return self.highs[0][1]

    @property
    def low(self) -> int:
        return self.lows[0][1]


@dataclass(slots=True)
class Tracker:
    """Orders by id, each account's order ids and fills, and each instrument's trades."""

    orders: dict[int, OrderRecord] = field(default_factory=dict)
    by_account: dict[int, dict[int, None]] = field(default_factory=dict)
    """Each account's order ids in placement order (a dict as an ordered set)."""
    by_cl_ord_id: dict[tuple[int, str], int] = field(default_factory=dict)
    fills: dict[int, deque[FillRecord]] = field(default_factory=dict)
    trades: dict[str, TradeWindow] = field(default_factory=dict)
    """Per instrument, the recent trades (24 h window for tickers)."""
    position_lots: dict[tuple[int, str, str], int] = field(default_factory=dict)
    """Last reported size of each position, signed lots (to name a liquidation's side)."""
    liquidating: dict[tuple[int, str, str], tuple[ev.LiquidationStarted, int]] = field(default_factory=dict)
    liquidations: deque[LiquidationRecord] = field(default_factory=lambda: deque(maxlen=LIQUIDATIONS_KEPT))
    liquidation_seq: int = 0
    done: dict[int, deque[int]] = field(default_factory=dict)
    """Each account's finished order ids, earliest first (see :data:`DONE_ORDERS_KEPT`)."""

    def apply(self, events: list[object]) -> None:
        """Follow a command's events in order."""
        for event in events:
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, event)

    def order_by_client_id(self, uid: int, cl_ord_id: str) -> OrderRecord | None:
        ord_id = self.by_cl_ord_id.get((uid, cl_ord_id))
        return None if ord_id is None else self.orders.get(ord_id)

    def account_orders(self, uid: int) -> list[OrderRecord]:
        """The account's orders, newest first."""
        return [self.orders[i] for i in reversed(self.by_account.get(uid, []))]

    def account_fills(self, uid: int) -> list[FillRecord]:
        """The account's fills, newest first."""
        return list(reversed(self.fills.get(uid, ())))

    def recent_trades(self, inst_id: str, since_ts: int) -> list[tuple[int, int, int]]:
        """Trades of an instrument at or after ``since_ts``; older ones are forgotten."""
        return list(self.trade_window(inst_id, since_ts).trades)

    def trade_window(self, inst_id: str, since_ts: int) -> TradeWindow:
        """The instrument's trades at or after ``since_ts`` with their running figures."""
        window = self.trades.setdefault(inst_id, TradeWindow())
        window.prune(since_ts)
        return window

    def liquidations_after(self, seq: int) -> list[LiquidationRecord]:
        """Records newer than ``seq``, oldest first."""
        out = []
        for record in reversed(self.liquidations):
            if record.seq <= seq:
                break
            out.append(record)
        return out[::-1]

    def _position(self, e: ev.PositionChanged) -> None:
        self.position_lots[(e.uid, e.inst_id, e.mgn_mode)] = e.size_lots

    def _liquidation_started(self, e: ev.LiquidationStarted) -> None:
        key = (e.uid, e.inst_id, e.mgn_mode)
        self.liquidating[key] = (e, self.position_lots.get(key, 0))

    def _liquidation_settled(self, e: ev.LiquidationSettled) -> None:
        started, size = self.liquidating.pop((e.uid, e.inst_id, e.mgn_mode), (None, 0))
        if started is None:
            return
        self.liquidation_seq += 1
        self.liquidations.append(LiquidationRecord(
            self.liquidation_seq, e.ts, e.uid, e.inst_id, e.mgn_mode, "sell" if size > 0 else "buy",
            "long" if size > 0 else "short", started.bankruptcy_ticks, e.lots,
            e.from_fund + e.socialized))

    def _placed(self, e: ev.OrderPlaced) -> None:
        self.orders[e.ord_id] = OrderRecord(
            e.ord_id, e.uid, e.inst_id, e.side, e.ord_type, e.px_ticks, e.sz_lots, e.td_mode,
            e.reduce_only, e.cl_ord_id, e.category, e.ts, e.ts)
        self.by_account.setdefault(e.uid, {})[e.ord_id] = None
        if e.cl_ord_id:
            self.by_cl_ord_id[(e.uid, e.cl_ord_id)] = e.ord_id

    def _filled(self, e: ev.Filled) -> None:
        self._fill_side(e, e.taker_ord_id, e.taker_uid, e.taker_side, e.taker_fee, "T")
        maker_side = "sell" if e.taker_side == "buy" else "buy"
        self._fill_side(e, e.maker_ord_id, e.maker_uid, maker_side, e.maker_fee, "M")
        window = self.trades.setdefault(e.inst_id, TradeWindow())
        window.add(e.ts, e.px_ticks, e.lots)
        window.prune(e.ts - TRADES_WINDOW_MS)

    def _fill_side(self, e: ev.Filled, ord_id: int, uid: int, side: str, fee: int,
                   exec_type: str) -> None:
        order = self.orders.get(ord_id)
        cl_ord_id = ""
        if order is not None:
            order.filled_lots += e.lots
            order.fill_value_ticks += e.px_ticks * e.lots
            order.fee += fee
            order.last_trade_id, order.last_fill_ticks = e.trade_id, e.px_ticks
            order.last_fill_lots, order.last_fill_time = e.lots, e.ts
            was_done = order.state in ("filled", "canceled")
            order.state = "filled" if order.filled_lots >= order.sz_lots else "partially_filled"
            order.u_time = e.ts
            if order.state == "filled" and not was_done:
                self._finish(uid, ord_id)
            cl_ord_id = order.cl_ord_id
        fill = FillRecord(e.trade_id, ord_id, uid, e.inst_id, side, e.px_ticks, e.lots, fee,
                          exec_type, cl_ord_id, e.ts)
        self.fills.setdefault(uid, deque(maxlen=FILLS_KEPT)).append(fill)

    def _cancelled(self, e: ev.OrderCancelled) -> None:
        order = self.orders.get(e.ord_id)
        if order is not None:
            was_done = order.state in ("filled", "canceled")
            order.state = "canceled" if order.filled_lots < order.sz_lots else "filled"
            order.cancel_reason = e.reason
            order.u_time = e.ts
            if not was_done:
                self._finish(e.uid, e.ord_id)

    def _finish(self, uid: int, ord_id: int) -> None:
        """Note a finished order; forget the account's earliest finished beyond
        :data:`DONE_ORDERS_KEPT`."""
        done = self.done.setdefault(uid, deque())
        done.append(ord_id)
        while len(done) > DONE_ORDERS_KEPT:
            self._forget(done.popleft())

    def _forget(self, ord_id: int) -> None:
        order = self.orders.pop(ord_id, None)
        if order is None:
            return
        ids = self.by_account.get(order.uid)
        if ids is not None:
            ids.pop(ord_id, None)
            if not ids:
                del self.by_account[order.uid]
        key = (order.uid, order.cl_ord_id)
        if order.cl_ord_id and self.by_cl_ord_id.get(key) == ord_id:
            del self.by_cl_ord_id[key]


_HANDLERS: dict[type, Callable[[Tracker, object], None]] = {
    ev.OrderPlaced: Tracker._placed,  # type: ignore[dict-item]
    ev.Filled: Tracker._filled,  # type: ignore[dict-item]
    ev.OrderCancelled: Tracker._cancelled,  # type: ignore[dict-item]
    ev.PositionChanged: Tracker._position,  # type: ignore[dict-item]
    ev.LiquidationStarted: Tracker._liquidation_started,  # type: ignore[dict-item]
    ev.LiquidationSettled: Tracker._liquidation_settled,  # type: ignore[dict-item]
}
