"""The exact engine's throughput on the 2025-10-10 replay with 10,000 accounts (issues 5, 12).

Run: ``python bench/stress_engine.py`` (``--accounts N``, ``--schedule extremes|bars|ohlc``,
``--screen auto|exact|vectorised``: how the risk pass finds units, see ``risk.screen``).
It builds the ``backstop stress`` scenario (the real BTCUSDT 1-minute day from
``../shared/data``, a population of N leveraged accounts, a maker whose ladder follows the
real book depth), times the opening and the index updates through the exact engine
(conservation after every update, every invariant every 25; the time those audits take is
measured too and shown apart), and in the same run times the vectorised Monte Carlo fast path
on the same minute bars and a population of the same size, as a baseline. Prints Markdown
rows.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from backstop.engine.config import EngineConfig
from backstop.sim import stress
from backstop.sim.montecarlo import Market, run_montecarlo
from backstop.sim.paths import load_klines
from backstop.sim.population import PopulationSpec, generate_population
from backstop.sim.scenario import Scenario, ScenarioSpec, find_shared_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--schedule", default="extremes", choices=("extremes", "bars", "ohlc"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--screen", default="auto", choices=("auto", "exact", "vectorised"))
    args = parser.parse_args()
    prices = find_shared_data("btcusdt-perp-1m-2025-10-10.csv")
    if prices is None:
        raise SystemExit("../shared/data/btcusdt-perp-1m-2025-10-10.csv not found")
    spec = ScenarioSpec(prices=prices, n_accounts=args.accounts, seed=args.seed,
                        schedule=args.schedule,
                        depth_file=find_shared_data("btcusdt-perp-bookdepth-2025-10-10.csv"),
                        config=EngineConfig().with_overrides(risk={"screen": args.screen}))
    started = time.perf_counter()
    scenario = Scenario(spec)
    built = time.perf_counter() - started
    audit = _timed_audits()
    cpu = time.thread_time()
    result = stress.run_stress(scenario, progress=False, keep_events=False)
    cpu = time.thread_time() - cpu
    updates, seconds = result.steps_done, result.runtime_s
    fast = _fast_path_seconds(prices, args.accounts, args.seed)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end; "
          f"accounts {args.accounts:,}; schedule {args.schedule}; risk.screen {args.screen}")
    print("| figure | value |\n|---|---|")
    print(f"| scenario build (population, maker, engine) | {built:.1f} s |")
    print(f"| exact engine: opening + {updates} index updates, with the audits | {seconds:.1f} s "
          f"(thread CPU {cpu:.1f} s) |")
    print(f"| of which the per-update audits (conservation and cheap invariants after each update, "
          f"all every 25) | {audit[0]:.1f} s (thread CPU {audit[1]:.1f} s) |")
    print(f"| **exact engine without the audits** | **{seconds - audit[0]:.1f} s (thread CPU "
          f"{cpu - audit[1]:.1f} s)** |")
    print(f"| exact engine: index updates per second | {updates / seconds:.1f} |")
    print(f"| exact engine: account-updates per second | {args.accounts * updates / seconds:,.0f} |")
    print(f"| exact engine: events per second | {len(result.events) / seconds:,.0f} (bulky order "
          "events not kept) |")
    print(f"| conservation audits / violations | {result.checks.conservation} / "
          f"{len(result.checks.violations)} |")
    print(f"| baseline: fast path, same bars, {args.accounts:,} accounts, 1 path | {fast * 1000:.1f} ms |")
    print(f"| ratio exact / fast path (same run) | {seconds / fast:,.0f}× |")


def _timed_audits() -> list[float]:
    """Wrap the stress run's per-step audit so its wall and thread CPU time add up in the
    returned cells."""
    total = [0.0, 0.0]
    check = stress._check

    def timed(*args, **kwargs):
        start, cpu = time.perf_counter(), time.thread_time()
        check(*args, **kwargs)
        total[0] += time.perf_counter() - start
        total[1] += time.thread_time() - cpu
    stress._check = timed
    return total


def _fast_path_seconds(prices, accounts: int, seed: int) -> float:
    bars = load_klines(prices)
    market = Market.from_ohlc(bars)
    rng = np.random.default_rng(seed)
    pop = generate_population(PopulationSpec(n_accounts=accounts, entry_window_steps=1), rng)
    run_montecarlo(market, pop)  # warm the JIT outside the timing
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        run_montecarlo(market, pop)
        best = min(best, time.perf_counter() - start)
    return best


if __name__ == "__main__":
    main()
