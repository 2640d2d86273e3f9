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

from backstop import Exchange
from backstop.api.tracker import Tracker
from backstop.model.catalogue import default_catalogue
from backstop.sim.bot_market import bot_market_commands

INSTRUMENTS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP")
TRADERS = range(2, 40)


def run_market(rounds: int, seed: int) -> tuple[float, list[list[object]]]:
    """Engine seconds and every command's events."""
    ex = Exchange(default_catalogue().subset(list(INSTRUMENTS)), keep_log=False)
    batches: list[list[object]] = []
    spent = 0.0
    for command in bot_market_commands(ex, random.Random(seed), rounds, TRADERS):
        start = time.perf_counter()
        batches.append(ex.execute(command))
        spent += time.perf_counter() - start
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
