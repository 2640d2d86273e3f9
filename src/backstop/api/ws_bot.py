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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backstop.api import account_views as av
from backstop.api import market_data_views as dv
from backstop.api import rest_trade
from backstop.api.context import Ctx
from backstop.api.market_history import BARS, PublicTrade
from backstop.api.wire import OkxError, ms
from backstop.model import events as ev

if TYPE_CHECKING:
    from backstop.api.ws import Connection, WsHub

CANDLE_CHANNELS = {f"candle{bar}" for bar in BARS} | {f"mark-price-candle{bar}" for bar in BARS}
PUBLIC_INST_CHANNELS = {"trades", "open-interest", "price-limit"}
INST_ID_CHANNELS = CANDLE_CHANNELS | PUBLIC_INST_CHANNELS
"""Channels keyed by ``instId`` (required)."""
PRIVATE_CHANNELS = {"account"}
TRADE_OPS = {"order", "batch-orders", "cancel-order", "batch-cancel-orders", "amend-order",
             "batch-amend-orders"}
"""OKX's WebSocket trading ops (``batch-*`` take up to 20 items)."""


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
    """Snapshots and pushes of the channels above, for one :class:`~backstop.api.ws.WsHub`."""

    def __init__(self, hub: WsHub) -> None:
        self.hub = hub
        self.service = hub.service
        self.last_limits: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def snapshot(self, conn: Connection, arg: dict[str, str]) -> None:
        channel, inst_id = arg["channel"], arg.get("instId", "")
        if channel == "account":
            self._push_account(conn, arg)
        elif channel in CANDLE_CHANNELS:
            self._push_candle(conn, arg, channel, inst_id)
        elif channel in ("open-interest", "price-limit"):
            self._push_view(conn, arg, channel, inst_id)

    def push(self, conn: Connection, changed: Changed) -> None:
        for inst_id, fills in changed.trades.items():
            for arg in conn.matching("trades", inst_id):
                inst = self.service.catalogue.get(inst_id)
                conn.send({"arg": arg, "data": [{**row, "count": "1"} for row in dv.trade_views(inst, [
                    _public_trade(e) for e in fills])]})
        for channel in CANDLE_CHANNELS:
            if not any(s["channel"] == channel for s in conn.subs):
                continue
            moved = changed.marks if channel.startswith("mark-price") else changed.trades.keys()
            for inst_id in moved:
                for arg in conn.matching(channel, inst_id):
                    self._push_candle(conn, arg, channel, inst_id)
        for inst_id in changed.positions:
            for arg in conn.matching("open-interest", inst_id):
                self._push_view(conn, arg, "open-interest", inst_id)
        for inst_id in changed.marks:
            for arg in conn.matching("price-limit", inst_id):
                if self._limit_moved(conn, inst_id):
                    self._push_view(conn, arg, "price-limit", inst_id)
        if conn.uid and (conn.uid in changed.accounts or self._holds(conn.uid, changed.marks)):
            for arg in conn.matching("account"):
                self._push_account(conn, arg)

    def _holds(self, uid: int, marks: set[str]) -> bool:
        return bool(marks) and any(p.inst_id in marks for p in
                                   self.service.exchange.state.account_positions.get(uid, {}).values())

    def _limit_moved(self, conn: Connection, inst_id: str) -> bool:
        """``price-limit`` pushes only when a limit changed (per connection and instrument)."""
        inst = self.service.catalogue.get(inst_id)
        view = dv.price_limit_view(self.service.exchange, inst, 0)
        key = f"{id(conn)}:{inst_id}"
        now = f"{view['buyLmt']}/{view['sellLmt']}"
        if self.last_limits.get(key) == now:
            return False
        self.last_limits[key] = now
        return True

    def _push_candle(self, conn: Connection, arg: dict[str, str], channel: str, inst_id: str) -> None:
        inst, now = self.service.catalogue.get(inst_id), self.service.now_ms()
        market = self.service.tracker.market
        if channel.startswith("mark-price-candle"):
            spec = BARS[channel[len("mark-price-candle"):]]
            rows = dv.price_candle_views(market.mark_candles.get(inst_id), inst, spec, None, None, 1, now)
        else:
            spec = BARS[channel[len("candle"):]]
            rows = dv.trade_candle_views(market, inst, spec, None, None, 1, now)
        if rows:
            conn.send({"arg": arg, "data": rows})

    def _push_view(self, conn: Connection, arg: dict[str, str], channel: str, inst_id: str) -> None:
        inst, now = self.service.catalogue.get(inst_id), self.service.now_ms()
        if channel == "open-interest":
            data = dv.open_interest_view(self.service.exchange, self.service.tracker.market, inst, now)
        else:
            data = dv.price_limit_view(self.service.exchange, inst, now)
            self.last_limits[f"{id(conn)}:{inst_id}"] = f"{data['buyLmt']}/{data['sellLmt']}"
        conn.send({"arg": arg, "data": [data]})

    def _push_account(self, conn: Connection, arg: dict[str, str]) -> None:
        """``account``: the balance as ``account/balance`` shows it (optionally one ``ccy``)."""
        ccy = arg.get("ccy")
        view = av.balance_view(self.service.exchange, conn.uid, [ccy] if ccy else None, self.service.now_ms())
        conn.send({"arg": {**arg, "uid": str(conn.uid)}, "eventType": "snapshot", "curPage": 1,
                   "lastPage": True, "data": [view]})

    def trade_op(self, conn: Connection, message: dict[str, Any], op: str,
                 args: list[dict[str, Any]]) -> None:
        """Run a trading op in the background (its answer comes when it is logged)."""
        task = asyncio.get_running_loop().create_task(self._trade_op(conn, message, op, args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _trade_op(self, conn: Connection, message: dict[str, Any], op: str,
                        args: list[dict[str, Any]]) -> None:
        msg_id = str(message.get("id", ""))
        in_time = self.service.now_ms()
        try:
            if conn.path != "private" or not conn.uid:
                raise OkxError("60011", "Please log in")
            if not args or len(args) > 20 or (not op.startswith("batch") and len(args) > 1):
                raise OkxError("60012", f"Invalid request: {op} takes 1 item (batch ops up to 20)")
            ctx = Ctx(self.service, conn.uid, {}, json.dumps(args).encode(), in_time, self.hub.limits)
            items = await _run_op(ctx, op, args)
        except OkxError as exc:
            conn.send({"id": msg_id, "op": op, "code": exc.code, "msg": exc.msg, "data": [],
                       "inTime": ms(in_time * 1000), "outTime": ms(self.service.now_ms() * 1000)})
            return
        failed = sum(1 for item in items if item["sCode"] != "0")
        code = "0" if not failed else "1" if failed == len(items) else "2"
        conn.send({"id": msg_id, "op": op, "code": code, "msg": "", "data": items,
                   "inTime": ms(in_time * 1000), "outTime": ms(self.service.now_ms() * 1000)})


async def _run_op(ctx: Ctx, op: str, args: list[dict[str, Any]]) -> list[dict[str, Any]]:
    handlers: dict[str, Callable[[Ctx, list[dict[str, Any]]], Any]] = {
        "order": rest_trade.place_items, "batch-orders": rest_trade.place_items,
        "cancel-order": rest_trade.cancel_items, "batch-cancel-orders": rest_trade.cancel_items,
        "amend-order": rest_trade.amend_items, "batch-amend-orders": rest_trade.amend_items,
    }
    return await handlers[op](ctx, args)


def _public_trade(e: ev.Filled) -> PublicTrade:
    return PublicTrade(e.trade_id, e.ts, e.px_ticks, e.lots, e.taker_side)
