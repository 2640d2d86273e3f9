"""What the API's event-built history costs next to the engine that makes the events.

A seeded market (a maker quoting around the index, leveraged takers, moves with the book
pulled: liquidations, ADL, funding) runs through the exact engine; the time of
``Exchange.execute`` is the baseline. The same events then go through the API tracker
(orders, fills, bills, position histories, candles, public trades), which the server runs
after every logged command and on every replay. Prints both and their ratio.

    .venv/bin/python bench/tracker_history.py --rounds 2000 --seed 5
"""

from __future__ import annotations

import argparse
import random
import time
from decimal import Decimal

from backstop import Exchange
from backstop.api.tracker import Tracker
from backstop.model.catalogue import default_catalogue
from backstop.model.commands import CancelOrder, Deposit, PlaceOrder, SetIndexPrice, SettleFunding
from backstop.model.enums import MarginMode, OrderType, Side

INSTRUMENTS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP")
MAKER, TRADERS = 1, range(2, 40)


def run_market(rounds: int, seed: int) -> tuple[float, list[list[object]]]:
    """Engine seconds and every command's events."""
    rng = random.Random(seed)
    catalogue = default_catalogue().subset(list(INSTRUMENTS))
    ex = Exchange(catalogue, keep_log=False)
    batches: list[list[object]] = []
    spent = 0.0
    ts = 1_760_000_000_000
    index = {i.inst_family: i.index_px for i in catalogue}

    def run(command) -> None:
        nonlocal spent
        start = time.perf_counter()
        batches.append(ex.execute(command))
        spent += time.perf_counter() - start

    run(Deposit(ts, MAKER, "USDT", Decimal("100000000")))
    for uid in TRADERS:
        run(Deposit(ts, uid, "USDT", Decimal(rng.randint(300, 5000))))
    for _ in range(rounds):
        ts += rng.randint(500, 60_000)
        inst = catalogue.get(rng.choice(INSTRUMENTS))
        mark = inst.ticks_to_px(ex.state.mark_ticks[inst.inst_id])
        for ord_id, order in list(ex.state.open_orders.get(MAKER, {}).items()):
            if order.inst_id == inst.inst_id:
                run(CancelOrder(ts, MAKER, inst.inst_id, ord_id))
        pulled = rng.random() < 0.15
        for level in range(1, 5) if not pulled else ():
            for side, sign in ((Side.BUY, -1), (Side.SELL, 1)):
                px = (mark * (1 + sign * Decimal(level) / 500)).quantize(inst.tick_sz)
                run(PlaceOrder(ts, MAKER, inst.inst_id, side, OrderType.LIMIT, inst.min_sz * 200, px))
        for _ in range(rng.randint(1, 5)):
            run(PlaceOrder(ts, rng.choice(TRADERS), inst.inst_id, rng.choice(list(Side)), OrderType.MARKET,
                           inst.min_sz * rng.randint(1, 60), td_mode=rng.choice(list(MarginMode))))
        move = Decimal(rng.choice((-1, 1)) * rng.randint(0, 120 if pulled else 30)) / 1000
        index[inst.inst_family] = (index[inst.inst_family] * (1 + move)).quantize(inst.tick_sz)
        run(SetIndexPrice(ts, inst.inst_family, index[inst.inst_family]))
        if rng.random() < 0.1:
            run(SettleFunding(ts))
    return spent, batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    engine_s, batches = run_market(args.rounds, args.seed)
    events = sum(len(b) for b in batches)
    best = float("inf")
    for _ in range(3):
        tracker = Tracker()
        start = time.perf_counter()
        for batch in batches:
            tracker.apply(batch)
        best = min(best, time.perf_counter() - start)
    print(f"{len(batches)} commands, {events} events")
    print(f"engine  {engine_s * 1000:9.1f} ms  ({events / engine_s:,.0f} events/s)")
    print(f"tracker {best * 1000:9.1f} ms  ({events / best:,.0f} events/s, best of 3)")
    print(f"tracker / engine = {best / engine_s:.3f}")


if __name__ == "__main__":
    main()
