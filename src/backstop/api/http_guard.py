"""uvicorn's httptools protocol with three guards (:func:`guarded_protocol`):

- **connection cap**: a connection that would make more than ``max_connections`` open ones
  (HTTP and WebSocket together) is answered ``503`` with OKX's envelope (code ``50001``) and
  closed before anything is read;
- **header timeout**: each request head (request line and headers) must arrive complete
  within ``header_timeout_s`` seconds of the connection opening or of the request's first
  byte; otherwise the connection is closed, so a slowloris client holds a descriptor for at
  most that long;
- **malformed HTTP**: a request the parser refuses (bad header bytes, bad request line) is
  answered ``400`` with the envelope ``{"code": "400", "msg": "Bad Request: ...", "data": []}``
  instead of uvicorn's plain text.

:class:`AbortableWebSocketProtocol` (uvicorn's ``websockets-sansio`` protocol) puts the
connection's ``transport.abort`` in the scope (``extensions["backstop.abort"]["abort"]``), so
the app can drop a slow consumer whose socket buffers are full, where a close frame could
never be sent (:mod:`backstop.api.ws`).
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

ABORT_EXTENSION = "backstop.abort"


def _envelope(status: bytes, code: str, msg: str) -> bytes:
    body = json.dumps({"code": code, "msg": msg, "data": []}).encode()
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """See the module docstring; the limits are class attributes set by :func:`guarded_protocol`."""

    max_connections = 1024
    header_timeout_s = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_envelope(b"503 Service Unavailable", "50001",
                                      "Service temporarily unavailable: too many connections"))
            transport.close()
            return
        self._start_head_timer()

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head_timer()

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self.transport.write(_envelope(b"400 Bad Request", "400", f"Bad Request: {msg}"))
        self.transport.close()


def guarded_protocol(max_connections: int, header_timeout_s: float) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    return type("GuardedHttp", (GuardedHttpToolsProtocol,),
                {"max_connections": max_connections, "header_timeout_s": header_timeout_s})


class AbortableWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol that lets the app abort its transport."""

    async def run_asgi(self) -> None:
        self.scope["extensions"][ABORT_EXTENSION] = {"abort": self.transport.abort}
        await super().run_asgi()
