"""Crash-recovery harness (issue 6, item 1): ``kill -9`` the server under order load, restart,
check.

The server (``backstop.serve.run_server``, manual market) runs as a subprocess on 127.0.0.1
over a SQLite file or a PostgreSQL database (a throwaway server, ``tests/pg_server.py``).
Each cycle creates fresh accounts, starts ``--clients`` threads that each place signed limit
orders (prices around the index, so many cross and fill) and cancel some of their own, waits a
seeded random time and ``kill -9``\\ s the server. After each restart:

- every acknowledged order (``code 0``) is present, with its account and ``clOrdId``;
- an order whose request got no answer is either wholly present or absent (counted); a
  command is one log row holding its events' cause, so half an order cannot be stored, and
  the next checks would see one;
- the audit is exact (``GET /backstop/v1/audit`` and offline);
- the server's state hash (``GET /backstop/v1/state``) equals that of a fresh offline replay
  of the log with the same code the server uses (:func:`backstop.serve.build_service`), at
  the same log position.

Run: ``.venv/bin/python bench/crash_harness.py --backend sqlite --kills 20 --seed 1`` (and
``--backend postgres``). Exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from backstop.serve import build_service
from backstop.state.invariants import conservation_reports
from pg_server import PostgresServer, pg_available
from serverkit import ServerProcess, SignedClient, new_account

INST = "BTC-USDT-SWAP"


@dataclass
class Ledger:
    """What the clients saw: acknowledged orders and requests that got no answer."""

    acked: dict[int, tuple[int, str]] = field(default_factory=dict)
    """ordId → (uid, clOrdId)."""
    in_doubt: list[tuple[int, str]] = field(default_factory=list)
    """(uid, clOrdId) of order requests that got no answer (the server died)."""
    refused: Counter[str] = field(default_factory=Counter)
    """Answered refusals by OKX code (per-item ``sCode`` when given)."""
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Report:
    """Figures of one harness run."""

    backend: str
    kills: int = 0
    seed: int = 0
    orders_acknowledged: int = 0
    orders_lost: int = 0
    in_doubt: int = 0
    in_doubt_present: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    log_records: int = 0
    audit_ok: bool = True
    hash_match: bool = True
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and self.orders_lost == 0 and self.audit_ok and self.hash_match


def _load(client: SignedClient, ledger: Ledger, stop: threading.Event, rng: random.Random,
          tag: str, index_px: float) -> None:
    """Place (and sometimes cancel) orders until ``stop`` or the server dies."""
    mine: list[int] = []
    n = 0
    while not stop.is_set():
        if mine and rng.random() < 0.15:
            if not _cancel(client, mine.pop(rng.randrange(len(mine)))):
                return
            continue
        try:
            n += 1
            cl = f"{tag}n{n}"
            side = rng.choice(("buy", "sell"))
            px = round(index_px * (1 + rng.uniform(-0.002, 0.002)), 1)
            order = {"instId": INST, "tdMode": "cross", "side": side, "ordType": "limit",
                     "sz": "0.01", "px": str(px), "clOrdId": cl}
            body = _send_order(client, order)
        except (httpx.HTTPError, ValueError):
            with ledger.lock:
                ledger.in_doubt.append((client.uid, cl))
            return
        _record(ledger, client.uid, cl, body, mine)


def _cancel(client: SignedClient, ord_id: int) -> bool:
    """Cancel one own order; ``False`` when the server is gone."""
    try:
        client.post("/api/v5/trade/cancel-order", {"instId": INST, "ordId": str(ord_id)})
    except httpx.HTTPError:
        return False
    return True


def _send_order(client: SignedClient, order: dict) -> dict:
    return client.post("/api/v5/trade/order", order).json()


def _record(ledger: Ledger, uid: int, cl: str, body: dict, mine: list[int]) -> None:
    with ledger.lock:
        if body.get("code") == "0":
            ord_id = int(body["data"][0]["ordId"])
            ledger.acked[ord_id] = (uid, cl)
            mine.append(ord_id)
        else:
            data = body.get("data") or [{}]
            ledger.refused[str(data[0].get("sCode") or body.get("code"))] += 1
    if body.get("code") == "50011":
        time.sleep(0.05)


def _index_px(url: str) -> float:
    data = httpx.get(f"{url}/api/v5/public/mark-price?instType=SWAP&instId={INST}", timeout=10).json()
    return float(data["data"][0]["markPx"])


def run_cycle(server: ServerProcess, ledger: Ledger, rng: random.Random, cycle: int, clients: int,
              window: tuple[float, float]) -> None:
    """Fresh accounts, load from ``clients`` threads, ``kill -9`` after a seeded random delay."""
    accounts = [new_account(server.url) for _ in range(clients)]
    index_px = _index_px(server.url)
    stop = threading.Event()
    threads = [threading.Thread(target=_load, args=(a, ledger, stop, random.Random(rng.random()),
                                                    f"c{cycle}t{i}", index_px), daemon=True)
               for i, a in enumerate(accounts)]
    for thread in threads:
        thread.start()
    time.sleep(rng.uniform(*window))
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(15)
    for account in accounts:
        account.close()


def verify(server: ServerProcess, ledger: Ledger, report: Report) -> None:
    """The checks after a restart (the server is up and idle)."""
    admin = SignedClient(server.url)
    live = admin.admin("GET", "state")
    audit = admin.admin("GET", "audit")
    admin.close()
    replay = build_service(server.log_target)
    try:
        tracker, exchange = replay.tracker, replay.exchange
        report.log_records = replay.log.next_seq - 1
        if live["seq"] != str(report.log_records) or live["stateHash"] != exchange.state_hash():
            report.hash_match = False
            report.failures.append(f"hash/seq mismatch: live {live}, replay seq {report.log_records}")
        offline_ok = all(r.ok for r in conservation_reports(exchange.state))
        if not (audit["ok"] and offline_ok):
            report.audit_ok = False
            report.failures.append(f"audit not exact: {json.dumps(audit)}")
        _check_orders(tracker, ledger, report)
    finally:
        replay.log.close()


def _check_orders(tracker, ledger: Ledger, report: Report) -> None:
    with ledger.lock:
        acked, in_doubt = dict(ledger.acked), list(ledger.in_doubt)
    lost = [o for o, (uid, cl) in acked.items()
            if (rec := tracker.orders.get(o)) is None or rec.uid != uid or rec.cl_ord_id != cl]
    report.orders_lost = len(lost)
    if lost:
        report.failures.append(f"acknowledged orders missing: {lost[:10]}")
    report.orders_acknowledged = len(acked)
    report.in_doubt = len(in_doubt)
    report.in_doubt_present = sum(1 for uid, cl in in_doubt
                                  if tracker.order_by_client_id(uid, cl) is not None)
    report.refused = dict(ledger.refused)


def run(backend: str, kills: int, seed: int, clients: int = 4,
        window: tuple[float, float] = (0.3, 1.5), workdir: Path | None = None,
        on_cycle=None) -> Report:
    """The harness: ``kills`` cycles of load, ``kill -9``, restart and check."""
    report = Report(backend, seed=seed)
    started = time.monotonic()
    rng = random.Random(seed)
    root = Path(workdir or tempfile.mkdtemp(prefix="backstop-crash-"))
    pg = PostgresServer() if backend == "postgres" else None
    if pg is not None:
        pg.start()
    try:
        db = pg.create_database("crash") if pg is not None else None
        server = ServerProcess(root / "data", db=db)
        ledger = Ledger()
        for cycle in range(kills):
            server.start()
            if cycle:
                verify(server, ledger, report)
            run_cycle(server, ledger, rng, cycle, clients, window)
            report.kills += 1
            if on_cycle is not None:
                on_cycle(report)
        server.start()
        verify(server, ledger, report)
        server.stop()
    finally:
        if pg is not None:
            pg.stop()
    report.seconds = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--min-s", type=float, default=0.3, help="shortest load before a kill")
    parser.add_argument("--max-s", type=float, default=1.5, help="longest load before a kill")
    args = parser.parse_args(argv)
    if args.backend == "postgres" and not pg_available():
        print("PostgreSQL server binaries missing: apt-get install -y postgresql", file=sys.stderr)
        return 2

    def progress(r: Report) -> None:
        print(f"kill {r.kills}: acked {r.orders_acknowledged} lost {r.orders_lost} "
              f"in-doubt {r.in_doubt} log {r.log_records}", file=sys.stderr, flush=True)

    report = run(args.backend, args.kills, args.seed, args.clients, (args.min_s, args.max_s),
                 on_cycle=progress)
    print(json.dumps({**asdict(report), "ok": report.ok}, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
