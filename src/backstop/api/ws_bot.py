"""The WebSocket surface bots use beyond market and position pushes: trading ``op``\\ s and the
``account``, candle, ``trades``, ``open-interest`` and ``price-limit`` channels.

Trading ops (private path, after login) run through the same code as REST
(:mod:`backstop.api.rest_trade`), so they are logged, serialized and refused with the same
codes. The answer is OKX's: ``{"id", "op", "code", "msg", "data": [per-item sCode/sMsg],
"inTime", "outTime"}``; ``code`` is ``0`` when every item passed, ``1`` when all failed,
``2`` when some did.

Candle channels (business path) are ``candle<bar>`` and ``mark-price-candle<bar>`` for every
OKX bar (``candle1m`` … ``candle3Mutc``); each push carries the bar in progress.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backstop.api import account_views as av
from backstop.api import market_data_views as dv
from backstop.api import rest_trade
from backstop.api.context import Ctx
from backstop.api.limits import RateLimiter
from backstop.api.market_history import BARS, PublicTrade
from backstop.api.wire import OkxError, ms
from backstop.model import events as ev

if TYPE_CHECKING:
    from backstop.api.ws import Connection, WsHub

log = logging.getLogger("backstop.api.ws")
TRADE_CANDLE_CHANNELS = frozenset(f"candle{bar}" for bar in BARS)
MARK_CANDLE_CHANNELS = frozenset(f"mark-price-candle{bar}" for bar in BARS)
CANDLE_CHANNELS = TRADE_CANDLE_CHANNELS | MARK_CANDLE_CHANNELS
PUBLIC_INST_CHANNELS = {"trades", "open-interest", "price-limit"}
INST_ID_CHANNELS = CANDLE_CHANNELS | PUBLIC_INST_CHANNELS
"""Channels keyed by ``instId`` (required)."""
PRIVATE_CHANNELS = {"account"}
TRADE_OPS = {"order", "batch-orders", "cancel-order", "batch-cancel-orders", "amend-order",
             "batch-amend-orders"}
"""OKX's WebSocket trading ops (``batch-*`` take up to 20 items)."""
RATE_ROUTES = {"order": "trade/order", "batch-orders": "trade/batch-orders",
               "cancel-order": "trade/cancel-order", "batch-cancel-orders": "trade/cancel-batch-orders",
               "amend-order": "trade/amend-order", "batch-amend-orders": "trade/amend-batch-orders"}
"""Each op is rate-limited like its REST route, in buckets of its own (OKX counts WebSocket and
REST trading separately): a flood is answered 50011, never run."""


@dataclass(slots=True)
class Changed:
    """What one command changed, for these channels."""

    trades: dict[str, list[ev.Filled]] = field(default_factory=dict)
    marks: set[str] = field(default_factory=set)
    positions: set[str] = field(default_factory=set)
    """Instruments whose open interest may have moved."""
    accounts: set[int] = field(default_factory=set)


def changed_by(events: list[Any]) -> Changed:
    out = Changed()
    for e in events:
        if isinstance(e, ev.Filled):
            out.trades.setdefault(e.inst_id, []).append(e)
        elif isinstance(e, ev.MarkPriceUpdated):
            out.marks.add(e.inst_id)
        elif isinstance(e, ev.PositionChanged):
            out.positions.add(e.inst_id)
            out.accounts.add(e.uid)
        elif isinstance(e, ev.Deposited | ev.Withdrawn | ev.FundingPaid | ev.MarginAdjusted
                        | ev.LiquidationSettled):
            out.accounts.add(e.uid)
    return out


