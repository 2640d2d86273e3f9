"""Load and soak: ``backstop serve`` (replay market) with 200 WebSocket subscribers and a light
REST order load, sampled every ``--every`` seconds for ``--minutes`` (default 30).

Run: ``python bench/soak.py`` (or ``--minutes 2 --every 10`` for a quick look). It starts
``backstop serve --market replay`` (the CLI defaults: speed 60, 200 simulated traders) as a
subprocess in a temp dir, on a free port of 127.0.0.1, and drives it from one asyncio client:

- ``--subs`` WebSocket connections (default 200): most on ``/ws/v5/public`` subscribed to one
  of ``tickers``, ``books5``, ``mark-price`` (every active instrument), ``liquidation-orders``
  or ``adl-warning`` (``instType SWAP``); every ``--private-every``-th one on
  ``/ws/v5/private``, logged in with its own account and subscribed to ``orders``,
  ``positions`` and ``balance_and_position``;
- a light REST load (``--rate`` requests/s, default 5): signed resting limit orders far from
  the mark on BTC-USDT-SWAP, each cancelled by the next request, and ``account/balance``.

Each sample records the server's RSS (``/proc/<pid>/status``), the REST p50/p99 latency and
count in the interval, the WebSocket messages received in the interval, and the event log's
size on disk (SQLite file plus WAL). At the end it writes the samples as CSV (``--csv``) and
prints a Markdown summary: RSS growth after warm-up, p99 over time, log growth, and a verdict
on unbounded growth other than the log. It stops by itself after ``--minutes``; the server is
stopped with SIGTERM. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import csv
import hashlib
import hmac
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiohttp

ADMIN = "soak-admin-token"
HOST = "127.0.0.1"
INST_IDS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "BTC-USD-SWAP")
PUBLIC_KINDS = ("tickers", "books5", "mark-price", "liquidation-orders", "adl-warning")
PRIVATE_CHANNELS = ("orders", "positions", "balance_and_position")
REST_INST = "BTC-USDT-SWAP"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="soak duration")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--subs", type=int, default=200, help="WebSocket connections")
    parser.add_argument("--private-every", type=int, default=10,
                        help="every n-th connection is private (logged in)")
    parser.add_argument("--rate", type=float, default=5.0, help="REST requests per second")
    parser.add_argument("--warmup", type=float, default=120.0,
                        help="seconds excluded from the growth figures (start-up allocation)")
    parser.add_argument("--csv", type=Path, default=Path("soak.csv"), help="samples file")
    parser.add_argument("--speed", type=float, default=60.0, help="replay speed (CLI default)")
    return parser.parse_args(argv)


# -- the server ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(workdir: Path, port: int, speed: float) -> subprocess.Popen:
    """``backstop serve`` (replay market) in ``workdir``; returns once it answers."""
    env = {**os.environ, "BACKSTOP_ADMIN_TOKEN": ADMIN}
    cmd = [sys.executable, "-c", "from backstop.cli import main; main()", "serve", "--host", HOST,
           "--port", str(port), "--market", "replay", "--speed", str(speed)]
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(workdir / "server.err", "wb"))  # noqa: SIM115
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / "server.err").read_text()[-2000:])
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def stop_server(proc: subprocess.Popen) -> int:
    """SIGTERM (graceful), then SIGKILL after 30 s; the exit status."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def log_mib(workdir: Path) -> float:
    """The SQLite event log on disk (main file, WAL and shared memory), in MiB."""
    files = (workdir / "backstop-data").glob("backstop.sqlite*")
    return sum(f.stat().st_size for f in files) / 2**20


# -- signing ---------------------------------------------------------------------------------
def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sign(secret: str, prehash: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()).decode()


def rest_headers(key: dict[str, str], method: str, target: str, body: str) -> dict[str, str]:
    ts = iso_now()
    return {"OK-ACCESS-KEY": key["apiKey"], "OK-ACCESS-PASSPHRASE": key["passphrase"],
            "OK-ACCESS-TIMESTAMP": ts, "OK-ACCESS-SIGN": sign(key["secretKey"], ts + method + target + body),
            "Content-Type": "application/json"}


def ws_login(key: dict[str, str]) -> str:
    ts = str(int(time.time()))
    signature = sign(key["secretKey"], ts + "GET/users/self/verify")
    return json.dumps({"op": "login", "args": [{"apiKey": key["apiKey"], "passphrase": key["passphrase"],
                                                "timestamp": ts, "sign": signature}]})


# -- the load --------------------------------------------------------------------------------
@dataclass
class Counters:
    """What happened since the last sample (reset at each sample), and totals."""

    latencies_ms: list[float] = field(default_factory=list)
    rest_errors: int = 0
    ws_messages: int = 0
    ws_errors: int = 0
    ws_open: int = 0
    total_rest: int = 0
    total_ws: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)
    """REST refusals by OKX code (``sCode`` for order items), over the whole run."""

    def take(self) -> tuple[list[float], int, int]:
        lat, msgs, errs = self.latencies_ms, self.ws_messages, self.rest_errors
        self.latencies_ms, self.ws_messages, self.rest_errors = [], 0, 0
        return lat, msgs, errs


