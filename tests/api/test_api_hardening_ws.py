"""WebSocket abuse (issue 10, findings 1 and 5) against a real server on loopback, with real
``websockets`` clients: a repeated-subscription frame, a reader that stops reading, a request
flood, and non-ASCII login credentials."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from serverkit import ServerProcess, new_account

BTC = "BTC-USDT-SWAP"
BOOKS = {"channel": "books", "instId": BTC}
LIMITS = {"rate_scale": 0, "max_ws_queue_bytes": 64 * 1024, "ws_requests_per_hour": 100_000}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("ws-abuse"), limits=LIMITS)
    srv.start()
    deep_book(srv.url, levels=200)
    yield srv
    srv.stop()


def deep_book(url: str, levels: int) -> None:
    """``levels`` resting bids at distinct prices, so a ``books`` snapshot is large."""
    maker = new_account(url, usdt="10000000")
    for start in range(0, levels, 20):
        batch = [{"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "0.01",
                  "px": str(50000 + i)} for i in range(start, start + 20)]
        assert maker.post("/api/v5/trade/batch-orders", batch).json()["code"] == "0"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def ws_url(server: ServerProcess, kind: str = "public") -> str:
    return server.url.replace("http", "ws") + f"/ws/v5/{kind}"


async def drain(ws, quiet_s: float = 0.5) -> list:
    """Every message until ``quiet_s`` passes with none."""
    messages = []
    while True:
        try:
            async with asyncio.timeout(quiet_s):
                raw = await ws.recv()
        except TimeoutError:
            return messages
        messages.append(raw if raw == "pong" else json.loads(raw))


def test_a_repeated_subscription_frame_is_answered_once(server):
    frame = json.dumps({"op": "subscribe", "args": [BOOKS] * 1300})
    assert len(frame) > 55_000

    async def run() -> list:
        async with websockets.connect(ws_url(server), max_size=None) as ws:
            await ws.send(frame)
            first = await drain(ws)
            await ws.send(frame)  # already subscribed: acknowledged, no second snapshot
            return first + await drain(ws)

    messages = asyncio.run(run())
    acks = [m for m in messages if m.get("event") == "subscribe"]
    snapshots = [m for m in messages if m.get("action") == "snapshot"]
    assert len(acks) == 2 and len(snapshots) == 1
    assert len(snapshots[0]["data"][0]["bids"]) == 200


def test_unread_subscription_frames_neither_stall_nor_grow_the_server(server):
    """The finding: 12 such frames from a client that never reads took 120 → 357 MiB and
    stalled every request 3-5 s per frame. Now the frames cost one snapshot each at most."""
    frame = json.dumps({"op": "subscribe", "args": [BOOKS] * 1300})
    before = rss_mib(server.proc.pid)

    async def run() -> float:
        async with websockets.connect(ws_url(server), max_size=None, max_queue=1, close_timeout=1) as ws:
            for _ in range(12):
                await ws.send(frame)
            started = time.monotonic()
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
                answer = await http.get("/api/v5/public/time")
            assert answer.json()["code"] == "0"
            return time.monotonic() - started

    asyncio.run(run())
    assert rss_mib(server.proc.pid) - before < 40


def test_a_reader_that_stops_reading_is_disconnected_not_buffered(server):
    """Each unsubscribe/subscribe pair queues a ~8 KB snapshot; a client that reads nothing
    passes the 64 KiB queue bound (after the kernel's socket buffers fill) and is closed."""
    cycle = [json.dumps({"op": op, "args": [BOOKS]}) for op in ("subscribe", "unsubscribe")]
    before = rss_mib(server.proc.pid)

    async def run() -> None:
        async with websockets.connect(ws_url(server), max_size=None, max_queue=1, close_timeout=1) as ws:
            for _ in range(2500):
                for frame in cycle:
                    await ws.send(frame)
            await asyncio.sleep(1.5)
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(30):
                    while True:
                        await ws.recv()
            assert closed.value.rcvd is None or closed.value.rcvd.code == 1008

    asyncio.run(run())
    assert rss_mib(server.proc.pid) - before < 40
    assert httpx.get(f"{server.url}/api/v5/public/time").json()["code"] == "0"


def test_subscribe_requests_beyond_the_hourly_bucket_get_60014(tmp_path):
    srv = ServerProcess(tmp_path, limits={"ws_requests_per_hour": 3})
    srv.start()

    async def run() -> list:
        frame = json.dumps({"op": "subscribe", "args": [{"channel": "tickers", "instId": BTC}]})
        async with websockets.connect(ws_url(srv)) as ws:
            for _ in range(4):
                await ws.send(frame)
            return await drain(ws)

    try:
        messages = asyncio.run(run())
    finally:
        srv.stop()
    events = [m["event"] for m in messages if "event" in m]
    assert events == ["subscribe", "subscribe", "subscribe", "error"]
    assert next(m for m in messages if m.get("event") == "error")["code"] == "60014"


@pytest.mark.parametrize(("field", "value", "code"), [
    ("passphrase", "pässwörd", "60024"),
    ("passphrase", "\ud800", "60024"),
    ("sign", "签名", "60007"),
    ("timestamp", "١٧٠٠٠٠٠٠٠٠", "60004"),
])
def test_non_ascii_login_gets_an_error_event_and_keeps_the_connection(server, field, value, code):
    key = new_account(server.url).key
    args = {"apiKey": key["apiKey"], "passphrase": key["passphrase"], "timestamp": str(int(time.time())),
            "sign": "x", field: value}

    async def run() -> list:
        async with websockets.connect(ws_url(server, "private")) as ws:
            await ws.send(json.dumps({"op": "login", "args": [args]}))
            answer = await drain(ws)
            await ws.send("ping")
            return answer + await drain(ws)

    messages = asyncio.run(run())
    assert messages[0]["event"] == "error" and messages[0]["code"] == code
    assert messages[-1] == "pong"