class BotFeeds:
    """Snapshots and pushes of the channels above, for one :class:`~backstop.api.ws.WsHub`.

    A push's data is built once per published command and shared by every subscriber
    (:meth:`prepare`), and each connection's subscriptions are walked once (:meth:`push`).
    ``price-limit`` pushes only when an instrument's limits moved (kept per instrument)."""

    def __init__(self, hub: WsHub) -> None:
        self.hub = hub
        self.service = hub.service
        self.limits: dict[str, tuple[str, str]] = {}
        """The last ``(buyLmt, sellLmt)`` of each instrument."""
        self._data: dict[tuple[str, str], list[Any]] = {}
        self._fills: dict[str, list[ev.Filled]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.rate = RateLimiter(hub.limits.rate_scale)

    def snapshot(self, conn: Connection, arg: dict[str, str]) -> None:
        channel, inst_id = arg["channel"], arg.get("instId", "")
        if channel == "account":
            self._push_account(conn, arg)
            return
        data = self._build(channel, inst_id, fresh=True)
        if data:
            conn.send({"arg": arg, "data": data})

    def prepare(self, changed: Changed) -> set[tuple[str, str]]:
        """What this command moved, as ``(channel, instId)`` pairs; clears the shared data."""
        self._data.clear()
        moved = {("open-interest", i) for i in changed.positions}
        if changed.trades:
            moved |= {("trades", i) for i in changed.trades}
            moved |= {(c, i) for c in TRADE_CANDLE_CHANNELS for i in changed.trades}
        if changed.marks:
            moved |= {(c, i) for c in MARK_CANDLE_CHANNELS for i in changed.marks}
        for inst_id in changed.marks:
            inst = self.service.catalogue.get(inst_id)
            view = dv.price_limit_view(self.service.exchange, inst, 0)
            limits = (view["buyLmt"], view["sellLmt"])
            if self.limits.get(inst_id) != limits:
                self.limits[inst_id] = limits
                moved.add(("price-limit", inst_id))
        self._fills = changed.trades
        return moved

    def push(self, conn: Connection, changed: Changed, moved: set[tuple[str, str]]) -> None:
        if conn.uid and self.service.tracker.forced_orders:  # ADL orders have no engine event
            self.hub._push_orders(conn, set(self.service.tracker.forced_orders))
        for arg in conn.subs:
            channel, inst_id = arg["channel"], arg.get("instId", "")
            if channel == "account":
                if conn.uid in changed.accounts or self._holds(conn.uid, changed.marks):
                    self._push_account(conn, arg)
            elif (channel, inst_id) in moved:
                data = self._build(channel, inst_id)
                if data:
                    conn.send({"arg": arg, "data": data})

    def _build(self, channel: str, inst_id: str, fresh: bool = False) -> list[Any]:
        """A channel's data for one instrument, shared until the next command (``fresh``:
        a subscription's snapshot, built on its own)."""
        key = (channel, inst_id)
        if not fresh and key in self._data:
            return self._data[key]
        inst, now = self.service.catalogue.get(inst_id), self.service.now_ms()
        market = self.service.tracker.market
        if channel == "trades":
            fills = [] if fresh else self._fills.get(inst_id, [])
            trades = dv.trade_views(inst, map(_public_trade, fills))
            data: list[Any] = [{**row, "count": "1"} for row in trades]
        elif channel == "open-interest":
            data = [dv.open_interest_view(self.service.exchange, market, inst, now)]
        elif channel == "price-limit":
            data = [dv.price_limit_view(self.service.exchange, inst, now)]
        elif channel.startswith("mark-price-candle"):
            spec = BARS[channel[len("mark-price-candle"):]]
            data = dv.latest_price_candle(market.mark_candles.get(inst_id), inst, spec, now)
        else:
            data = dv.latest_trade_candle(market, inst, BARS[channel[len("candle"):]], now)
        if not fresh:
            self._data[key] = data
        return data

    def _holds(self, uid: int, marks: set[str]) -> bool:
        return bool(uid) and bool(marks) and any(
            p.inst_id in marks for p in self.service.exchange.state.account_positions.get(uid, {}).values())

    def _push_account(self, conn: Connection, arg: dict[str, str]) -> None:
        """``account``: the balance as ``account/balance`` shows it (optionally one ``ccy``)."""
        ccy = arg.get("ccy")
        view = av.balance_view(self.service.exchange, conn.uid, [ccy] if ccy else None, self.service.now_ms())
        conn.send({"arg": {**arg, "uid": str(conn.uid)}, "eventType": "snapshot", "curPage": 1,
                   "lastPage": True, "data": [view]})

    def trade_op(self, conn: Connection, message: dict[str, Any], op: str, args: Any) -> None:
        """Answer a trading op: at once when it cannot run (not logged in, malformed, over
        the rate limit, every item refused), else once its commands are logged. Every op gets
        its answer: a fault is 50026 (logged)."""
        raw_id = message.get("id", "")
        msg_id = raw_id if isinstance(raw_id, str) else json.dumps(raw_id)
        in_time = self.service.now_ms()
        try:
            prepared = self._prepare(conn, op, args, in_time)
        except OkxError as exc:
            conn.send(_error_answer(msg_id, op, exc.code, exc.msg, in_time, self.service.now_ms()))
            return
        except Exception:
            log.exception("unexpected error on WebSocket op %r", op)
            conn.send(_error_answer(msg_id, op, "50026", _FAULT, in_time, self.service.now_ms()))
            return
        if prepared.refused is not None:
            self._answer(conn, msg_id, op, prepared.refused, in_time)
            return
        task = asyncio.get_running_loop().create_task(self._run(conn, msg_id, op, prepared, in_time))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _prepare(self, conn: Connection, op: str, args: Any, in_time: int) -> rest_trade.Prepared:
        if conn.path != "private" or not conn.uid:
            raise OkxError("60011", "Please log in")
        if not isinstance(args, list) or not all(isinstance(a, dict) for a in args):
            raise OkxError("60012", "Invalid request: args must be a list of objects")
        if not args or len(args) > 20 or (not op.startswith("batch") and len(args) > 1):
            raise OkxError("60012", f"Invalid request: {op} takes 1 item (batch ops up to 20)")
        self.rate.check(f"ws:{conn.uid}", "POST", RATE_ROUTES[op])
        ctx = Ctx(self.service, conn.uid, {}, b"", in_time, self.hub.limits)
        return rest_trade.prepare(ctx, OP_KINDS[op], args)

    async def _run(self, conn: Connection, msg_id: str, op: str, prepared: rest_trade.Prepared,
                   in_time: int) -> None:
        try:
            items = await prepared.run()
        except OkxError as exc:
            conn.send(_error_answer(msg_id, op, exc.code, exc.msg, in_time, self.service.now_ms()))
            return
        except Exception:  # a bug must not leave a client waiting for its answer
            log.exception("unexpected error on WebSocket op %r", op)
            conn.send(_error_answer(msg_id, op, "50026", _FAULT, in_time, self.service.now_ms()))
            return
        self._answer(conn, msg_id, op, items, in_time)

    def _answer(self, conn: Connection, msg_id: str, op: str, items: list[dict[str, Any]],
                in_time: int) -> None:
        failed = sum(1 for item in items if item["sCode"] != "0")
        code = "0" if not failed else "1" if failed == len(items) else "2"
        conn.send({"id": msg_id, "op": op, "code": code, "msg": "", "data": items,
                   "inTime": ms(in_time * 1000), "outTime": ms(self.service.now_ms() * 1000)})


_FAULT = "System error, please try again later"
OP_KINDS = {"order": "place", "batch-orders": "place", "cancel-order": "cancel",
            "batch-cancel-orders": "cancel", "amend-order": "amend", "batch-amend-orders": "amend"}


def _error_answer(msg_id: str, op: str, code: str, msg: str, in_time: int, out_time: int) -> dict[str, Any]:
    return {"id": msg_id, "op": op, "code": code, "msg": msg, "data": [], "inTime": ms(in_time * 1000),
            "outTime": ms(out_time * 1000)}


def _public_trade(e: ev.Filled) -> PublicTrade:
    return PublicTrade(e.trade_id, e.ts, e.px_ticks, e.lots, e.taker_side)
