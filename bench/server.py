"""Benchmark the local OKX server: authenticated REST orders, the trivial-endpoint ceiling of the
same ASGI stack, a fixed 500 orders/s offered load, and WebSocket push fan-out.

Run: ``python bench/server.py`` (or ``--quick``). It starts ``backstop serve`` (manual market,
SQLite log with ``synchronous=FULL`` in a temp dir, or ``--db postgresql://...``) as a
subprocess on a free loopback port, and drives it from ``--procs`` client processes running
aiohttp on asyncio with ``--conns`` keep-alive connections in all. Every order is signed as
OKX does (HMAC-SHA256) and is a resting post-only-priced limit order on BTC-USDT-SWAP from one
of ``--accounts`` funded accounts (far enough from the mark that nothing fills, so each
request is one ``PlaceOrder`` command: margin check, book insert, durable log write, ack).

Figures, in this order, from one run:
1. ceiling: ``GET /api/v5/public/time`` (same Starlette app, same route, OKX envelope), closed
   loop, requests/s;
2. orders: ``POST /api/v5/trade/order``, closed loop, orders/s, p50/p99 latency, and the
   share of (1);
3. offered load: orders sent on a fixed schedule at ``--rate`` (default 500/s); latency is
   measured from the scheduled send time, so a stall is not hidden (no coordinated omission);
4. fan-out: ``--subs`` WebSocket clients subscribed to ``mark-price``; an admin index update
   is sent and the time until the last subscriber has the push is recorded (median, p99, max
   over ``--pushes`` updates).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import multiprocessing as mp
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime

import aiohttp
import httpx

ADMIN = "bench-admin-token"
INST = "BTC-USDT-SWAP"
ORDER_PATH = "/api/v5/trade/order"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per closed-loop phase")
    parser.add_argument("--conns", type=int, default=32, help="concurrent connections in all")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--accounts", type=int, default=64)
    parser.add_argument("--rate", type=float, default=500.0, help="offered orders/s in phase 3")
    parser.add_argument("--subs", type=int, default=500)
    parser.add_argument("--pushes", type=int, default=30)
    parser.add_argument("--db", default=None, help="log URL (default: SQLite in a temp dir)")
    parser.add_argument("--quick", action="store_true", help="3 s phases, 10 pushes")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.pushes = 3.0, 10
    return args


# -- the server ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: str, db: str | None) -> tuple[subprocess.Popen, str]:
    """The server with per-key rate limits off (``rate_scale=0``): the bench measures the
    stack, not OKX's 60-per-2-s order budget per key."""
    port = free_port()
    code = ("from pathlib import Path; from backstop.serve import run_server; "
            "from backstop.api.limits import Limits; "
            f"run_server(port={port}, data_dir=Path({data_dir!r}), db={db!r}, "
            "limits=Limits(rate_scale=0))")
    env = {**os.environ, "BACKSTOP_ADMIN_TOKEN": ADMIN}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/api/v5/public/time", timeout=0.5)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def create_accounts(url: str, count: int) -> list[dict[str, str]]:
    with httpx.Client(base_url=url, headers={"X-Backstop-Admin": ADMIN}, timeout=30) as http:
        keys = []
        for _ in range(count):
            body = http.post("/backstop/v1/accounts", json={"deposits": {"USDT": "100000000"}}).json()
            keys.append(body["data"][0])
        return keys


# -- clients ---------------------------------------------------------------------------------
def signed_headers(key: dict[str, str], method: str, path: str, body: str) -> dict[str, str]:
    ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    mac = hmac.new(key["secretKey"].encode(), (ts + method + path + body).encode(), hashlib.sha256)
    return {"OK-ACCESS-KEY": key["apiKey"], "OK-ACCESS-PASSPHRASE": key["passphrase"],
            "OK-ACCESS-TIMESTAMP": ts, "OK-ACCESS-SIGN": base64.b64encode(mac.digest()).decode(),
            "Content-Type": "application/json"}


