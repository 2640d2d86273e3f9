"""Restart time: full log replay versus snapshot plus tail, on the same log.

Run: ``python bench/restart.py`` (default 300,000 commands; ``--commands 50000`` for a quick
look). It builds a SQLite log in a temp dir through the real service (:func:`backstop.serve.
build_service`): ``--accounts`` funded accounts; in rounds, every account places a resting
limit order far from the market (one group of commands), then cancels it (another group), so
the log holds ``--commands`` orders and cancels and the book ends empty. Then it times
three starts of the same data dir, each a fresh :func:`build_service` (log opened, chain
verified, state rebuilt):

- **full replay**: no snapshot file (the baseline);
- **snapshot**: the shutdown snapshot at the last record (verified against the log's hash and
  its state hash), no tail;
- **snapshot + tail**: the snapshot taken ``--tail`` commands before the end.

Each start's state hash must equal the one the building service ended with. Figures are wall
seconds on this machine; the ratio is against the full replay measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from backstop.model.commands import CancelOrder, PlaceOrder
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.serve import build_service

BTC = "BTC-USDT-SWAP"


async def build(service, commands: int, accounts: int, tail: int, snapshot_dir: Path) -> None:
    """``commands`` place/cancel commands; a snapshot copied aside ``tail`` commands from the end."""
    uids = [(await service.create_account({"USDT": Decimal(10_000_000)})).uid for _ in range(accounts)]
    done, snapped = 0, False
    while done < commands:
        places = [PlaceOrder(0, uid, BTC, Side.BUY, OrderType.LIMIT, Decimal("0.01"),
                             Decimal(30000 + (done + i) % 1000), MarginMode.CROSS)
                  for i, uid in enumerate(uids)]
        placed = [next(e for e in events if type(e).__name__ == "OrderPlaced")
                  for events in await service.submit_all(places)]
        await service.submit_all([CancelOrder(0, e.uid, BTC, e.ord_id) for e in placed])
        done += 2 * len(uids)
        if not snapped and done >= commands - tail:
            service.write_snapshot_now()
            shutil.copyfile(service.snapshot_path, snapshot_dir / "snapshot.pickle")
            snapped = True


def timed_start(data_dir: Path) -> tuple[float, str, int]:
    started = time.perf_counter()
    service = build_service(data_dir / "backstop.sqlite", data_dir=data_dir)
    elapsed = time.perf_counter() - started
    state, used = service.exchange.state_hash(), service.snapshot_seq
    service.log.close()
    return elapsed, state, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=300_000)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--tail", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, aside = Path(tmp) / "data", Path(tmp) / "aside"
        aside.mkdir()
        service = build_service(data / "backstop.sqlite", data_dir=data, snapshot_every=10**12)
        started = time.perf_counter()
        asyncio.run(build(service, args.commands, args.accounts, args.tail, aside))
        built_s = time.perf_counter() - started
        expected, records = service.exchange.state_hash(), service.log.next_seq - 1
        started = time.perf_counter()
        snapshot_bytes = len(service.snapshot_bytes())
        pickle_s = time.perf_counter() - started
        service.write_snapshot_now()
        service.log.close()
        shutil.move(data / "snapshot.pickle", aside / "final.pickle")
        full = timed_start(data)
        shutil.copyfile(aside / "final.pickle", data / "snapshot.pickle")
        snap = timed_start(data)
        shutil.copyfile(aside / "snapshot.pickle", data / "snapshot.pickle")
        tail = timed_start(data)
    print(f"{args.commands} commands ({records} records, {args.accounts} accounts) "
          f"built in {built_s:.1f} s; building the final snapshot (pickle and hashes; in a running "
          f"server a forked child does this) took {pickle_s:.2f} s for {snapshot_bytes / 2**20:.1f} MiB\n")
    print("| start | seconds | ratio vs full replay | snapshot seq used | state hash equal |")
    print("|---|---|---|---|---|")
    for name, (seconds, state, used) in (("full replay", full), ("snapshot", snap),
                                         (f"snapshot + {args.tail} tail", tail)):
        print(f"| {name} | {seconds:.2f} | {seconds / full[0]:.2f} | {used} | {state == expected} |")


if __name__ == "__main__":
    main()