async def new_account(http: aiohttp.ClientSession, base: str) -> dict[str, str]:
    async with http.post(f"{base}/backstop/v1/accounts", headers={"X-Backstop-Admin": ADMIN},
                         data=json.dumps({"deposits": {"USDT": "1000000"}})) as r:
        return (await r.json())["data"][0]


def public_args(index: int) -> list[dict[str, str]]:
    kind = PUBLIC_KINDS[index % len(PUBLIC_KINDS)]
    if kind in ("liquidation-orders", "adl-warning"):
        return [{"channel": kind, "instType": "SWAP"}]
    return [{"channel": kind, "instId": i} for i in INST_IDS]


async def subscriber(http: aiohttp.ClientSession, url: str, args: list[dict[str, str]],
                     key: dict[str, str] | None, stop: asyncio.Event, counters: Counters) -> None:
    """One WebSocket client: (login,) subscribe, count messages, ping every 20 s, until ``stop``."""
    async with http.ws_connect(url, heartbeat=None, max_msg_size=0) as ws:
        counters.ws_open += 1
        if key is not None:
            await ws.send_str(ws_login(key))
            await ws.receive(timeout=10)
        await ws.send_str(json.dumps({"op": "subscribe", "args": args}))
        last_ping = time.monotonic()
        while not stop.is_set():
            try:
                msg = await ws.receive(timeout=1.0)
            except TimeoutError:
                msg = None
            if msg is not None and msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                counters.ws_errors += 1
                break
            if msg is not None:
                counters.ws_messages += 1
                counters.total_ws += 1
            if time.monotonic() - last_ping > 20:
                await ws.send_str("ping")
                last_ping = time.monotonic()
        counters.ws_open -= 1


async def timed(http: aiohttp.ClientSession, counters: Counters, method: str, url: str,
                headers: dict[str, str], body: str | None) -> dict:
    began = time.perf_counter()
    async with http.request(method, url, headers=headers, data=body) as r:
        payload = await r.json(content_type=None)
    counters.latencies_ms.append((time.perf_counter() - began) * 1000)
    counters.total_rest += 1
    if r.status != 200 or payload.get("code") != "0":
        counters.rest_errors += 1
        items = payload.get("data") or [{}]
        code = str(items[0].get("sCode") or payload.get("code")) if isinstance(items[0], dict) else "?"
        counters.error_codes[code] = counters.error_codes.get(code, 0) + 1
    return payload


async def far_bid(http: aiohttp.ClientSession, base: str) -> str:
    """Half the mark of :data:`REST_INST`, on its 0.1 tick: rests and never fills."""
    async with http.get(f"{base}/api/v5/public/mark-price?instType=SWAP&instId={REST_INST}") as r:
        mark = Decimal((await r.json())["data"][0]["markPx"])
    return str((mark / 2).quantize(Decimal("0.1")))


async def rest_load(http: aiohttp.ClientSession, base: str, keys: list[dict[str, str]], rate: float,
                    stop: asyncio.Event, counters: Counters) -> None:
    """Place, cancel, read balance, in turn, at ``rate`` requests per second."""
    step, turn, pending = 1.0 / rate, 0, {}
    while not stop.is_set():
        began = time.monotonic()
        key = keys[turn % len(keys)]
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError, KeyError, IndexError):
            await rest_step(http, base, key, turn // len(keys), pending, counters)
        turn += 1
        await asyncio.sleep(max(0.0, step - (time.monotonic() - began)))


async def rest_step(http: aiohttp.ClientSession, base: str, key: dict[str, str], turn: int,
                    pending: dict[str, str], counters: Counters) -> None:
    """One REST request of the key's rotation (order, cancel it, balance)."""
    phase = turn % 3
    uid = key["uid"]
    if phase == 0:
        path = "/api/v5/trade/order"
        body = json.dumps({"instId": REST_INST, "tdMode": "cross", "side": "buy", "ordType": "limit",
                           "px": await far_bid(http, base), "sz": "1"})
        reply = await timed(http, counters, "POST", base + path, rest_headers(key, "POST", path, body), body)
        pending[uid] = reply["data"][0]["ordId"]
    elif phase == 1 and pending.get(uid):
        path = "/api/v5/trade/cancel-order"
        body = json.dumps({"instId": REST_INST, "ordId": pending.pop(uid)})
        await timed(http, counters, "POST", base + path, rest_headers(key, "POST", path, body), body)
    else:
        path = "/api/v5/account/balance?ccy=USDT"
        await timed(http, counters, "GET", base + path, rest_headers(key, "GET", path, ""), None)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def sampler(proc: subprocess.Popen, workdir: Path, args: argparse.Namespace,
                  stop: asyncio.Event, counters: Counters, rows: list[dict]) -> None:
    """One row every ``args.every`` seconds until the duration has passed; then ``stop``."""
    began = time.monotonic()
    end = began + args.minutes * 60
    last = began
    while time.monotonic() < end and proc.poll() is None:
        await asyncio.sleep(min(args.every, max(0.0, end - time.monotonic())))
        now = time.monotonic()
        lat, msgs, errs = counters.take()
        row = {"t_s": round(now - began, 1), "rss_mib": round(rss_mib(proc.pid), 1),
               "log_mib": round(log_mib(workdir), 2), "rest_n": len(lat), "rest_errors": errs,
               "p50_ms": round(percentile(lat, 0.5), 2), "p99_ms": round(percentile(lat, 0.99), 2),
               "ws_msgs": msgs, "ws_msgs_per_s": round(msgs / max(now - last, 1e-9), 1),
               "ws_open": counters.ws_open}
        rows.append(row)
        last = now
        print(json.dumps(row), flush=True)
    stop.set()


async def drive(proc: subprocess.Popen, workdir: Path, port: int, args: argparse.Namespace) -> list[dict]:
    base, counters, stop, rows = f"http://{HOST}:{port}", Counters(), asyncio.Event(), []
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=30)) as http:
        rest_keys = [await new_account(http, base) for _ in range(3)]
        tasks = []
        for i in range(args.subs):
            private = args.private_every > 0 and i % args.private_every == args.private_every - 1
            key = await new_account(http, base) if private else None
            url = f"ws://{HOST}:{port}/ws/v5/{'private' if private else 'public'}"
            channel_args = ([{"channel": c, "instType": "SWAP"} for c in PRIVATE_CHANNELS]
                            if private else public_args(i))
            tasks.append(asyncio.create_task(subscriber(http, url, channel_args, key, stop, counters)))
        tasks.append(asyncio.create_task(rest_load(http, base, rest_keys, args.rate, stop, counters)))
        await sampler(proc, workdir, args, stop, counters, rows)
        rows[-1]["error_codes"] = json.dumps(counters.error_codes) if rows else ""
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            print(f"{len(failures)} client tasks failed, first: {failures[0]!r}", file=sys.stderr)
    return rows


# -- the report ------------------------------------------------------------------------------
def slope_per_min(rows: list[dict], key: str) -> float:
    """Least-squares slope of ``key`` against time, per minute."""
    if len(rows) < 2:
        return 0.0
    xs, ys = [r["t_s"] / 60 for r in rows], [r[key] for r in rows]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def summary(rows: list[dict], args: argparse.Namespace, exit_status: int) -> str:
    steady = [r for r in rows if r["t_s"] >= args.warmup] or rows
    first, last = steady[0], steady[-1]
    half = [r for r in steady if r["t_s"] >= (first["t_s"] + last["t_s"]) / 2] or steady
    lines = [
        f"## Soak: {args.minutes:g} min, {args.subs} WebSocket subscribers, {args.rate:g} REST req/s",
        "",
        "| figure | value |", "|---|---|",
        f"| samples | {len(rows)} every {args.every:g} s |",
        f"| REST requests / refusals | {sum(r['rest_n'] for r in rows)} / "
        f"{sum(r['rest_errors'] for r in rows)} |",
        f"| REST refusals by code | {rows[-1].get('error_codes', '')} |",
        f"| WS messages received | {sum(r['ws_msgs'] for r in rows)} |",
        f"| WS connections open at end | {rows[-1]['ws_open']} |",
        f"| RSS after warm-up ({first['t_s']:g} s) → end | {first['rss_mib']} → {last['rss_mib']} MiB "
        f"({last['rss_mib'] - first['rss_mib']:+.1f}) |",
        f"| RSS slope, whole steady run / second half | {slope_per_min(steady, 'rss_mib'):+.3f} / "
        f"{slope_per_min(half, 'rss_mib'):+.3f} MiB/min |",
        f"| event log start → end | {rows[0]['log_mib']} → {rows[-1]['log_mib']} MiB "
        f"({slope_per_min(rows, 'log_mib'):+.3f} MiB/min) |",
        f"| REST p99, first → last interval | {rows[0]['p99_ms']} → {rows[-1]['p99_ms']} ms |",
        f"| REST p99, worst interval | {max(r['p99_ms'] for r in rows)} ms |",
        f"| server exit status (SIGTERM) | {exit_status} |",
        "", "| t (s) | RSS MiB | log MiB | REST n | p50 ms | p99 ms | WS msg/s |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['t_s']:g} | {r['rss_mib']} | {r['log_mib']} | {r['rest_n']} | {r['p50_ms']} | "
              f"{r['p99_ms']} | {r['ws_msgs_per_s']} |" for r in rows]
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[-1]), restval="")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="backstop-soak-") as tmp:
        workdir, port = Path(tmp), free_port()
        proc = start_server(workdir, port, args.speed)
        try:
            rows = asyncio.run(drive(proc, workdir, port, args))
        finally:
            status = stop_server(proc)
        write_csv(args.csv, rows)
        print(summary(rows, args, status))
        err = (workdir / "server.err").read_text()
        if err.strip():
            print(f"\nserver stderr (last 2000 chars):\n```\n{err[-2000:]}\n```")


if __name__ == "__main__":
    main()
