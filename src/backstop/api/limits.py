"""Abuse limits for the OKX-compatible API, in OKX's style. Defaults in :class:`Limits`.

- **Rate limits** (:class:`RateLimiter`): a token bucket per API key and endpoint group, sized
  like OKX's published limits (``trade/order`` 60 requests per 2 s, ``trade/batch-orders``
  300 per 2 s, ``account/balance`` 10 per 2 s, ...; :data:`RATE_RULES`). Over the limit the
  request is refused before it runs: code ``50011``, HTTP 429, ``"Too Many Requests"``.
  Buckets exist only for authenticated keys, so their number is bounded by the keys issued.
  Public routes are not limited (OKX limits them per IP).
- **Body size** (:class:`BodySizeLimit`, ASGI middleware): a request body over
  ``max_body_bytes`` (64 KiB, OKX's limit for a WebSocket request) is refused with HTTP 413
  and code ``50025`` (OKX's "Parameter {0} count exceeds the limit {1}") before any handler
  sees it; the body is read at most ``max_body_bytes + 1`` bytes far.
- **WebSocket message size**: a text frame over ``max_ws_message_bytes`` is answered with the
  error event ``60012`` (OKX's "Illegal request") and not parsed; uvicorn closes the
  connection (1009) for frames over :meth:`Limits.ws_transport_max`.
- **Subscriptions per connection**: beyond ``max_ws_subscriptions`` a subscribe is answered
  with the error event ``60020`` (OKX's "subscription amount exceeds the limit").
- **WebSocket requests per connection**: ``subscribe``/``unsubscribe``/``login`` requests
  take a token from a per-connection bucket of ``ws_requests_per_hour`` (OKX: 480 per hour
  per connection), refilled smoothly; an empty bucket answers the error event ``60014``
  (OKX's "Requests too frequent") and the request is not run.
- **Outbound queue per connection**: pushes wait in a queue bounded by
  ``max_ws_queue_bytes``; a client that reads too slowly to keep it below that is sent no
  more pushes and is disconnected (close code 1008, reason "slow consumer"), so a reader
  that stops reading costs at most that much memory.
- **HTTP connections** (:mod:`backstop.api.http_guard`): at most ``max_connections`` open
  connections (beyond it a new one is closed at once) and ``header_timeout_s`` seconds to
  send a complete request head (then the connection is closed).
- **Open orders per account**: a new limit order beyond ``max_open_orders`` open orders
  (OKX allows 4,000 per account) is refused per item with ``sCode 51174`` (OKX's "The number
  of pending orders reached the upper limit"). The engine is unchanged: the API layer counts
  the account's open orders in the engine state before it submits the order. Market orders
  never rest and are not counted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from backstop.api.wire import OkxError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A token bucket: ``capacity`` requests per ``window_s`` seconds, refilled smoothly."""

    group: str
    capacity: int
    window_s: float = 2.0


RATE_RULES: dict[tuple[str, str], Rule] = {
    ("POST", "trade/order"): Rule("trade/order", 60),
    ("POST", "trade/batch-orders"): Rule("trade/batch-orders", 300),
    ("POST", "trade/cancel-order"): Rule("trade/cancel-order", 60),
    ("POST", "trade/cancel-batch-orders"): Rule("trade/cancel-batch-orders", 300),
    ("GET", "trade/order"): Rule("trade/order:get", 60),
    ("GET", "trade/orders-pending"): Rule("trade/orders-pending", 60),
    ("GET", "trade/orders-history"): Rule("trade/orders-history", 40),
    ("GET", "trade/fills"): Rule("trade/fills", 60),
    ("GET", "account/balance"): Rule("account/balance", 10),
    ("GET", "account/positions"): Rule("account/positions", 10),
    ("POST", "account/set-leverage"): Rule("account/set-leverage", 20),
}
"""OKX's per-key limits by route (requests per 2 s); other private routes use
:data:`DEFAULT_RULE`."""
DEFAULT_RULE = Rule("private", 20)


