"""The live dashboard: the page at ``/``, its assets under ``/dashboard/static/``, a JSON
snapshot at ``/dashboard/snapshot`` and its WebSocket at ``/ws/dashboard``.

The WebSocket sends ``{"type": "snapshot", ...}`` on connect, then ``{"type": "delta", ...}``
messages built from engine events: new liquidation-feed rows, fund chart points and fund
events as they happen, and the aggregates (open interest, ADL queue and distribution,
margin-ratio histogram) recomputed from state at most every :data:`FLUSH_S` seconds while
anyone is watching. The listener the service calls only appends to bounded buffers, so with
no dashboard open it costs next to nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from backstop.api import dashboard_views as dv
from backstop.api.service import ExchangeService
from backstop.api.wire import money, ms
from backstop.model import events as ev

STATIC_DIR = Path(__file__).parent / "static"
FLUSH_S = 0.25
FEED_ROWS = 200
FUND_EVENT_ROWS = 200
FUND_POINTS = 600
QUEUE_LIMIT = 256
"""Messages waiting for one slow dashboard before it is dropped."""

log = logging.getLogger("backstop.api.dashboard")


@dataclass(slots=True)
class Pending:
    """What happened since the last push."""

    feed: list[dict[str, Any]] = field(default_factory=list)
    fund_events: list[dict[str, Any]] = field(default_factory=list)
    fund_points: list[list[Any]] = field(default_factory=list)
    """``[fundId, ts, balance]``."""
    dirty: bool = False


@dataclass(slots=True, eq=False)
class Viewer:
    """One dashboard WebSocket and its outgoing queue."""

    socket: WebSocket
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))


class DashboardHub:
    """Buffers built from engine events, and the viewers they are pushed to."""

    def __init__(self, service: ExchangeService) -> None:
        self.service = service
        self.viewers: set[Viewer] = set()
        self.feed: deque[dict[str, Any]] = deque(maxlen=FEED_ROWS)
        self.fund_events: deque[dict[str, Any]] = deque(maxlen=FUND_EVENT_ROWS)
        self.points: dict[str, deque[list[Any]]] = {}
        self.pending = Pending()
        self._open_rows: dict[tuple[int, str, str], dict[str, Any]] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._seed_from_state()

    def _seed_from_state(self) -> None:
        """Fund charts and the fund-events table from the funds' own history (state replayed
        from the log), so they survive a restart; the liquidation feed starts empty."""
        for fund in self.service.exchange.state.funds.values():
            points = self._points_of(fund.fund_id)
            for record in fund.history[-FUND_POINTS:]:
                points.append([ms(record.ts), money(record.balance)])
            for record in fund.history[-FUND_EVENT_ROWS:]:
                self.fund_events.append({
                    "ts": ms(record.ts), "fundId": fund.fund_id, "instFamily": fund.inst_family,
                    "ccy": fund.ccy, "type": record.type, "amt": money(record.amt),
                    "balance": money(record.balance), "adlType": record.adl_type})
        ordered = sorted(self.fund_events, key=lambda row: int(row["ts"]))
        self.fund_events = deque(ordered, maxlen=FUND_EVENT_ROWS)

    def _points_of(self, fund_id: str) -> deque[list[Any]]:
        return self.points.setdefault(fund_id, deque(maxlen=FUND_POINTS))

    # -- engine events -----------------------------------------------------------------------
    def publish(self, events: list[Any]) -> None:
        """The service's listener: record what the dashboard shows; never raises."""
        try:
            for event in events:
                handler = _HANDLERS.get(type(event))
                if handler is not None:
                    handler(self, event)
            self.pending.dirty = self.pending.dirty or bool(events)
            self._schedule()
        except Exception:  # a display bug must never fail a logged command
            log.exception("dashboard listener failed")

    def _fund_changed(self, e: ev.InsuranceFundChanged) -> None:
        fund = self.service.exchange.state.funds.get(e.fund_id)
        row = dv.fund_event_row(fund, e)
        self.fund_events.append(row)
        self.pending.fund_events.append(row)
        point = [ms(e.ts), money(e.balance)]
        self._points_of(e.fund_id).append(point)
        self.pending.fund_points.append([e.fund_id, *point])

    def _adl_state(self, e: ev.AdlStateChanged) -> None:
        row = dv.adl_state_row(self.service.exchange.state.funds.get(e.fund_id), e)
        self.fund_events.append(row)
        self.pending.fund_events.append(row)

    def _liquidation_started(self, e: ev.LiquidationStarted) -> None:
        row = dv.liquidation_row(self.service.exchange, e)
        self._open_rows[(e.uid, e.inst_id, e.mgn_mode)] = row
        self._feed_row(row)

    def _liquidation_settled(self, e: ev.LiquidationSettled) -> None:
        row = self._open_rows.pop((e.uid, e.inst_id, e.mgn_mode), None)
        if row is not None:
            dv.settle_row(row, e)

    def _deleveraged(self, e: ev.AutoDeleveraged) -> None:
        self._feed_row(dv.adl_row(self.service.exchange, e))

    def _haircut(self, e: ev.ProfitHaircut) -> None:
        self._feed_row(dv.haircut_row(self.service.exchange, e))

    def _feed_row(self, row: dict[str, Any]) -> None:
        self.feed.append(row)
        self.pending.feed.append(row)

    # -- pushing -----------------------------------------------------------------------------
    def _schedule(self) -> None:
        if not self.viewers or self._flush is not None:
            if not self.viewers:
                self.pending = Pending()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._flush = loop.call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        """Send what changed since the last push to every viewer."""
        self._flush = None
        pending, self.pending = self.pending, Pending()
        if not self.viewers or not pending.dirty:
            return
        now = self.service.now_ms()
        delta = {"type": "delta", "ts": ms(now), "feed": pending.feed, "fundEvents": pending.fund_events,
                 "fundPoints": pending.fund_points, "funds": self._fund_balances(),
                 **dv.aggregates(self.service.exchange, now)}
        self._broadcast(json.dumps(delta))

    def _fund_balances(self) -> list[dict[str, str]]:
        exchange = self.service.exchange
        return [{"fundId": f.fund_id, "balance": money(dv.fund_balance(exchange, f)), "adlState": f.adl_state}
                for f in exchange.state.funds.values()]

    def _broadcast(self, text: str) -> None:
        for viewer in list(self.viewers):
            try:
                viewer.queue.put_nowait(text)
            except asyncio.QueueFull:  # too slow: drop it rather than buffer without bound
                self.viewers.discard(viewer)

    def snapshot(self) -> dict[str, Any]:
        """Everything the page needs to draw from scratch."""
        exchange, now = self.service.exchange, self.service.now_ms()
        points = {fund_id: list(rows) for fund_id, rows in self.points.items()}
        return {"type": "snapshot", "ts": ms(now), "funds": dv.fund_summaries(exchange, points),
                "feed": list(self.feed), "fundEvents": list(self.fund_events),
                "marginLabels": dv.margin_bucket_labels(), **dv.aggregates(exchange, now)}

    async def endpoint(self, socket: WebSocket) -> None:
        """``/ws/dashboard``: a snapshot, then deltas; ``ping`` is answered ``pong``."""
        await socket.accept()
        viewer = Viewer(socket)
        viewer.queue.put_nowait(json.dumps(self.snapshot()))
        self.viewers.add(viewer)
        sender = asyncio.create_task(self._drain(viewer))
        try:
            while True:
                if await socket.receive_text() == "ping":
                    viewer.queue.put_nowait("pong")
        except (WebSocketDisconnect, asyncio.QueueFull):
            pass
        finally:
            self.viewers.discard(viewer)
            sender.cancel()

    async def _drain(self, viewer: Viewer) -> None:
        while viewer in self.viewers or not viewer.queue.empty():
            text = await viewer.queue.get()
            try:
                await viewer.socket.send_text(text)
            except (RuntimeError, WebSocketDisconnect):
                return
        await viewer.socket.close(code=1013)


_HANDLERS: dict[type, Any] = {
    ev.InsuranceFundChanged: DashboardHub._fund_changed,
    ev.AdlStateChanged: DashboardHub._adl_state,
    ev.LiquidationStarted: DashboardHub._liquidation_started,
    ev.LiquidationSettled: DashboardHub._liquidation_settled,
    ev.AutoDeleveraged: DashboardHub._deleveraged,
    ev.ProfitHaircut: DashboardHub._haircut,
}


async def _page(_request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


def routes(service: ExchangeService) -> list[BaseRoute]:
    """The dashboard's routes; registers its listener on ``service``."""
    hub = DashboardHub(service)
    service.add_listener(hub.publish)

    async def snapshot(_request: Request) -> Response:
        return JSONResponse(hub.snapshot())

    return [Route("/", _page, methods=["GET"]),
            Route("/dashboard/snapshot", snapshot, methods=["GET"]),
            Mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static"),
            WebSocketRoute("/ws/dashboard", hub.endpoint)]
