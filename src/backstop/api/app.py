"""The Starlette application: OKX v5 REST under ``/api/v5/``, WebSockets under ``/ws/v5/``,
and the admin API under ``/backstop/v1/``.

Every answer is OKX's envelope. Expected failures are :class:`OkxError` with OKX's code and
HTTP status; anything unexpected is logged and answered 50026 (HTTP 503), never a 500 page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from backstop.api import admin, dashboard, openapi, rest_account, rest_public, rest_trade
from backstop.api.auth import authenticate_rest, same_text
from backstop.api.context import Ctx
from backstop.api.limits import BUFFERED_BODY, DEFAULT_LIMITS, BodySizeLimit, Limits, RateLimiter
from backstop.api.service import Clock, ExchangeService, wall_clock_ms
from backstop.api.wire import OkxError, error, ok
from backstop.api.ws import WsHub

log = logging.getLogger("backstop.api")
Handler = Callable[[Ctx], Awaitable[Any]]

_PUBLIC_GET: dict[str, Handler] = dict(rest_public.ROUTES)
_PRIVATE_GET: dict[str, Handler] = {**rest_account.GET_ROUTES, **rest_trade.GET_ROUTES,
                                    "asset/currencies": rest_public.currencies}
_PRIVATE_POST: dict[str, Handler] = {**rest_account.POST_ROUTES, **rest_trade.POST_ITEM_ROUTES}


def _request_target(request: Request) -> str:
    """Path and query exactly as the client sent them (what OKX signs)."""
    raw_path = request.scope.get("raw_path")
    path = (raw_path if raw_path is not None else request.url.path.encode()).decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def _query(request: Request) -> dict[str, str]:
    """The query string's parameters (the last value of a repeated name)."""
    return dict(request.query_params) if request.scope.get("query_string") else {}


async def _answer(handler: Handler, ctx: Ctx) -> Response:
    result = await handler(ctx)
    return result if isinstance(result, Response) else ok(result)


def _guarded(endpoint: Callable[[Request], Awaitable[Response]]):
    """Turn :class:`OkxError` into its envelope and anything else into 50026."""
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except OkxError as exc:
            return error(exc.code, exc.msg)
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            return JSONResponse({"code": "50026", "msg": "System error, please try again later",
                                 "data": []}, status_code=503)
    return wrapper


def create_app(service: ExchangeService, admin_token: str, auth_clock: Clock = wall_clock_ms,
               limits: Limits = DEFAULT_LIMITS) -> Starlette:
    """The app around a started :class:`ExchangeService`. ``auth_clock`` is the wall clock
    that request timestamps are checked against (30 s window); ``limits`` are the abuse
    limits (:mod:`backstop.api.limits`)."""
    hub = WsHub(service, auth_clock, limits)
    limiter = RateLimiter(limits.rate_scale)
    service.add_listener(hub.publish)

    async def api_v5(request: Request) -> Response:
        path, method = request.path_params["path"], request.method
        body = request.scope[BUFFERED_BODY]
        query = _query(request)
        table = _PRIVATE_GET if method == "GET" else _PRIVATE_POST
        if method == "GET" and path in _PUBLIC_GET:
            return await _answer(_PUBLIC_GET[path], Ctx(service, 0, query, body, service.now_ms()))
        if path not in table:
            return error("404", "Endpoint not found")
        key = authenticate_rest(service.keys, request.headers, method, _request_target(request),
                                body, auth_clock())
        limiter.check(key.api_key, method, path)
        return await _answer(table[path], Ctx(service, key.uid, query, body, service.now_ms(), limits))

    async def backstop_v1(request: Request) -> Response:
        given = request.headers.get("X-Backstop-Admin", "")
        if not same_text(given, admin_token):
            raise OkxError("50111", "Invalid X-Backstop-Admin token")
        table = admin.GET_ROUTES if request.method == "GET" else admin.POST_ROUTES
        path = request.path_params["path"]
        if path not in table:
            return error("404", "Endpoint not found")
        ctx = Ctx(service, 0, _query(request), request.scope[BUFFERED_BODY], service.now_ms())
        return await _answer(table[path], ctx)

    routes = [
        Route(openapi.DOC_PATH, openapi.endpoint, methods=["GET"]),
        Route("/api/v5/{path:path}", _guarded(api_v5), methods=["GET", "POST"]),
        Route("/backstop/v1/{path:path}", _guarded(backstop_v1), methods=["GET", "POST"]),
        WebSocketRoute("/ws/v5/{kind}", hub.endpoint),
        *dashboard.routes(service),
    ]
    return Starlette(routes=routes, middleware=[Middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)])
