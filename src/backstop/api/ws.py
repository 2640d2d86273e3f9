"""OKX v5 WebSockets: ``/ws/v5/public``, ``/ws/v5/private``, ``/ws/v5/business``.

Clients send the text ``ping`` (answered ``pong``) or JSON ``{"op": "login" | "subscribe" |
"unsubscribe", "args": [...]}``. Pushes are ``{"arg": {...}, "data": [...]}`` built from engine
events: :data:`_TOUCHES` maps each event type to what it changes; event types not listed are
ignored, so following a new one is one entry there.

Each connection has an outgoing queue drained by its own task, so publishing (called by the
service right after a command is logged) never waits on a slow client. The queue is bounded
in bytes (``Limits.max_ws_queue_bytes``): a client that falls further behind is sent nothing
more and disconnected (close code 1008, "slow consumer").

Abuse bounds: repeated subscriptions (in one request or across requests) are acknowledged
once per request and subscribed once, with no new snapshot; ``subscribe``/``unsubscribe``/
``login`` requests take a token from the connection's bucket (60014 when empty); push data
(tickers, marks, books, snapshots) is serialized once per published command and shared by
every subscriber.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from backstop.api import account_views as av
from backstop.api import liquidation_views as lv
from backstop.api import market_views as mv
from backstop.api import ws_bot
from backstop.api.auth import authenticate_ws
from backstop.api.limits import (
    DEFAULT_LIMITS,
    Limits,
    RequestBucket,
    ensure_subscription_room,
    ws_message_error,
)
from backstop.api.service import Clock, ExchangeService
from backstop.api.wire import OkxError, ms, px_str, sz_str
from backstop.model import events as ev

INST_ID_CHANNELS = {"tickers", "mark-price", "books", "books5", "funding-rate"} | ws_bot.INST_ID_CHANNELS
"""Channels keyed by ``instId`` (required)."""
INST_TYPE_CHANNELS = {"liquidation-orders", "adl-warning"}
"""Public channels keyed by ``instType`` (required) and optionally ``instFamily``."""
PUBLIC_CHANNELS = (INST_ID_CHANNELS - ws_bot.CANDLE_CHANNELS) | INST_TYPE_CHANNELS
PRIVATE_CHANNELS = ({"orders", "positions", "balance_and_position", "liquidation-warning"}
                    | ws_bot.PRIVATE_CHANNELS)
ADL_WARNING_EVERY_S = 1.0
"""``adl-warning`` pushes each fund in ``warning`` or ``adl`` this often (and every fund each
:data:`ADL_NORMAL_EVERY` such periods)."""
ADL_NORMAL_EVERY = 60
EVENT_TYPE_RANK = {"filled": 0, "funding_fee": 1, "adl": 2, "liquidation": 3}
"""``balance_and_position`` ``eventType`` when one command touches an account several ways."""
CHANNELS_BY_PATH = {"public": PUBLIC_CHANNELS, "private": PRIVATE_CHANNELS,
                    "business": ws_bot.CANDLE_CHANNELS}
BOOK_DEPTH = 400
log = logging.getLogger("backstop.api.ws")
SLOW_CONSUMER_CLOSE = (1008, "slow consumer")
CLOSE_WAIT_S = 1.0
"""How long a slow consumer's close frame may wait for room in its transport."""
_conn_ids = itertools.count(1)


@dataclass(slots=True)
class Touched:
    """What one command's events changed."""

    books: set[str] = field(default_factory=set)
    marks: set[str] = field(default_factory=set)
    orders: set[int] = field(default_factory=set)
    positions: set[int] = field(default_factory=set)
    """Accounts whose positions or balances changed."""
    event_types: dict[int, str] = field(default_factory=dict)
    """``balance_and_position`` ``eventType`` by account, when not ``filled``."""
    funding: set[str] = field(default_factory=set)
    warnings: list[ev.LiquidationWarning] = field(default_factory=list)
    adl_funds: set[str] = field(default_factory=set)

    def account_event(self, uid: int, event_type: str) -> None:
        """An account's balance or position changed for ``event_type`` (highest rank wins)."""
        self.positions.add(uid)
        current = self.event_types.get(uid, "filled")
        if EVENT_TYPE_RANK[event_type] > EVENT_TYPE_RANK[current]:
            self.event_types[uid] = event_type