class OrderMaker:
    """Resting limit orders that never cross: buys 20–30% under the mark, sells above it."""

    def __init__(self, key: dict[str, str], salt: int) -> None:
        self.key, self.n = key, salt

    def request(self) -> tuple[dict[str, str], str]:
        self.n += 1
        buy = self.n % 2 == 0
        px = (80000 if buy else 140000) + (self.n % 1000) * (-1 if buy else 1)
        body = json.dumps({"instId": INST, "tdMode": "cross", "side": "buy" if buy else "sell",
                           "ordType": "limit", "sz": "0.01", "px": str(px)})
        return signed_headers(self.key, "POST", ORDER_PATH, body), body


async def _one(http: aiohttp.ClientSession, url: str, kind: str, maker: OrderMaker | None) -> bool:
    if kind == "trivial":
        async with http.get(url + "/api/v5/public/time") as response:
            return (await response.json())["code"] == "0"
    headers, body = maker.request()  # type: ignore[union-attr]
    async with http.post(url + ORDER_PATH, data=body, headers=headers) as response:
        data = await response.json()
        return data["code"] == "0"


async def _closed_loop(url: str, kind: str, keys: list[dict[str, str]], conns: int, until: float,
                       start_at: float) -> tuple[list[float], int]:
    connector = aiohttp.TCPConnector(limit=conns)
    latencies: list[float] = []
    errors = 0
    while time.time() < start_at:
        await asyncio.sleep(0.005)

    async def worker(i: int) -> None:
        nonlocal errors
        maker = OrderMaker(keys[i % len(keys)], i * 7919)
        while time.time() < until:
            t0 = time.perf_counter()
            ok = await _one(http, url, kind, maker)
            latencies.append(time.perf_counter() - t0)
            errors += not ok

    async with aiohttp.ClientSession(connector=connector) as http:
        await _one(http, url, "trivial", None)
        await asyncio.gather(*(worker(i) for i in range(conns)))
    return latencies, errors


async def _open_loop(url: str, keys: list[dict[str, str]], rate: float, seconds: float,
                     start_at: float) -> tuple[list[float], int]:
    """Orders on a fixed schedule; latency from the scheduled time to the answer."""
    connector = aiohttp.TCPConnector(limit=256)
    latencies: list[float] = []
    errors = 0

    async def send(i: int, scheduled: float) -> None:
        nonlocal errors
        ok = await _one(http, url, "order", makers[i % len(makers)])
        latencies.append(time.perf_counter() - scheduled)
        errors += not ok

    makers = [OrderMaker(k, 31 * i) for i, k in enumerate(keys)]
    async with aiohttp.ClientSession(connector=connector) as http:
        await _one(http, url, "trivial", None)
        while time.time() < start_at:
            await asyncio.sleep(0.005)
        t_start, tasks = time.perf_counter(), []
        for i in range(int(rate * seconds)):
            scheduled = t_start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(i, scheduled)))
        await asyncio.gather(*tasks)
    return latencies, errors


def _client_proc(args: tuple) -> tuple[list[float], int]:
    mode, url, keys, conns, seconds, rate, start_at = args
    if mode == "open":
        return asyncio.run(_open_loop(url, keys, rate, seconds, start_at))
    return asyncio.run(_closed_loop(url, mode, keys, conns, start_at + seconds, start_at))