@dataclass(frozen=True, slots=True)
class Limits:
    """Every limit, with OKX-like defaults. ``rate_scale`` multiplies every bucket's capacity
    (``0`` turns rate limiting off)."""

    rate_scale: float = 1.0
    max_body_bytes: int = 64 * 1024
    max_ws_message_bytes: int = 64 * 1024
    max_ws_subscriptions: int = 256
    max_open_orders: int = 4000
    ws_requests_per_hour: int = 480
    max_ws_queue_bytes: int = 4 * 1024 * 1024
    max_connections: int = 1024
    header_timeout_s: float = 10.0

    def ws_transport_max(self) -> int:
        """uvicorn's hard frame limit: far above the answered limit, so that oversized frames
        up to it get an error event rather than a dropped connection."""
        return max(16 * self.max_ws_message_bytes, 1024 * 1024)


DEFAULT_LIMITS = Limits()


class RateLimiter:
    """Token buckets keyed by ``(api key, group)``."""

    def __init__(self, scale: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.scale = scale
        self.clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def check(self, api_key: str, method: str, path: str) -> None:
        """Take one token for this key and route, or raise 50011."""
        if self.scale <= 0:
            return
        rule = RATE_RULES.get((method, path), DEFAULT_RULE)
        capacity = rule.capacity * self.scale
        now = self.clock()
        tokens, last = self._buckets.get((api_key, rule.group), (capacity, now))
        tokens = min(capacity, tokens + (now - last) * capacity / rule.window_s)
        if tokens < 1:
            self._buckets[(api_key, rule.group)] = (tokens, now)
            raise OkxError("50011", "Too Many Requests")
        self._buckets[(api_key, rule.group)] = (tokens - 1, now)


class RequestBucket:
    """One connection's token bucket for WebSocket ``subscribe``/``unsubscribe``/``login``
    requests: ``per_hour`` tokens, refilled smoothly (``per_hour`` ≤ 0: unlimited)."""

    def __init__(self, per_hour: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_hour = per_hour
        self.clock = clock
        self.tokens = float(per_hour)
        self.last = clock()

    def take(self) -> None:
        """Take one token, or raise 60014."""
        if self.per_hour <= 0:
            return
        now = self.clock()
        self.tokens = min(self.per_hour, self.tokens + (now - self.last) * self.per_hour / 3600)
        self.last = now
        if self.tokens < 1:
            raise OkxError("60014", "Requests too frequent.")
        self.tokens -= 1


def ensure_open_order_room(open_orders: int, max_open_orders: int) -> None:
    """Refuse (51174) a resting order that would exceed the account's open-order cap."""
    if open_orders >= max_open_orders:
        raise OkxError("51174", f"The number of pending orders reached the upper limit of "
                                f"{max_open_orders} (orders).")


def ws_message_error(text: str, limits: Limits) -> dict[str, str] | None:
    """The error event for an oversized WebSocket message, else ``None``."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= limits.max_ws_message_bytes:
        return None
    return {"event": "error", "code": "60012",
            "msg": f"Illegal request: message of {size} bytes exceeds {limits.max_ws_message_bytes}"}


def ensure_subscription_room(current: int, limits: Limits) -> None:
    """Refuse (60020) a subscription beyond the per-connection cap."""
    if current >= limits.max_ws_subscriptions:
        raise OkxError("60020", f"Subscription amount exceeds the limit "
                                f"{limits.max_ws_subscriptions} per connection")


BUFFERED_BODY = "backstop.body"
"""The scope key under which :class:`BodySizeLimit` leaves the whole request body."""


class BodySizeLimit:
    """ASGI middleware: HTTP bodies over ``max_bytes`` get 413 / 50025 before the app runs.

    The body is buffered (at most ``max_bytes + 1`` bytes) and handed to the app whole, both
    through ``receive`` and as ``scope[BUFFERED_BODY]``."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_LIMITS.max_body_bytes) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._declared_too_large(scope):
            await self._refuse(send)
            return
        body = await self._read(receive)
        if body is None:
            await self._refuse(send)
            return
        scope[BUFFERED_BODY] = body
        await self.app(scope, _replay(body, receive), send)

    def _declared_too_large(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    return int(value) > self.max_bytes
                except ValueError:
                    return False
        return False

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` once it passes the limit."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, send: Send) -> None:
        payload = json.dumps({"code": "50025", "msg": f"Request body exceeds the limit "
                                                      f"{self.max_bytes} bytes", "data": []}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the buffered body once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay
