"""Benchmark the Monte Carlo fast paths against per-step rescan baselines of the same model.

Run: ``python bench/montecarlo.py`` (full: 1,000 paths x 1,440 one-minute steps x 10,000
accounts) or ``python bench/montecarlo.py --quick``.

- ``--section feedback`` (the default): the fast path with feedback (:mod:`backstop.sim.contagion`),
  5 instruments, isolated and cross accounts; against the same walk with feedback off, and against
  its rescan baseline (every open position scanned at every step, same results), which runs on
  the first ``--rescan-paths`` paths and is extrapolated per path; results are checked identical.
- ``--section open-loop``: the single-instrument first-passage fast path (the earlier figures)
  against its numpy and numba rescans, extrapolated per account-step.

Prints Markdown table rows: wall seconds, process CPU seconds (all threads; the machine is
shared, so CPU time is the steadier figure) and the load average.
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
from backstop.sim.contagion import CascadeOutcome, FundLayout, fund_outcome, run_cascade
from backstop.sim.feedback import SHIPPED_FEEDBACK
from backstop.sim.impact import DAY_MEDIAN_CURVE
from backstop.sim.mc_cli import DEFAULT_OI_SHARE
from backstop.sim.montecarlo import (
    FundConfig,
    Market,
    MonteCarloResult,
    first_passage_steps,
    rescan_steps_numba,
    rescan_steps_numpy,
    run_montecarlo,
)
from backstop.sim.paths import MINUTE_YEARS, SHIPPED_UNIVERSE, correlated_log_paths, merton_paths
from backstop.sim.population import (
    Book,
    BookSpec,
    Population,
    PopulationSpec,
    generate_book,
    generate_population,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1440)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--rescan-paths", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--quick", action="store_true", help="100 paths, 2,000 accounts")
    parser.add_argument("--section", choices=("feedback", "open-loop"), default="feedback")
    parser.add_argument("--oi-share", type=float, default=DEFAULT_OI_SHARE)
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
    if args.section == "feedback":
        feedback_main(args)
    else:
        open_loop_main(args)


def open_loop_main(args: argparse.Namespace) -> None:
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


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """Best wall time (s) and the process CPU time (s, all threads) of that call, and its result."""
    best, cpu, result = float("inf"), 0.0, None
    for _ in range(repeat):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = fn()
        wall = time.perf_counter() - wall0
        if wall < best:
            best, cpu = wall, time.process_time() - cpu0
    return best, cpu, result


def build_contagion(args: argparse.Namespace) -> tuple[np.ndarray, Book, float]:
    """Merton BTC paths (FITTED_JUMP), the shipped universe's correlated altcoins, and a book of
    ``args.accounts`` accounts (half cross, 2-4 legs each) at the universe's start prices."""
    rng = np.random.default_rng(args.seed)
    fit, universe = FITTED_JUMP, SHIPPED_UNIVERSE
    start = time.perf_counter()
    btc = merton_paths(rng, universe.s0[0], args.paths, args.steps, MINUTE_YEARS,
                       fit.mu, fit.sigma, fit.jump_rate, fit.jump_mean, fit.jump_std)
    exog = correlated_log_paths(btc, universe, rng)
    t_paths = time.perf_counter() - start
    return exog, generate_book(BookSpec(PopulationSpec(n_accounts=args.accounts)), universe.s0, rng), t_paths


def feedback_main(args: argparse.Namespace) -> None:
    """The fast path with feedback against feedback off and against its rescan."""
    exog, book, t_paths = build_contagion(args)
    params = [SHIPPED_FEEDBACK[i] for i in SHIPPED_UNIVERSE.inst_ids]
    threads = numba.get_num_threads()
    start = time.perf_counter()
    def full(feedback: bool, paths: np.ndarray = exog, rescan: bool = False) -> tuple[CascadeOutcome, object]:
        outcome = run_cascade(paths, book, params, feedback=feedback, oi_share=args.oi_share, rescan=rescan)
        split = book.gross_notional_usdt(len(params))
        funds = [fund_outcome(outcome.flows_usdt, layout, 250_000.0, split / split.sum(), FundConfig())
                 for layout in FundLayout]
        return outcome, funds

    for rescan in (False, True):
        full(True, exog[:1], rescan)
    t_compile = time.perf_counter() - start

    on_wall, on_cpu, (on, funds) = timed(lambda: full(True), args.repeat)
    off_wall, off_cpu, (off, _) = timed(lambda: full(False), args.repeat)
    few = exog[: args.rescan_paths]
    fast_few_wall, _, fast_few = timed(lambda: run_cascade(few, book, params, oi_share=args.oi_share,
                                                           n_record=args.rescan_paths), args.repeat)
    rescan_wall, rescan_cpu, rescan = timed(lambda: run_cascade(few, book, params, oi_share=args.oi_share,
                                                                n_record=args.rescan_paths, rescan=True), 1)
    if not (np.array_equal(fast_few.account_step, rescan.account_step)
            and np.array_equal(fast_few.flows_usdt, rescan.flows_usdt)):
        raise SystemExit("fast path and rescan disagree")
    load = os.getloadavg()
    scale = args.paths / args.rescan_paths
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {load[0]:.2f} "
          f"{load[1]:.2f} {load[2]:.2f}; numba {numba.__version__} ({threads} threads), "
          f"numpy {np.__version__}")
    print(f"size: {args.paths} paths x {args.steps} steps x {args.accounts} accounts "
          f"({book.n_legs} positions, {int((~book.isolated).sum())} cross accounts) x "
          f"{len(params)} instruments; Merton (FITTED_JUMP) BTC, correlated altcoins; "
          f"OI share {args.oi_share:g}\n")
    print("| figure | value |\n|---|---|")
    row("price paths (not in the MC time)", f"{t_paths:.2f} s")
    row("JIT compile or cache load (not in the MC time)", f"{t_compile:.2f} s")
    row("feedback on: walk + both fund layouts", f"{on_wall:.2f} s wall, {on_cpu:.2f} s CPU")
    row("feedback off: the same", f"{off_wall:.2f} s wall, {off_cpu:.2f} s CPU")
    row("cost of feedback (on / off)", f"{on_wall / off_wall:.2f}x wall, {on_cpu / off_cpu:.2f}x CPU")
    row(f"rescan, feedback on, {args.rescan_paths} paths (measured)", f"{rescan_wall:.2f} s wall, "
        f"{rescan_cpu:.2f} s CPU; fast path on the same paths {fast_few_wall:.3f} s")
    row("rescan at full size (extrapolated per path)", f"{rescan_wall * scale:.1f} s")
    row("fast path vs rescan, same paths, same run", f"{rescan_wall / fast_few_wall:.1f}x")
    row("liquidations per path, on / off", f"{on.n_liquidations.sum(axis=1).mean():.0f} / "
        f"{off.n_liquidations.sum(axis=1).mean():.0f}")
    row("cross accounts liquidated per path; legs by another coin", f"{on.n_cross.mean():.1f}; "
        f"{on.n_contagion.mean():.1f}")
    amplification = on.mark_drawdown.mean(axis=0) / on.exog_drawdown.mean(axis=0)
    row("amplification per instrument (mean drawdowns)", ", ".join(f"{a:.2f}" for a in amplification))
    for f in funds:
        row(f"P(ADL), fund for 1 % ruin: {f.layout.value}", f"{f.p_adl:.3f}, {f.fund_needed(0.01):,.0f} USDT")


if __name__ == "__main__":
    main()
