"""Abuse run: honest traders beside hostile clients, on a real ``backstop serve`` (loopback).

Run: ``python bench/abuse.py`` (default 20 s per phase; ``--seconds 60`` for longer). It starts
a server (``tests/serverkit.py``, manual market, default limits) with a 200-level BTC book and
runs two phases of ``--seconds`` each, from one asyncio client:

1. **baseline**: ``--traders`` honest traders (each a signed REST loop: place a resting order,
   cancel it, read the balance) and one WebSocket bystander subscribed to ``tickers`` that
   sends ``ping`` every 50 ms;
2. **abuse**: the same, plus
   - ``--frames`` clients that send the 63 KB frame of 1,300 repeated ``books`` subscriptions
     every 200 ms and never read,
   - ``--slow`` slow consumers subscribed to ``books``, ``books5`` and ``tickers`` of two
     instruments that never read,
   - ``--slowloris`` sockets that send a request head one byte per second (reopened when cut),
   - a malformed-batch loop (out-of-range sizes, Unicode digits, duplicate ``clOrdId`` pairs,
     broken JSON) on one signed account;

   the hostile clients run in a separate process, so that their own CPU use does not show up
   as bystander latency on the client side.

It reports per phase the bystanders' REST and WebSocket-ping p50/p99 (ms), the p99 ratio
abuse/baseline, the server's RSS (``/proc/<pid>/status``) sampled each second, HTTP statuses
≥ 500 seen by anyone, and the hostile actions done (frames sent, slow consumers disconnected,
slowloris sockets cut).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from serverkit import ServerProcess, new_account, okx_timestamp, sign

BTC = "BTC-USDT-SWAP"
FRAME = json.dumps({"op": "subscribe", "args": [{"channel": "books", "instId": BTC}] * 1300})


@dataclass
class Phase:
    """What one phase measured."""

    rest_ms: list[float] = field(default_factory=list)
    ping_ms: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    hostile: Counter = field(default_factory=Counter)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def signed(key: dict[str, str], method: str, target: str, body: str = "") -> dict[str, str]:
    ts = okx_timestamp()
    return {"OK-ACCESS-KEY": key["apiKey"], "OK-ACCESS-PASSPHRASE": key["passphrase"],
            "OK-ACCESS-TIMESTAMP": ts, "OK-ACCESS-SIGN": sign(key["secretKey"], ts + method + target + body),
            "Content-Type": "application/json"}


async def call(http: httpx.AsyncClient, key: dict[str, str], method: str, target: str,
               payload: object | None, phase: Phase, timed: bool) -> dict:
    body = "" if payload is None else json.dumps(payload)
    started = time.perf_counter()
    headers = signed(key, method, target, body)
    answer = await http.request(method, target, content=body or None, headers=headers)
    if timed:
        phase.rest_ms.append((time.perf_counter() - started) * 1000)
    phase.statuses[answer.status_code // 100 * 100] += 1
    return answer.json()


async def trader(url: str, key: dict[str, str], phase: Phase, until: float, n: int) -> None:
    """Place a far resting order, cancel it, read the balance; repeat (timed)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        i = 0
        while time.monotonic() < until:
            i += 1
            order = {"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "0.01",
                     "px": str(40000 + n), "clOrdId": f"t{n}x{i}"}
            placed = await call(http, key, "POST", "/api/v5/trade/order", order, phase, True)
            ord_id = placed["data"][0]["ordId"] if placed.get("data") else ""
            if ord_id:
                await call(http, key, "POST", "/api/v5/trade/cancel-order", {"instId": BTC, "ordId": ord_id},
                           phase, True)
            await call(http, key, "GET", "/api/v5/account/balance", None, phase, True)
            await asyncio.sleep(0.05)


async def pinger(ws_url: str, phase: Phase, until: float) -> None:
    """A ``tickers`` subscriber that times ``ping`` → ``pong``."""
    async with websockets.connect(f"{ws_url}/ws/v5/public", max_size=None) as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "tickers", "instId": BTC}]}))
        while time.monotonic() < until:
            started = time.perf_counter()
            await ws.send("ping")
            while await ws.recv() != "pong":
                pass
            phase.ping_ms.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.05)


async def frame_sender(ws_url: str, phase: Phase, until: float) -> None:
    """The finding-1 client: repeated-subscription frames, never reading."""
    with contextlib.suppress(Exception):
        async with websockets.connect(f"{ws_url}/ws/v5/public", max_queue=1, close_timeout=0.5) as ws:
            while time.monotonic() < until:
                await ws.send(FRAME)
                phase.hostile["repeat frames"] += 1
                await asyncio.sleep(0.2)


async def slow_consumer(ws_url: str, phase: Phase, until: float) -> None:
    """Subscribe to every busy public channel once and never read; at the end, read to see
    whether the server had disconnected it (counted) or it is still connected."""
    args = [{"channel": c, "instId": i} for c in ("books", "books5", "tickers")
            for i in (BTC, "ETH-USDT-SWAP")]
    async with websockets.connect(f"{ws_url}/ws/v5/public", max_queue=1, close_timeout=0.5) as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": args}))
        await asyncio.sleep(max(0.0, until - time.monotonic()))
        try:
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        except websockets.ConnectionClosed:
            phase.hostile["slow consumers disconnected"] += 1
        except TimeoutError:
            phase.hostile["slow consumers still connected (queue within bound)"] += 1