def run_phase(pool, mode: str, url: str, keys, conns: int, procs: int, seconds: float,
              rate: float = 0.0) -> dict[str, float]:
    """Run one phase across the client processes; merge their latencies."""
    start_at = time.time() + 0.5
    share = [keys[i::procs] for i in range(procs)]
    jobs = [(mode, url, share[i], max(1, conns // procs), seconds, rate / procs, start_at)
            for i in range(procs)]
    results = pool.map(_client_proc, jobs)
    latencies = sorted(x for lat, _e in results for x in lat)
    errors = sum(e for _l, e in results)
    return {"count": len(latencies), "rate": len(latencies) / seconds, "errors": errors,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


# -- WebSocket fan-out ------------------------------------------------------------------------
async def fan_out(url: str, subs: int, pushes: int) -> dict[str, float]:
    """``subs`` subscribers to ``mark-price``; per index update, send → last subscriber has it."""
    ws_url = url.replace("http", "ws") + "/ws/v5/public"
    arg = {"channel": "mark-price", "instId": INST}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = await asyncio.gather(*(http.ws_connect(ws_url, max_msg_size=0) for _ in range(subs)))
        for ws in sockets:
            await ws.send_str(json.dumps({"op": "subscribe", "args": [arg]}))
        for ws in sockets:  # the ack and the snapshot push
            await ws.receive()
            await ws.receive()
        times = []
        for i in range(pushes):
            px = str(100000 + (i % 2) * 1000 + i)
            t0 = time.perf_counter()
            waits = [asyncio.create_task(_next_push(ws)) for ws in sockets]
            async with http.post(url + "/backstop/v1/index-price", headers={"X-Backstop-Admin": ADMIN},
                                 json={"instFamily": "BTC-USDT", "px": px}) as response:
                await response.read()
            arrivals = await asyncio.gather(*waits)
            times.append(max(arrivals) - t0)
        await asyncio.gather(*(ws.close() for ws in sockets))
    times.sort()
    return {"subs": subs, "pushes": pushes, "p50_ms": 1000 * statistics.median(times),
            "p99_ms": 1000 * times[min(len(times) - 1, int(len(times) * 0.99))], "max_ms": 1000 * times[-1]}


async def _next_push(ws) -> float:
    while True:
        message = await ws.receive()
        if message.type == aiohttp.WSMsgType.TEXT and message.data.startswith('{"arg"'):
            return time.perf_counter()


# -- report ------------------------------------------------------------------------------------
def main() -> None:
    args = parse_args()
    data_dir = tempfile.mkdtemp(prefix="backstop-bench-")
    proc, url = start_server(data_dir, args.db)
    try:
        keys = create_accounts(url, args.accounts)
        ctx = mp.get_context("spawn")
        with ctx.Pool(args.procs) as pool:
            ceiling = run_phase(pool, "trivial", url, keys, args.conns, args.procs, args.seconds)
            orders = run_phase(pool, "order", url, keys, args.conns, args.procs, args.seconds)
            offered = run_phase(pool, "open", url, keys, args.conns, args.procs, args.seconds, args.rate)
        fan = asyncio.run(fan_out(url, args.subs, args.pushes))
    finally:
        proc.terminate()
        proc.wait(10)
    report(args, ceiling, orders, offered, fan)


def report(args, ceiling: dict, orders: dict, offered: dict, fan: dict) -> None:
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}; log: {args.db or 'SQLite (WAL, synchronous=FULL)'}; "
          f"{args.procs} client procs, {args.conns} connections, {args.accounts} accounts, "
          f"{args.seconds:g} s phases")
    print("| figure | value | p50 | p99 | errors |")
    print("|---|---|---|---|---|")
    print(f"| trivial JSON ceiling (`GET public/time`) | {ceiling['rate']:,.0f} req/s | "
          f"{ceiling['p50_ms']:.2f} ms | {ceiling['p99_ms']:.2f} ms | {ceiling['errors']} |")
    print(f"| orders, closed loop (`POST trade/order`) | {orders['rate']:,.0f} orders/s "
          f"({orders['rate'] / ceiling['rate']:.0%} of ceiling) | {orders['p50_ms']:.2f} ms | "
          f"{orders['p99_ms']:.2f} ms | {orders['errors']} |")
    print(f"| orders at {args.rate:g}/s offered | {offered['rate']:,.0f} orders/s | "
          f"{offered['p50_ms']:.2f} ms | {offered['p99_ms']:.2f} ms | {offered['errors']} |")
    print(f"| WS fan-out to {fan['subs']} `mark-price` subscribers (send → last received, "
          f"{fan['pushes']} pushes) | max {fan['max_ms']:.1f} ms | {fan['p50_ms']:.1f} ms | "
          f"{fan['p99_ms']:.1f} ms | 0 |")


if __name__ == "__main__":
    main()
