"""Orders, fills and last trades as the API reports them, built from engine events alone.

The engine keeps only open orders; OKX also answers for filled and cancelled ones
(``trade/order``, ``trade/fills``), so this module follows the event stream. Event types it
does not know are ignored; following a new one is one entry in :data:`_HANDLERS`. The server
replays its log through a fresh tracker on start, so everything here survives a restart.

Liquidation and ADL closes appear as OKX shows them: a liquidation order (``category``
``full_liquidation``/``partial_liquidation``) with its fills, and an ADL as one filled order
and one fill on each side (the bankrupt account's with its liquidation category, the
deleveraged account's with ``adl``). Each fill carries its realized PnL (``fillPnl``), taken
from the :class:`~backstop.model.events.PositionChanged` the engine emits right after it.
Bills and position history (:mod:`backstop.api.history`) and candles and public trades
(:mod:`backstop.api.market_history`) are fed from here.
Units: prices in ticks, sizes in lots, money in 1e-8 units.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from backstop.api.history import AccountHistory, closed_lots
from backstop.api.market_history import MarketHistory
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
SYNTHETIC_ID_BASE = 9_000_000_000_000_000_000
"""ADL orders and fills happen outside the book and get no engine id: theirs count up from
here (OKX ids are 19-digit strings too), so they never meet an engine id."""


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
    pnl: int = 0
    """Realized PnL of the order's fills (money units)."""
    engine_ord_id: int = 0
    """The engine order now carrying this order (an amended order keeps its ``ord_id``
    while the engine replaces it); 0 when it is the same id."""
    amended: int = 0
    """How many amendments succeeded (OKX ``reqId``-free ``amendResult`` bookkeeping)."""

    @property
    def is_forced(self) -> bool:
        """A liquidation or ADL order: the engine's, not the account's."""
        return self.category != "normal"

    @property
    def live_ord_id(self) -> int:
        return self.engine_ord_id or self.ord_id