_TOUCHES: dict[type, Callable[[Touched, Any], None]] = {
    ev.OrderPlaced: lambda t, e: (t.books.add(e.inst_id), t.orders.add(e.ord_id)),
    ev.OrderCancelled: lambda t, e: (t.books.add(e.inst_id), t.orders.add(e.ord_id)),
    ev.Filled: lambda t, e: (t.books.add(e.inst_id), t.orders.update((e.taker_ord_id, e.maker_ord_id))),
    ev.PositionChanged: lambda t, e: t.positions.add(e.uid),
    ev.MarginAdjusted: lambda t, e: t.positions.add(e.uid),
    ev.Deposited: lambda t, e: t.positions.add(e.uid),
    ev.Withdrawn: lambda t, e: t.positions.add(e.uid),
    ev.MarkPriceUpdated: lambda t, e: t.marks.add(e.inst_id),
    ev.FundingRateSet: lambda t, e: t.funding.add(e.inst_id),
    ev.FundingPaid: lambda t, e: t.account_event(e.uid, "funding_fee"),
    ev.LiquidationStarted: lambda t, e: t.account_event(e.uid, "liquidation"),
    ev.AutoDeleveraged: lambda t, e: t.account_event(e.uid, "adl"),
    ev.ProfitHaircut: lambda t, e: t.account_event(e.uid, "adl"),
    ev.LiquidationWarning: lambda t, e: t.warnings.append(e),
    ev.AdlStateChanged: lambda t, e: t.adl_funds.add(e.fund_id),
}


@dataclass(slots=True, eq=False)
class Connection:
    """One client: its path, login, subscriptions and outgoing queue."""

    socket: WebSocket
    path: str
    conn_id: str
    max_queue_bytes: int = DEFAULT_LIMITS.max_ws_queue_bytes
    requests: RequestBucket = field(
        default_factory=lambda: RequestBucket(DEFAULT_LIMITS.ws_requests_per_hour))
    uid: int = 0
    subs: list[dict[str, str]] = field(default_factory=list)
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    queued_bytes: int = 0
    overflowed: bool = False

    def send(self, message: dict[str, Any] | str) -> None:
        """Queue a message; past ``max_queue_bytes`` of unsent text, drop the queue and
        schedule the slow-consumer close instead."""
        if self.overflowed:
            return
        text = message if isinstance(message, str) else json.dumps(message)
        self.queued_bytes += len(text)
        if self.queued_bytes > self.max_queue_bytes:
            self._overflow()
            return
        self.queue.put_nowait(text)

    def _overflow(self) -> None:
        self.overflowed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queued_bytes = 0
        self.queue.put_nowait(None)

    def matching(self, channel: str, inst_id: str = "") -> list[dict[str, str]]:
        """Subscriptions to ``channel`` that cover ``inst_id`` (by instId, or all)."""
        return [s for s in self.subs if s["channel"] == channel
                and (not s.get("instId") or not inst_id or s["instId"] == inst_id)]

    def matching_family(self, channel: str, inst_type: str, family: str) -> list[dict[str, str]]:
        """Subscriptions to ``channel`` that cover an instrument type and family."""
        return [s for s in self.subs if s["channel"] == channel
                and s.get("instType", "ANY") in ("ANY", inst_type)
                and (not s.get("instFamily") or s["instFamily"] == family)]


@dataclass(slots=True)
class BookFeed:
    """The last pushed depth of one instrument and its sequence numbers."""

    levels: dict[int, dict[int, tuple[int, int]]]
    """side (+1 bids, −1 asks) → px_ticks → (lots, order count)."""
    seq_id: int = 0
    prev_seq_id: int = -1


