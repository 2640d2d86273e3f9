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
After 3 (so that the book it leaves does not weigh on 3), the same orders go 20 to a request
through ``POST /api/v5/trade/batch-orders`` (closed loop, orders/s). Prints a Markdown table,
with the server process's CPU time per request in the closed-loop phases (Linux ``/proc``;
steadier than rates when the clients share the cores), the clients' CPU per request, and the load average.

``--profile DIR`` records the server with py-spy (``pip install py-spy``) during phases 1 and
2 (``DIR/ceiling.txt``, ``DIR/orders.txt``, collapsed stacks of the thread holding the GIL,
so a thread waiting for it is not counted) and prints where those samples go, by layer of
the innermost Python frame (uvloop's own C code appears as ``event loop``).
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
BATCH_PATH = "/api/v5/trade/batch-orders"
BATCH = 20
"""Orders per ``batch-orders`` request (OKX's maximum)."""


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
    parser.add_argument("--profile", default=None, help="py-spy the server into this folder")
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

    def order(self) -> dict[str, str]:
        self.n += 1
        buy = self.n % 2 == 0
        px = (80000 if buy else 140000) + (self.n % 1000) * (-1 if buy else 1)
        return {"instId": INST, "tdMode": "cross", "side": "buy" if buy else "sell",
                "ordType": "limit", "sz": "0.01", "px": str(px)}

    def request(self, path: str = ORDER_PATH) -> tuple[dict[str, str], str]:
        """A signed ``trade/order`` (or ``batch-orders``, :data:`BATCH` orders) request."""
        body = json.dumps(self.order() if path == ORDER_PATH else [self.order() for _ in range(BATCH)])
        return signed_headers(self.key, "POST", path, body), body


async def _one(http: aiohttp.ClientSession, url: str, kind: str, maker: OrderMaker | None) -> bool:
    if kind == "trivial":
        async with http.get(url + "/api/v5/public/time") as response:
            return (await response.json())["code"] == "0"
    path = BATCH_PATH if kind == "batch" else ORDER_PATH
    headers, body = maker.request(path)  # type: ignore[union-attr]
    async with http.post(url + path, data=body, headers=headers) as response:
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


def _client_proc(args: tuple) -> tuple[list[float], int, float]:
    """One client process's latencies, errors and CPU seconds."""
    mode, url, keys, conns, seconds, rate, start_at = args
    cpu = time.process_time()
    if mode == "open":
        latencies, errors = asyncio.run(_open_loop(url, keys, rate, seconds, start_at))
    else:
        latencies, errors = asyncio.run(_closed_loop(url, mode, keys, conns, start_at + seconds, start_at))
    return latencies, errors, time.process_time() - cpu


def run_phase(pool, mode: str, url: str, keys, conns: int, procs: int, seconds: float,
              rate: float = 0.0) -> dict[str, float]:
    """Run one phase across the client processes; merge their latencies."""
    start_at = time.time() + 0.5
    share = [keys[i::procs] for i in range(procs)]
    jobs = [(mode, url, share[i], max(1, conns // procs), seconds, rate / procs, start_at)
            for i in range(procs)]
    results = pool.map(_client_proc, jobs)
    latencies = sorted(x for lat, _e, _c in results for x in lat)
    errors = sum(e for _l, e, _c in results)
    client_cpu = sum(c for _l, _e, c in results)
    return {"count": len(latencies), "rate": len(latencies) / seconds, "errors": errors,
            "client_cpu_us": 1e6 * client_cpu / max(1, len(latencies)),
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


# -- server CPU and profile --------------------------------------------------------------------
def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux), else ``None``."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


WAITING = ("EpollSelector.select", "CommandLog._commit", "SimpleQueue.get", "Condition.wait")
"""Innermost frames of a thread that waits (in a system call) rather than works."""
LAYERS = (("backstop/engine", "engine"), ("backstop/state", "engine"), ("backstop/math", "engine"),
          ("backstop/model/codec", "command codec"), ("backstop/model", "engine"),
          ("backstop/store", "log write"), ("sqlite3", "log write"), ("backstop/api/auth", "auth"),
          ("hmac", "auth"), ("backstop/api/ws", "ws publish"), ("backstop/api/tracker", "tracker"),
          ("backstop/api/service", "service"), ("backstop/api", "api handlers"),
          ("starlette", "starlette"), ("uvicorn", "uvicorn"), ("httptools", "uvicorn"),
          ("json", "json"), ("orjson", "json"), ("asyncio", "event loop"), ("uvloop", "event loop"),
          ("concurrent", "threads"), ("threading", "threads"), ("queue", "threads"))


def layer_of(frame: str) -> str:
    for prefix, layer in LAYERS:
        if f"({prefix}" in frame:
            return layer
    return "other"


def profile_summary(path: str) -> dict[str, int]:
    """Samples by layer of the innermost frame; waiting threads apart (py-spy raw format)."""
    out: dict[str, int] = {}
    with open(path) as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack:
                continue
            leaf = stack.rsplit(";", 1)[-1]
            layer = "(waiting)" if any(w in leaf for w in WAITING) else layer_of(leaf)
            out[layer] = out.get(layer, 0) + int(count)
    return out


def start_profile(pid: int, out: str, seconds: float) -> subprocess.Popen:
    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    spy = beside if os.path.exists(beside) else "py-spy"
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
                             "--rate", "250", "--gil", "--nonblocking", "-f", "raw", "-o", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measured_phase(pool, args, proc: subprocess.Popen, name: str, mode: str, url: str, keys,
                   rate: float = 0.0) -> dict[str, float]:
    """:func:`run_phase` with the server's CPU per request and, with ``--profile``, py-spy."""
    spy = start_profile(proc.pid, os.path.join(args.profile, f"{name}.txt"), args.seconds) \
        if args.profile else None
    cpu0 = cpu_seconds(proc.pid)
    result = run_phase(pool, mode, url, keys, args.conns, args.procs, args.seconds, rate)
    cpu1 = cpu_seconds(proc.pid)
    if spy is not None:
        spy.wait()
    if cpu0 is not None and cpu1 is not None and result["count"]:
        result["cpu_us"] = 1e6 * (cpu1 - cpu0) / result["count"]
    return result


# -- report ------------------------------------------------------------------------------------
def main() -> None:
    args = parse_args()
    data_dir = tempfile.mkdtemp(prefix="backstop-bench-")
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    proc, url = start_server(data_dir, args.db)
    load = [os.getloadavg()]
    try:
        keys = create_accounts(url, args.accounts)
        ctx = mp.get_context("spawn")
        with ctx.Pool(args.procs) as pool:
            ceiling = measured_phase(pool, args, proc, "ceiling", "trivial", url, keys)
            orders = measured_phase(pool, args, proc, "orders", "order", url, keys)
            offered = run_phase(pool, "open", url, keys, args.conns, args.procs, args.seconds, args.rate)
            batches = measured_phase(pool, args, proc, "batches", "batch", url, keys)
        fan = asyncio.run(fan_out(url, args.subs, args.pushes))
    finally:
        proc.terminate()
        proc.wait(10)
    load.append(os.getloadavg())
    report(args, ceiling, orders, batches, offered, fan, load)
    if args.profile:
        report_profiles(args.profile)


def report_profiles(folder: str) -> None:
    """Each phase's samples by layer, as shares of the busy (non-waiting) samples."""
    for name in ("ceiling", "orders"):
        counts = profile_summary(os.path.join(folder, f"{name}.txt"))
        busy = sum(v for k, v in counts.items() if k != "(waiting)")
        shares = ", ".join(f"{k} {v / busy:.0%}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])
                           if k != "(waiting)" and v / busy >= 0.005)
        print(f"py-spy {name}: {busy} busy samples ({counts.get('(waiting)', 0)} waiting): {shares}")


def report(args, ceiling: dict, orders: dict, batches: dict, offered: dict, fan: dict, load: list) -> None:
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}; log: {args.db or 'SQLite (WAL, synchronous=FULL)'}; "
          f"{args.procs} client procs, {args.conns} connections, {args.accounts} accounts, "
          f"{args.seconds:g} s phases; load average {load[0][0]:.2f} before, {load[1][0]:.2f} after")
    if "cpu_us" in ceiling and "cpu_us" in orders:
        print(f"server CPU per request: ceiling {ceiling['cpu_us']:.0f} µs, order {orders['cpu_us']:.0f} µs "
              f"(ratio {ceiling['cpu_us'] / orders['cpu_us']:.0%}), order by batch-orders "
              f"{batches.get('cpu_us', 0) / BATCH:.0f} µs; client CPU per request: ceiling "
              f"{ceiling['client_cpu_us']:.0f} µs, order {orders['client_cpu_us']:.0f} µs")
    print("| figure | value | p50 | p99 | errors |")
    print("|---|---|---|---|---|")
    print(f"| trivial JSON ceiling (`GET public/time`) | {ceiling['rate']:,.0f} req/s | "
          f"{ceiling['p50_ms']:.2f} ms | {ceiling['p99_ms']:.2f} ms | {ceiling['errors']} |")
    print(f"| orders, closed loop (`POST trade/order`) | {orders['rate']:,.0f} orders/s "
          f"({orders['rate'] / ceiling['rate']:.0%} of ceiling) | {orders['p50_ms']:.2f} ms | "
          f"{orders['p99_ms']:.2f} ms | {orders['errors']} |")
    print(f"| orders by `batch-orders` ({BATCH} per request), closed loop | {BATCH * batches['rate']:,.0f} "
          f"orders/s ({BATCH * batches['rate'] / ceiling['rate']:.0%} of ceiling) | "
          f"{batches['p50_ms']:.2f} ms | "
          f"{batches['p99_ms']:.2f} ms | {batches['errors']} |")
    print(f"| orders at {args.rate:g}/s offered | {offered['rate']:,.0f} orders/s | "
          f"{offered['p50_ms']:.2f} ms | {offered['p99_ms']:.2f} ms | {offered['errors']} |")
    print(f"| WS fan-out to {fan['subs']} `mark-price` subscribers (send → last received, "
          f"{fan['pushes']} pushes) | max {fan['max_ms']:.1f} ms | {fan['p50_ms']:.1f} ms | "
          f"{fan['p99_ms']:.1f} ms | 0 |")


if __name__ == "__main__":
    main()
