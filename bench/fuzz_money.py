"""Long adversarial money fuzzing: ``python bench/fuzz_money.py --minutes 60 --seed 0``.

Runs :func:`backstop.sim.adversary.run_episode` on seeds ``S, S+1, ...`` (each a random policy
combination and a stream of hostile commands, every invariant checked after every command,
then a replay to the same state hash) until the time is up, on ``--workers`` processes. On the
first violation it prints the seed and step and exits 1: ``run_episode(seed, commands)``
reproduces it exactly. Otherwise it prints what was exercised (commands, liquidations, ADL
trades, deficits covered, socialized-loss events) for RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from backstop.sim.adversary import Tally, run_episode


def _episode(seed: int, commands: int) -> tuple[int, Tally | str]:
    try:
        return seed, run_episode(seed, commands)
    except AssertionError as exc:
        return seed, str(exc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0, help="first episode seed")
    parser.add_argument("--commands", type=int, default=500, help="commands per episode")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", help="write the tally here too")
    args = parser.parse_args()
    deadline = time.monotonic() + args.minutes * 60
    total, episodes, next_seed = Tally(), 0, args.seed
    started = time.monotonic()
    with ProcessPoolExecutor(args.workers) as pool:
        pending = set()
        while True:
            while time.monotonic() < deadline and len(pending) < 2 * args.workers:
                pending.add(pool.submit(_episode, next_seed, args.commands))
                next_seed += 1
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                seed, result = future.result()
                if isinstance(result, str):
                    print(f"VIOLATION at seed {seed}: {result}", file=sys.stderr)
                    for other in pending:
                        other.cancel()
                    return 1
                total.merge(result)
                episodes += 1
    summary = {
        "minutes": round((time.monotonic() - started) / 60, 2), "episodes": episodes,
        "seeds": f"{args.seed}..{next_seed - 1}", "commands": total.commands,
        "rejected": total.rejected, "liquidations": total.liquidations,
        "adl_trades": total.adl_trades, "deficits_covered": total.deficits_covered,
        "socialized_events": total.socialized_events, "violations": 0,
        "events": dict(sorted(total.events.items())),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