@dataclass(slots=True)
class FillRecord:
    """One side of a match, as ``trade/fills`` lists it (``exec_type`` ``T`` taker, ``M``
    maker). ``pnl`` is the realized PnL it caused; ``category`` is its order's (``normal``,
    ``full_liquidation``, ``partial_liquidation``, ``adl``); ``closed_lots`` how much of it
    reduced a position; ``pos_before`` the signed size before it; ``bill_id`` its bill."""

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
    category: str = "normal"
    pnl: int = 0
    mgn_mode: str = "cross"
    pos_before: int = 0
    closed_lots: int = 0
    bill_id: int = 0


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
    """Orders by id, each account's order ids and fills, each instrument's trades, and the
    account and market history built from the same events."""

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
    aliases: dict[int, int] = field(default_factory=dict)
    """Engine order id → the public order it carries (amended orders)."""
    amending: set[int] = field(default_factory=set)
    """Engine orders an amendment is cancelling right now (see :meth:`expect_amend`)."""
    history: AccountHistory = field(default_factory=AccountHistory)
    market: MarketHistory = field(default_factory=MarketHistory)
    synthetic_seq: int = 0
    forced_orders: list[int] = field(default_factory=list)
    """The ADL orders the last applied command made (pushed on the ``orders`` channel)."""
    _awaiting: dict[tuple[int, str], list[FillRecord]] = field(default_factory=dict)
    """Fills whose :class:`~backstop.model.events.PositionChanged` has not come yet."""
    _loose: dict[tuple[int, str], tuple[ev.PositionChanged, int]] = field(default_factory=dict)
    """Position changes no fill claimed (an ADL's, claimed by the event that follows)."""

    def apply(self, events: list[object]) -> None:
        """Follow a command's events in order."""
        self.forced_orders = []
        for event in events:
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, event)
        for change, before in self._loose.values():  # a vault takeover, a socialized loss
            self.history.position_moved(change, before, None, "")
        self._loose.clear()
        self._awaiting.clear()  # a fill's position change comes in the same command

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

    def expect_amend(self, engine_ord_id: int) -> None:
        """An amendment is about to cancel ``engine_ord_id`` and place its replacement: the
        cancel does not end the public order (no ``canceled`` push in between). A replay
        has no such note; the replacement's :func:`amend_cl_ord_id` revives the order then."""
        self.amending.add(engine_ord_id)

    def amend_failed(self, public_ord_id: int, ts: int) -> None:
        """Neither the replacement nor the original could be placed again: the order ends
        cancelled, as a replay of the same events ends it."""
        order = self.orders.get(public_ord_id)
        if order is not None:
            self.amending.discard(order.live_ord_id)
            self._cancelled(ev.OrderCancelled(ts=ts, ord_id=order.live_ord_id, uid=order.uid,
                                              inst_id=order.inst_id, remaining_lots=0, reason="user"))

    def _record(self, engine_ord_id: int) -> OrderRecord | None:
        return self.orders.get(self.aliases.get(engine_ord_id, engine_ord_id))

    def _position(self, e: ev.PositionChanged) -> None:
        key = (e.uid, e.inst_id, e.mgn_mode)
        before = self.position_lots.get(key, 0)
        self.position_lots[key] = e.size_lots
        self.market.position_changed(e.inst_id, before, e.size_lots)
        waiting = self._awaiting.get((e.uid, e.inst_id))
        if waiting:
            fill = waiting.pop(0)
            self._settle_fill(fill, e, before)
        else:
            self._loose[(e.uid, e.inst_id)] = (e, before)

    def _settle_fill(self, fill: FillRecord, e: ev.PositionChanged, before: int) -> None:
        """A fill's position change has come: its PnL, mode and closed size are known."""
        fill.pnl, fill.mgn_mode, fill.pos_before = e.realized_pnl, e.mgn_mode, before
        fill.closed_lots = closed_lots(before, e.size_lots)
        order = self.orders.get(fill.ord_id)
        if order is not None:
            order.pnl += e.realized_pnl
        self.history.fill_settled(fill)
        self.history.position_moved(e, before, fill, fill.category)

    def _liquidation_started(self, e: ev.LiquidationStarted) -> None:
        key = (e.uid, e.inst_id, e.mgn_mode)
        self.liquidating[key] = (e, self.position_lots.get(key, 0))

    def _liquidation_settled(self, e: ev.LiquidationSettled) -> None:
        self.history.liquidation_settled(e)
        started, size = self.liquidating.pop((e.uid, e.inst_id, e.mgn_mode), (None, 0))
        if started is None:
            return
        self.liquidation_seq += 1
        self.liquidations.append(LiquidationRecord(
            self.liquidation_seq, e.ts, e.uid, e.inst_id, e.mgn_mode, "sell" if size > 0 else "buy",
            "long" if size > 0 else "short", started.bankruptcy_ticks, e.lots,
            e.from_fund + e.socialized))

    def _deleveraged(self, e: ev.AutoDeleveraged) -> None:
        """An ADL trade: a filled order and a fill for each side, at the ADL price, no fee."""
        for uid, exec_type in ((e.liquidated_uid, "T"), (e.uid, "M")):
            change, before = self._loose.pop((uid, e.inst_id), (None, 0))
            if change is None:
                continue
            category = "adl" if uid == e.uid else self._liquidation_category(uid, e.inst_id, change.mgn_mode)
            side = "sell" if before > 0 else "buy"
            ord_id, trade_id = self._synthetic_id(), self._synthetic_id()
            self._placed(ev.OrderPlaced(ts=e.ts, ord_id=ord_id, uid=uid, inst_id=e.inst_id, side=side,
                                        ord_type="market", px_ticks=0, sz_lots=e.lots,
                                        td_mode=change.mgn_mode, reduce_only=True, cl_ord_id="",
                                        category=category))
            self.forced_orders.append(ord_id)
            fill = self._fill_side_record(e.ts, trade_id, e.inst_id, e.px_ticks, e.lots, ord_id, uid,
                                          side, 0, exec_type, category, awaits_change=False)
            self._settle_fill(fill, change, before)

    def _liquidation_category(self, uid: int, inst_id: str, mgn_mode: str) -> str:
        started = self.liquidating.get((uid, inst_id, mgn_mode))
        return started[0].category if started is not None else "full_liquidation"

    def _synthetic_id(self) -> int:
        self.synthetic_seq += 1
        return SYNTHETIC_ID_BASE + self.synthetic_seq

    def _placed(self, e: ev.OrderPlaced) -> None:
        public = amended_ord_id(e.cl_ord_id) if e.cl_ord_id.startswith(AMEND_MARK) else None
        if public is not None:
            self._replaced(e, public)
            return
        self.orders[e.ord_id] = OrderRecord(
            e.ord_id, e.uid, e.inst_id, e.side, e.ord_type, e.px_ticks, e.sz_lots, e.td_mode,
            e.reduce_only, e.cl_ord_id, e.category, e.ts, e.ts)
        self.by_account.setdefault(e.uid, {})[e.ord_id] = None
        if e.cl_ord_id:
            self.by_cl_ord_id[(e.uid, e.cl_ord_id)] = e.ord_id

    def _filled(self, e: ev.Filled) -> None:
        self._fill_side_record(e.ts, e.trade_id, e.inst_id, e.px_ticks, e.lots, e.taker_ord_id,
                               e.taker_uid, e.taker_side, e.taker_fee, "T", e.category)
        maker_side = "sell" if e.taker_side == "buy" else "buy"
        self._fill_side_record(e.ts, e.trade_id, e.inst_id, e.px_ticks, e.lots, e.maker_ord_id,
                               e.maker_uid, maker_side, e.maker_fee, "M", "normal")
        window = self.trades.setdefault(e.inst_id, TradeWindow())
        window.add(e.ts, e.px_ticks, e.lots)
        window.prune(e.ts - TRADES_WINDOW_MS)
        self.market.trade(e)

    def _fill_side_record(self, ts: int, trade_id: int, inst_id: str, px_ticks: int, lots: int,
                          engine_ord_id: int, uid: int, side: str, fee: int, exec_type: str,
                          category: str, awaits_change: bool = True) -> FillRecord:
        """Book one side's fill on its order and queue it for its position change (a book
        fill's comes next; an ADL's came before it and is settled by the caller)."""
        order = self._record(engine_ord_id)
        ord_id, cl_ord_id = engine_ord_id, ""
        if order is not None:
            ord_id, cl_ord_id = order.ord_id, order.cl_ord_id
            order.filled_lots += lots
            order.fill_value_ticks += px_ticks * lots
            order.fee += fee
            order.last_trade_id, order.last_fill_ticks = trade_id, px_ticks
            order.last_fill_lots, order.last_fill_time = lots, ts
            was_done = order.state in ("filled", "canceled")
            order.state = "filled" if order.filled_lots >= order.sz_lots else "partially_filled"
            order.u_time = ts
            if order.state == "filled" and not was_done:
                self._finish(uid, ord_id)
        fill = FillRecord(trade_id, ord_id, uid, inst_id, side, px_ticks, lots, fee, exec_type,
                          cl_ord_id, ts, category)
        kept = self.fills.get(uid)
        if kept is None:
            kept = self.fills[uid] = deque(maxlen=FILLS_KEPT)
        kept.append(fill)
        if awaits_change:
            self._awaiting.setdefault((uid, inst_id), []).append(fill)
        return fill

    def _replaced(self, e: ev.OrderPlaced, public_ord_id: int) -> None:
        """An amendment's replacement: the public order takes the new price and size (its
        filled part kept) and follows the new engine order from now on."""
        order = self.orders.get(public_ord_id)
        if order is None or order.uid != e.uid:
            return
        self.amending.discard(order.live_ord_id)
        if order.state == "canceled":  # replay: the cancel ended it; the replacement revives it
            done = self.done.get(order.uid)
            if done is not None and public_ord_id in done:
                done.remove(public_ord_id)
        order.engine_ord_id = e.ord_id if e.ord_id != public_ord_id else 0
        self.aliases[e.ord_id] = public_ord_id
        order.px_ticks, order.sz_lots = e.px_ticks, order.filled_lots + e.sz_lots
        order.state = "partially_filled" if order.filled_lots else "live"
        order.cancel_reason, order.u_time = "", e.ts
        order.amended += 1

    def _cancelled(self, e: ev.OrderCancelled) -> None:
        if e.ord_id in self.amending:
            return  # an amendment replaces it now: the public order lives on
        order = self._record(e.ord_id)
        if order is None or order.live_ord_id != e.ord_id:
            return
        was_done = order.state in ("filled", "canceled")
        order.state = "canceled" if order.filled_lots < order.sz_lots else "filled"
        order.cancel_reason = e.reason
        order.u_time = e.ts
        if not was_done:
            self._finish(e.uid, order.ord_id)

    def _funding(self, e: ev.FundingPaid) -> None:
        self.history.funding(e)

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
        if order.engine_ord_id:
            self.aliases.pop(order.engine_ord_id, None)
        ids = self.by_account.get(order.uid)
        if ids is not None:
            ids.pop(ord_id, None)
            if not ids:
                del self.by_account[order.uid]
        key = (order.uid, order.cl_ord_id)
        if order.cl_ord_id and self.by_cl_ord_id.get(key) == ord_id:
            del self.by_cl_ord_id[key]