async def slowloris(port: int, phase: Phase, until: float) -> None:
    """A request head trickled one byte per second; reopened when the server cuts it."""
    head = b"GET /api/v5/public/time HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    while time.monotonic() < until:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for byte in head:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1)
                if time.monotonic() >= until:
                    break
            writer.close()
        except (ConnectionError, OSError):
            phase.hostile["slowloris sockets cut"] += 1
            await asyncio.sleep(0.1)


BAD_BATCHES = [
    [{"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "1e30", "px": "1"}],
    [{"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "١", "px": "1_0"}],
    [{"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "0.01", "px": "30000",
      "clOrdId": "dup"}] * 2,
]


async def malformed(url: str, key: dict[str, str], phase: Phase, until: float) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        i = 0
        while time.monotonic() < until:
            batch = BAD_BATCHES[i % len(BAD_BATCHES)]
            await call(http, key, "POST", "/api/v5/trade/batch-orders", batch, phase, False)
            answer = await http.post("/api/v5/trade/batch-orders", content=b"[{\"instId\":",
                                     headers=signed(key, "POST", "/api/v5/trade/batch-orders", '[{"instId":'))
            phase.statuses[answer.status_code // 100 * 100] += 1
            phase.hostile["malformed batches"] += 2
            i += 1
            await asyncio.sleep(0.02)


async def sample_rss(pid: int, phase: Phase, until: float) -> None:
    while time.monotonic() < until:
        phase.rss_mib.append(rss_mib(pid))
        await asyncio.sleep(1)


async def run_phase(server: ServerProcess, keys: list[dict[str, str]], hostile_key: dict[str, str],
                    seconds: float, args: argparse.Namespace, abuse: bool) -> Phase:
    phase, until = Phase(), time.monotonic() + seconds
    ws_url = server.url.replace("http", "ws")
    tasks = [trader(server.url, key, phase, until, n) for n, key in enumerate(keys)]
    tasks += [pinger(ws_url, phase, until), sample_rss(server.proc.pid, phase, until)]
    if not abuse:
        await asyncio.gather(*tasks)
        return phase
    results: multiprocessing.Queue = multiprocessing.Queue()
    attackers = multiprocessing.Process(target=hostile_process, args=(
        server.url, server.port, hostile_key, seconds, vars(args), results))
    attackers.start()
    await asyncio.gather(*tasks)
    phase.hostile, hostile_statuses = await asyncio.to_thread(results.get)
    phase.statuses.update(hostile_statuses)
    attackers.join()
    return phase


def hostile_process(url: str, port: int, key: dict[str, str], seconds: float, args: dict,
                    results: multiprocessing.Queue) -> None:
    """The hostile clients, in their own process (and event loop), so that their load does
    not slow the bystanders' client side; puts (actions, HTTP statuses) on ``results``."""
    async def attack() -> Phase:
        phase, until = Phase(), time.monotonic() + seconds
        ws_url = url.replace("http", "ws")
        tasks = [frame_sender(ws_url, phase, until) for _ in range(args["frames"])]
        tasks += [slow_consumer(ws_url, phase, until) for _ in range(args["slow"])]
        tasks += [slowloris(port, phase, until) for _ in range(args["slowloris"])]
        tasks += [malformed(url, key, phase, until)]
        await asyncio.gather(*tasks)
        return phase

    phase = asyncio.run(attack())
    results.put((phase.hostile, phase.statuses))


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


def report(name: str, phase: Phase) -> None:
    rss = phase.rss_mib
    print(f"| {name} | {len(phase.rest_ms)} | {pct(phase.rest_ms, 50):.1f} | {pct(phase.rest_ms, 99):.1f} | "
          f"{pct(phase.ping_ms, 50):.1f} | {pct(phase.ping_ms, 99):.1f} | {rss[0]:.0f} → {max(rss):.0f} → "
          f"{rss[-1]:.0f} | {phase.statuses.get(500, 0)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--traders", type=int, default=4)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--slow", type=int, default=2)
    parser.add_argument("--slowloris", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp), limits={"header_timeout_s": 5})
        server.start()
        try:
            maker = new_account(server.url, usdt="10000000")
            for start in range(0, 200, 20):
                maker.post("/api/v5/trade/batch-orders", [
                    {"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "0.01",
                     "px": str(50000 + i)} for i in range(start, start + 20)])
            keys = [new_account(server.url).key for _ in range(args.traders)]
            hostile_key = new_account(server.url).key
            baseline = asyncio.run(run_phase(server, keys, hostile_key, args.seconds, args, False))
            abuse = asyncio.run(run_phase(server, keys, hostile_key, args.seconds, args, True))
        finally:
            server.stop()
    print(f"{args.seconds:.0f} s per phase, {args.traders} honest traders + 1 WS pinger; abuse adds "
          f"{args.frames} repeat-frame clients, {args.slow} slow consumers, {args.slowloris} slowloris "
          "sockets, 1 malformed-batch loop\n")
    print("| phase | bystander requests | REST p50 ms | REST p99 ms | WS ping p50 ms | WS ping p99 ms | "
          "RSS MiB first → max → last | HTTP 5xx |")
    print("|---|---|---|---|---|---|---|---|")
    report("baseline", baseline)
    report("abuse", abuse)
    print(f"\np99 ratio abuse/baseline: REST {pct(abuse.rest_ms, 99) / pct(baseline.rest_ms, 99):.2f}, "
          f"WS ping {pct(abuse.ping_ms, 99) / pct(baseline.ping_ms, 99):.2f}")
    print("hostile actions: " + ", ".join(f"{k} {v}" for k, v in sorted(abuse.hostile.items())))
    print("RSS each second (abuse): " + " ".join(f"{v:.0f}" for v in abuse.rss_mib))


if __name__ == "__main__":
    main()