class WsHub:
    """All connections, and the pushes built from each command's events."""

    def __init__(self, service: ExchangeService, auth_clock: Clock, limits: Limits = DEFAULT_LIMITS) -> None:
        self.service = service
        self.auth_clock = auth_clock
        self.limits = limits
        self.connections: set[Connection] = set()
        self.books: dict[str, BookFeed] = {}
        self.liquidations_seen = service.tracker.liquidation_seq
        self._adl_task: asyncio.Task[None] | None = None
        self._shared_data: dict[tuple[str, str], str] = {}
        """Push data as JSON by ``(kind, instId)``, valid until the next published command."""
        self.bot = ws_bot.BotFeeds(self)

    async def endpoint(self, socket: WebSocket) -> None:
        path = socket.path_params["kind"]
        if path not in CHANNELS_BY_PATH:
            await socket.close(code=4004)
            return
        await socket.accept()
        conn = Connection(socket, path, str(next(_conn_ids)), self.limits.max_ws_queue_bytes,
                          RequestBucket(self.limits.ws_requests_per_hour))
        self.connections.add(conn)
        tasks = {asyncio.create_task(self._read(conn)), asyncio.create_task(self._drain(conn))}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.connections.discard(conn)
            for task in tasks:
                task.cancel()

    async def _read(self, conn: Connection) -> None:
        """Handle frames until the client goes."""
        try:
            while True:
                message = await conn.socket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                self._receive(conn, message)
        except WebSocketDisconnect:
            return

    @staticmethod
    async def _drain(conn: Connection) -> None:
        """Send queued text in order; on the overflow marker close the connection (1008)."""
        while True:
            text = await conn.queue.get()
            try:
                if text is None:
                    await WsHub._drop(conn)
                    return
                conn.queued_bytes -= len(text)
                await conn.socket.send_text(text)
            except (RuntimeError, WebSocketDisconnect, TimeoutError):
                return

    @staticmethod
    async def _drop(conn: Connection) -> None:
        """Close a slow consumer (1008); if its buffers are too full for the close frame to
        leave within :data:`CLOSE_WAIT_S`, abort its transport (when the server allows)."""
        try:
            await asyncio.wait_for(conn.socket.close(*SLOW_CONSUMER_CLOSE), CLOSE_WAIT_S)
        except TimeoutError:
            abort = conn.socket.scope.get("extensions", {}).get("backstop.abort", {}).get("abort")
            if abort is not None:
                abort()

    def _receive(self, conn: Connection, message: dict[str, Any]) -> None:
        """One frame: text is handled; binary is refused with an error event (60012)."""
        text = message.get("text")
        if text is None:
            conn.send({"event": "error", "code": "60012", "msg": "Invalid request: binary frames are "
                       "not supported", "connId": conn.conn_id})
            return
        self._handle(conn, text)

    def _handle(self, conn: Connection, text: str) -> None:
        if text == "ping":
            conn.send("pong")
            return
        oversized = ws_message_error(text, self.limits)
        if oversized is not None:
            conn.send({**oversized, "connId": conn.conn_id})
            return
        try:
            message = json.loads(text)
            op, args = message["op"], message.get("args", [])
            if isinstance(op, str) and op in ws_bot.TRADE_OPS:  # answered in OKX's op format
                self.bot.trade_op(conn, message, op, args)
                return
            if not isinstance(args, list) or not all(isinstance(a, dict) for a in args):
                raise TypeError
        except (ValueError, KeyError, TypeError, RecursionError, AttributeError):
            conn.send({"event": "error", "code": "60012", "msg": f"Invalid request: {text[:200]}",
                       "connId": conn.conn_id})
            return
        try:
            self._op(conn, op, args)
        except OkxError as exc:
            conn.send({"event": "error", "code": exc.code, "msg": exc.msg, "connId": conn.conn_id})
        except Exception:  # every frame gets an answer; a bug must not drop the connection
            log.exception("unexpected error on WebSocket op %r", op)
            conn.send({"event": "error", "code": "60012", "msg": "Invalid request", "connId": conn.conn_id})

    def _op(self, conn: Connection, op: str, args: list[dict[str, Any]]) -> None:
        if op in ("login", "subscribe", "unsubscribe"):
            conn.requests.take()
        if op == "login":
            if not args:
                raise OkxError("60009", "Login failed.")
            conn.uid = authenticate_ws(self.service.keys, args[0], self.auth_clock()).uid
            conn.send({"event": "login", "code": "0", "msg": "", "connId": conn.conn_id})
        elif op in ("subscribe", "unsubscribe"):
            if not args:
                raise OkxError("60012", f"Invalid request: {op} without args")
            unique: list[dict[str, str]] = []
            for arg in args:
                text_arg = {str(k): str(v) for k, v in arg.items()}
                if text_arg not in unique:
                    unique.append(text_arg)
            for arg in unique:
                self._subscription(conn, op, arg)
        else:
            raise OkxError("60012", f"Invalid request: op {op}")

    def _subscription(self, conn: Connection, op: str, arg: dict[str, str]) -> None:
        channel = arg.get("channel", "")
        if channel not in CHANNELS_BY_PATH[conn.path]:
            raise OkxError("60018", f"Wrong URL or channel:{channel},instId:{arg.get('instId', '')} "
                                    "doesn't exist. Please use the correct URL, channel and parameters")
        if channel in PRIVATE_CHANNELS and not conn.uid:
            raise OkxError("60011", "Please log in")
        inst_id = arg.get("instId", "")
        if inst_id and self.service.catalogue.get(inst_id) is None:
            raise OkxError("60018", f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist")
        if channel in INST_ID_CHANNELS and not inst_id:
            raise OkxError("60018", f"Wrong URL or channel:{channel},instId: doesn't exist")
        if channel in INST_TYPE_CHANNELS and not arg.get("instType"):
            raise OkxError("60018", f"Wrong URL or channel:{channel},instType: doesn't exist")
        if channel == "adl-warning" and self._adl_task is None:
            self._adl_task = asyncio.get_running_loop().create_task(self._adl_warning_loop())
        if op == "unsubscribe":
            conn.subs = [s for s in conn.subs if s != arg]
            conn.send({"event": "unsubscribe", "arg": arg, "connId": conn.conn_id})
            return
        if arg in conn.subs:
            conn.send({"event": "subscribe", "arg": arg, "connId": conn.conn_id})
            return
        ensure_subscription_room(len(conn.subs), self.limits)
        conn.subs.append(arg)
        conn.send({"event": "subscribe", "arg": arg, "connId": conn.conn_id})
        self._snapshot(conn, arg)

    def _snapshot(self, conn: Connection, arg: dict[str, str]) -> None:
        """The first push after a subscription."""
        channel, inst_id = arg["channel"], arg.get("instId", "")
        if channel in ("tickers", "mark-price", "books5"):
            self._push_market(conn, arg, channel, inst_id)
        elif channel == "books":
            self._push_book_snapshot(conn, arg, inst_id)
        elif channel in ("positions", "balance_and_position"):
            self._push_account(conn, arg, channel, "snapshot")
        elif channel == "funding-rate":
            self._push_funding(conn, arg, inst_id)
        elif channel == "adl-warning":
            self._push_adl_warnings(conn, arg, lv.adl_warning_views(self.service.exchange,
                                                                    self.service.now_ms()), True)
        else:
            self.bot.snapshot(conn, arg)

    def publish(self, events: list[Any]) -> None:
        """Push what a logged command changed to every interested connection."""
        self._shared_data.clear()
        touched = Touched()
        for event in events:
            toucher = _TOUCHES.get(type(event))
            if toucher is not None:
                toucher(touched, event)
        book_updates = {i: self._book_update(i) for i in touched.books}
        records = self.service.tracker.liquidations_after(self.liquidations_seen)
        self.liquidations_seen = self.service.tracker.liquidation_seq
        adl_views = (lv.adl_warning_views(self.service.exchange, self.service.now_ms(), touched.adl_funds)
                     if touched.adl_funds else [])
        changed = ws_bot.changed_by(events)
        moved = self.bot.prepare(changed)
        for conn in list(self.connections):
            self._push_touched(conn, touched, book_updates)
            self.bot.push(conn, changed, moved)
            self._push_liquidations(conn, records)
            for arg in conn.matching("adl-warning"):
                self._push_adl_warnings(conn, arg, adl_views, True)

    def _push_touched(self, conn: Connection, touched: Touched,
                      book_updates: dict[str, dict[str, Any] | None]) -> None:
        for inst_id in touched.books | touched.marks:
            for arg in conn.matching("tickers", inst_id):
                self._push_market(conn, arg, "tickers", inst_id)
        for inst_id in touched.marks:
            for arg in conn.matching("mark-price", inst_id):
                self._push_market(conn, arg, "mark-price", inst_id)
        for inst_id, update in book_updates.items():
            for arg in conn.matching("books5", inst_id):
                self._push_market(conn, arg, "books5", inst_id)
            for arg in conn.matching("books", inst_id) if update else ():
                conn.send({"arg": arg, "action": "update", "data": [update]})
        for inst_id in touched.funding:
            for arg in conn.matching("funding-rate", inst_id):
                self._push_funding(conn, arg, inst_id)
        if not conn.uid:
            return
        self._push_orders(conn, touched.orders)
        self._push_liquidation_warnings(conn, touched.warnings)
        holds_marked = any(p.inst_id in touched.marks for p in
                           self.service.exchange.state.account_positions.get(conn.uid, {}).values())
        if conn.uid in touched.positions or holds_marked:
            event_type = touched.event_types.get(conn.uid, "filled")
            for channel in ("positions", "balance_and_position"):
                for arg in conn.matching(channel):
                    self._push_account(conn, arg, channel, event_type)

    def _push_funding(self, conn: Connection, arg: dict[str, str], inst_id: str) -> None:
        inst = self.service.catalogue.get(inst_id)
        conn.send({"arg": arg, "data": [mv.funding_view(self.service.exchange, inst, self.service.now_ms())]})

    def _push_liquidations(self, conn: Connection, records: list[Any]) -> None:
        """``liquidation-orders``: one push per settled liquidation slice."""
        catalogue = self.service.catalogue
        for record in records:
            inst = catalogue.get(record.inst_id)
            for arg in conn.matching_family("liquidation-orders", inst.inst_type, inst.inst_family):
                conn.send({"arg": arg, "data": [lv.liquidation_push(catalogue, record)]})

    def _push_liquidation_warnings(self, conn: Connection, warnings: list[ev.LiquidationWarning]) -> None:
        """``liquidation-warning``: the account's positions at risk (the isolated position, or
        the cross positions of the currency)."""
        mine = [w for w in warnings if w.uid == conn.uid]
        if not mine or not conn.matching("liquidation-warning"):
            return
        views = av.position_views(self.service.exchange, conn.uid, None, self.service.now_ms())
        for warning in mine:
            data = [v for v in views if v["mgnMode"] == warning.mgn_mode and v["ccy"] == warning.ccy
                    and (not warning.inst_id or v["instId"] == warning.inst_id)]
            for arg in conn.subs:
                if arg["channel"] != "liquidation-warning" or not data:
                    continue
                chosen = [v for v in data if arg.get("instType", "ANY") in ("ANY", v["instType"])
                          and (not arg.get("instId") or v["instId"] == arg["instId"])]
                if chosen:
                    conn.send({"arg": {**arg, "uid": str(conn.uid)}, "data": chosen})

    @staticmethod
    def _push_adl_warnings(conn: Connection, arg: dict[str, str], views: list[dict[str, Any]],
                           every_state: bool) -> None:
        for view in views:
            if arg.get("instType", "ANY") not in ("ANY", view["instType"]):
                continue
            if arg.get("instFamily") and arg["instFamily"] != view["instFamily"]:
                continue
            if every_state or view["state"] != "normal":
                conn.send({"arg": arg, "data": [view]})

    async def _adl_warning_loop(self) -> None:
        """Each second, every fund in ``warning`` or ``adl`` to its subscribers (every fund
        once a minute)."""
        beat = 0
        while True:
            await asyncio.sleep(ADL_WARNING_EVERY_S)
            beat += 1
            subscribed = [(c, a) for c in list(self.connections) for a in c.matching("adl-warning")]
            if not subscribed:
                continue
            views = lv.adl_warning_views(self.service.exchange, self.service.now_ms())
            for conn, arg in subscribed:
                self._push_adl_warnings(conn, arg, views, beat % ADL_NORMAL_EVERY == 0)

    def _shared(self, kind: str, inst_id: str, build: Callable[[], dict[str, Any]]) -> str:
        """The JSON of one push's data, built once until the next published command."""
        text = self._shared_data.get((kind, inst_id))
        if text is None:
            text = self._shared_data[(kind, inst_id)] = json.dumps(build())
        return text

    @staticmethod
    def _send_shared(conn: Connection, arg: dict[str, str], data_json: str, action: str = "") -> None:
        action_part = f', "action": "{action}"' if action else ""
        conn.send(f'{{"arg": {json.dumps(arg)}{action_part}, "data": [{data_json}]}}')

    def _push_market(self, conn: Connection, arg: dict[str, str], channel: str, inst_id: str) -> None:
        data = self._shared(channel, inst_id, lambda: self._market_data(channel, inst_id))
        self._send_shared(conn, arg, data)

    def _market_data(self, channel: str, inst_id: str) -> dict[str, Any]:
        exchange, now = self.service.exchange, self.service.now_ms()
        inst = exchange.catalogue.get(inst_id)
        if channel == "tickers":
            return mv.ticker_view(exchange, self.service.tracker, inst, now)
        if channel == "mark-price":
            return mv.mark_view(exchange, inst, now)
        return {**mv.book_view(exchange, inst, 5, now), "instId": inst_id, "seqId": self._seq(inst_id),
                "prevSeqId": -1, "checksum": 0}

    def _push_orders(self, conn: Connection, ord_ids: set[int]) -> None:
        """``orders``: each order the command touched, by its public id (an amended order's
        engine id maps back to the order it amends)."""
        tracker = self.service.tracker
        for ord_id in sorted({tracker.aliases.get(i, i) for i in ord_ids}):
            order = tracker.orders.get(ord_id)
            if order is None or order.uid != conn.uid:
                continue
            for arg in conn.matching("orders", order.inst_id):
                conn.send({"arg": {**arg, "uid": str(conn.uid)},
                           "data": [av.order_view(self.service.exchange, order)]})

    def _push_account(self, conn: Connection, arg: dict[str, str], channel: str, event_type: str) -> None:
        exchange, now = self.service.exchange, self.service.now_ms()
        inst_id = arg.get("instId")
        positions = av.position_views(exchange, conn.uid, {inst_id} if inst_id else None, now)
        if channel == "positions":
            conn.send({"arg": {**arg, "uid": str(conn.uid)}, "data": positions})
            return
        balances = [{"ccy": d["ccy"], "cashBal": d["cashBal"], "uTime": ms(now)}
                    for d in av.balance_view(exchange, conn.uid, None, now)["details"]]
        conn.send({"arg": {**arg, "uid": str(conn.uid)},
                   "data": [{"pTime": ms(now), "eventType": event_type, "balData": balances,
                             "posData": positions, "trades": []}]})

    def _seq(self, inst_id: str) -> int:
        return self.books[inst_id].seq_id if inst_id in self.books else 0

    def _levels(self, inst_id: str) -> dict[int, dict[int, tuple[int, int]]]:
        book = self.service.exchange.state.books[inst_id]
        return {side: {px: (lots, count) for px, lots, count in book.depth(side, BOOK_DEPTH)}
                for side in (1, -1)}

    def _push_book_snapshot(self, conn: Connection, arg: dict[str, str], inst_id: str) -> None:
        """The ``books`` snapshot at the last pushed version, built once per version."""
        if inst_id not in self.books:
            self.books[inst_id] = BookFeed(self._levels(inst_id))
        feed = self.books[inst_id]
        inst = self.service.catalogue.get(inst_id)
        data = self._shared("books-snapshot", inst_id,
                            lambda: self._book_data(inst, feed.levels, feed.seq_id, -1))
        self._send_shared(conn, arg, data, "snapshot")

    def _book_update(self, inst_id: str) -> dict[str, Any] | None:
        """The changed levels since the last push (size ``0`` for removed levels), or ``None``
        when nothing visible changed."""
        feed = self.books.get(inst_id)
        if feed is None:
            return None
        new = self._levels(inst_id)
        diff = {side: {px: new[side].get(px, (0, 0)) for px in new[side].keys() | feed.levels[side].keys()
                       if new[side].get(px) != feed.levels[side].get(px)} for side in (1, -1)}
        if not diff[1] and not diff[-1]:
            return None
        feed.levels, feed.prev_seq_id, feed.seq_id = new, feed.seq_id, feed.seq_id + 1
        inst = self.service.catalogue.get(inst_id)
        return self._book_data(inst, diff, feed.seq_id, feed.prev_seq_id)

    def _book_data(self, inst: Any, levels: dict[int, dict[int, tuple[int, int]]], seq_id: int,
                   prev_seq_id: int) -> dict[str, Any]:
        def rows(side: int) -> list[list[str]]:
            ordered = sorted(levels[side].items(), reverse=side == 1)
            return [[px_str(inst, px), sz_str(inst, lots), "0", str(count)] for px, (lots, count) in ordered]

        return {"asks": rows(-1), "bids": rows(1), "ts": ms(self.service.now_ms()), "checksum": 0,
                "seqId": seq_id, "prevSeqId": prev_seq_id}
