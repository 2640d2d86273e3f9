"""Benchmark the Monte Carlo fast path against the per-step rescan baselines.

Run: ``python bench/montecarlo.py`` (full: 1,000 paths x 1,440 one-minute steps x 10,000
accounts) or ``python bench/montecarlo.py --quick``. The rescan baselines run on the first
``--rescan-paths`` paths only; their time is extrapolated per account-step to the full
size, and the fast path is checked to give identical liquidation steps on those paths.
Prints Markdown table rows.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numba
import numpy as np

from backstop.sim.calibrate import FITTED_JUMP
from backstop.sim.impact import DAY_MEDIAN_CURVE
from backstop.sim.montecarlo import (
    FundConfig,
    Market,
    MonteCarloResult,
    first_passage_steps,
    rescan_steps_numba,
    rescan_steps_numpy,
    run_montecarlo,
)
from backstop.sim.paths import MINUTE_YEARS, merton_paths
from backstop.sim.population import Population, PopulationSpec, generate_population


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1440)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--rescan-paths", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--quick", action="store_true", help="100 paths, 2,000 accounts")
    args = parser.parse_args()
    if args.quick:
        args.paths, args.accounts, args.rescan_paths, args.repeat = 100, 2000, 5, 1
    return args


def best_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Fastest wall time (s) of ``repeat`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def row(figure: str, value: str) -> None:
    print(f"| {figure} | {value} |")


def rate_text(seconds: float, work: int) -> str:
    return f"{seconds:.3f} s = {work / seconds:.3g} account-steps/s"


@dataclass
class Timings:
    """Wall seconds; ``steps``/``full`` map a thread count to the fast path's time."""

    paths: float
    compile: float
    steps: dict[int, float] = field(default_factory=dict)
    full: dict[int, float] = field(default_factory=dict)
    rescan_numpy: float = 0.0
    rescan_numba_1: float = 0.0


def build(args: argparse.Namespace) -> tuple[Market, Population, float]:
    """Merton paths with the fitted jump parameters, and a default population."""
    rng = np.random.default_rng(args.seed)
    fit = FITTED_JUMP
    start = time.perf_counter()
    prices = merton_paths(
        rng, 110_000.0, args.paths, args.steps, MINUTE_YEARS,
        fit.mu, fit.sigma, fit.jump_rate, fit.jump_mean, fit.jump_std,
    )  # fmt: skip
    t_paths = time.perf_counter() - start
    spec = PopulationSpec(n_accounts=args.accounts, entry_window_steps=args.steps // 6)
    return Market.from_prices(prices), generate_population(spec, rng), t_paths


def main() -> None:
    args = parse_args()
    market, population, t_paths = build(args)
    small = Market.from_prices(market.close[: args.rescan_paths])
    start = time.perf_counter()
    for kernel in (first_passage_steps, rescan_steps_numba):
        kernel(Market.from_prices(market.close[:1]), population)
    timings = Timings(paths=t_paths, compile=time.perf_counter() - start)

    def full_mc() -> MonteCarloResult:
        return run_montecarlo(market, population, FundConfig(), DAY_MEDIAN_CURVE)

    threads = numba.get_num_threads()
    for n_threads in sorted({1, threads}):
        numba.set_num_threads(n_threads)
        timings.steps[n_threads] = best_time(
            lambda: first_passage_steps(market, population), args.repeat
        )[0]
        timings.full[n_threads], result = best_time(full_mc, args.repeat)
    numba.set_num_threads(1)
    timings.rescan_numba_1 = best_time(lambda: rescan_steps_numba(small, population), 1)[0]
    numba.set_num_threads(threads)
    timings.rescan_numpy, rescan = best_time(lambda: rescan_steps_numpy(small, population), 1)
    if not np.array_equal(first_passage_steps(small, population), rescan):
        raise SystemExit("fast path and rescan disagree")
    report(args, threads, timings, result)


def report(args: argparse.Namespace, threads: int, t: Timings, result: MonteCarloResult) -> None:
    """Print the set-up and the figures as Markdown table rows."""
    work = args.paths * args.steps * args.accounts
    work_small = args.rescan_paths * args.steps * args.accounts
    rate_numpy = work_small / t.rescan_numpy
    rate_numba_1 = work_small / t.rescan_numba_1
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; numba {numba.__version__} "
          f"({threads} threads), numpy {np.__version__}")  # fmt: skip
    print(f"size: {args.paths} paths x {args.steps} steps x {args.accounts} accounts "
          f"= {work:.3g} account-steps; Merton (FITTED_JUMP), 1-minute steps\n")  # fmt: skip
    print("| figure | value |\n|---|---|")
    row("price paths (not in the MC time)", f"{t.paths:.3f} s")
    row("JIT compile or cache load (not in the MC time)", f"{t.compile:.2f} s")
    for n in t.steps:
        row(f"fast path, liquidation steps only, {n} thread(s)", rate_text(t.steps[n], work))
        row(f"fast path, full MC (steps, fills, fund), {n} thread(s)", rate_text(t.full[n], work))
    row(
        f"rescan numpy, {args.rescan_paths} paths (measured)", rate_text(t.rescan_numpy, work_small)
    )
    row("rescan numpy at full size (extrapolated per account-step)", f"{work / rate_numpy:.1f} s")
    row(
        f"rescan numba, 1 thread, {args.rescan_paths} paths",
        rate_text(t.rescan_numba_1, work_small),
    )
    full_rate = work / t.full[threads]
    row(f"full MC ({threads} threads) vs rescan numpy, same run", f"{full_rate / rate_numpy:.0f}x")
    row("steps, 1 thread each: fast vs rescan numpy", f"{work / t.steps[1] / rate_numpy:.0f}x")
    row("steps, 1 thread each: fast vs rescan numba", f"{work / t.steps[1] / rate_numba_1:.1f}x")
    row("liquidations per path (mean)", f"{result.n_liquidations.mean():.0f} of {args.accounts}")
    row("P(fund exhausted), P(ADL)", f"{result.p_exhausted:.3f}, {result.p_adl:.3f}")
    row("fund for 1 % ruin", f"{result.fund_needed_usdt:,.0f} USDT")


if __name__ == "__main__":
    main()