AMEND_MARK = "bsamend"
"""An amendment's replacement order carries ``bsamend<public ordId>`` as its engine
``cl_ord_id`` (at most 26 letters and digits, as the engine requires): the log then links
the replacement to the order it amends, and a replay rebuilds the same orders. The public
order keeps the account's own ``clOrdId``; the API refuses an account's ``clOrdId`` that
starts with the mark (:func:`is_reserved_cl_ord_id`), so none can be forged."""


def amend_cl_ord_id(public_ord_id: int) -> str:
    return f"{AMEND_MARK}{public_ord_id}"


def is_reserved_cl_ord_id(cl_ord_id: str) -> bool:
    return cl_ord_id.lower().startswith(AMEND_MARK)


def amended_ord_id(cl_ord_id: str) -> int | None:
    """The public order an engine ``cl_ord_id`` amends, or ``None``."""
    if not cl_ord_id.startswith(AMEND_MARK):
        return None
    head = cl_ord_id[len(AMEND_MARK):]
    return int(head) if head.isascii() and head.isdigit() else None


_HANDLERS: dict[type, Callable[[Tracker, object], None]] = {
    ev.OrderPlaced: Tracker._placed,  # type: ignore[dict-item]
    ev.Filled: Tracker._filled,  # type: ignore[dict-item]
    ev.OrderCancelled: Tracker._cancelled,  # type: ignore[dict-item]
    ev.PositionChanged: Tracker._position,  # type: ignore[dict-item]
    ev.LiquidationStarted: Tracker._liquidation_started,  # type: ignore[dict-item]
    ev.LiquidationSettled: Tracker._liquidation_settled,  # type: ignore[dict-item]
    ev.AutoDeleveraged: Tracker._deleveraged,  # type: ignore[dict-item]
    ev.FundingPaid: Tracker._funding,  # type: ignore[dict-item]
    ev.DeficitCovered: lambda t, e: t.history.deficit_covered(e),  # type: ignore[attr-defined]
    ev.Deposited: lambda t, e: t.history.transfer(e, 1),  # type: ignore[attr-defined]
    ev.Withdrawn: lambda t, e: t.history.transfer(e, -1),  # type: ignore[attr-defined]
    ev.LeverageSet: lambda t, e: t.history.leverage(e),  # type: ignore[attr-defined]
    ev.MarkPriceUpdated: lambda t, e: t.market.mark(e),  # type: ignore[attr-defined]
    ev.FundingRateSet: lambda t, e: t.market.funding_rate(e),  # type: ignore[attr-defined]
}
