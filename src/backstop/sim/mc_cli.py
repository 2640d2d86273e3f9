"""``backstop stress --paths N``: Monte Carlo fund adequacy on the vectorised fast path.

:func:`run_paths` draws N seeded paths of one-minute steps from a model: ``crash`` (the
built-in 2025-10-10 crash, :mod:`backstop.sim.price_sources`, one 180-minute cycle by default)
or a fitted day of ``gbm``, ``garch`` or ``jump`` (constants from :mod:`backstop.sim.calibrate`),
a population from :mod:`backstop.sim.population`, and runs :func:`backstop.sim.montecarlo.run_montecarlo`.
:func:`print_summary` shows the fund-minimum quantiles, P(ADL), P(exhausted), expected
shortfall and the fund needed for a target ruin probability; :func:`write_table` writes the
per-path results (Parquet when pyarrow is installed, and always CSV).
:func:`stress_paths_command` is the one call the CLI makes.

The fast path is statistical (floats); :mod:`backstop.sim.agreement` checks it against the
exact engine on the same paths.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from backstop.sim.calibrate import FITTED_GARCH_DAILY, FITTED_GBM, FITTED_JUMP
from backstop.sim.impact import CRASH_CURVE, DAY_MEDIAN_CURVE, DepthCurve
from backstop.sim.montecarlo import FundConfig, Market, MonteCarloResult, run_montecarlo
from backstop.sim.paths import MINUTE_DAYS, MINUTE_YEARS, garch_paths, gbm_paths, merton_paths
from backstop.sim.population import Population, PopulationSpec, generate_population
from backstop.sim.price_sources import CRASH_CYCLE_MINUTES, crash_closes

MODELS = ("crash", "gbm", "garch", "jump")
CURVES: dict[str, DepthCurve | None] = {"day": DAY_MEDIAN_CURVE, "crash": CRASH_CURVE, "none": None}
FUND_QUANTILES = (0.001, 0.01, 0.05, 0.25, 0.5)
DEFAULT_S0_USDT = 100_000.0
DEFAULT_STEPS = 1440  # one day of minutes


def default_steps(model: str) -> int:
    """A path's natural length in minutes: one crash cycle, else one day."""
    return CRASH_CYCLE_MINUTES if model == "crash" else DEFAULT_STEPS
MAX_CELLS = 2_000_000_000  # paths × steps × accounts beyond this is refused (memory/time)


def generate_prices(model: str, rng: np.random.Generator, n_paths: int, n_steps: int,
                    s0: float = DEFAULT_S0_USDT) -> np.ndarray:
    """Prices (n_paths, n_steps + 1) in USDT per BTC, one-minute steps; ``crash`` starts at its
    own anchor (``s0`` unused), the fitted models at ``s0``."""
    if model == "crash":
        return np.stack([crash_closes(rng, n_steps) for _ in range(n_paths)])
    if model == "gbm":
        return gbm_paths(rng, s0, n_paths, n_steps, MINUTE_YEARS, FITTED_GBM.mu, FITTED_GBM.sigma)
    if model == "garch":
        return garch_paths(rng, s0, n_paths, n_steps, FITTED_GARCH_DAILY.rescaled(MINUTE_DAYS))
    if model == "jump":
        j = FITTED_JUMP
        return merton_paths(rng, s0, n_paths, n_steps, MINUTE_YEARS, j.mu, j.sigma, j.jump_rate,
                            j.jump_mean, j.jump_std)
    raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {model!r}")


@dataclass(frozen=True)
class PathsRun:
    """What :func:`run_paths` produced: the inputs' summary and the Monte Carlo result."""

    model: str
    n_paths: int
    n_steps: int
    seed: int
    population: Population
    fund: FundConfig
    result: MonteCarloResult


def ensure_paths_inputs(paths: int, accounts: int, steps: int, fund_usdt: float, ruin_target: float) -> None:
    """Raise ValueError naming the first impossible input."""
    if paths < 1:
        raise ValueError(f"--paths must be >= 1, got {paths}")
    if accounts < 1:
        raise ValueError(f"--accounts must be >= 1, got {accounts}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if paths * steps * accounts > MAX_CELLS:
        raise ValueError(f"paths × steps × accounts = {paths * steps * accounts:,} exceeds {MAX_CELLS:,}")
    if not np.isfinite(fund_usdt) or fund_usdt < 0:
        raise ValueError(f"--fund must be a finite amount >= 0 USDT, got {fund_usdt}")
    if not 0.0 <= ruin_target < 1.0:
        raise ValueError(f"ruin target must be in [0, 1), got {ruin_target}")


def run_paths(paths: int, model: str = "gbm", accounts: int = 10_000, seed: int = 0,
              fund_usdt: float = 250_000.0, steps: int | None = None, curve: str = "day",
              ruin_target: float = 0.01, spec: PopulationSpec | None = None) -> PathsRun:
    """Generate ``paths`` paths and a population of ``accounts`` (seeded), run the fast path.

    ``fund_usdt`` is the initial insurance fund; ``curve`` picks the depth curve (``day``,
    ``crash`` or ``none``); ``spec`` overrides the population defaults (its ``n_accounts``
    is replaced by ``accounts``); ``steps`` defaults to :func:`default_steps`. Same seed, same
    result.
    """
    steps = default_steps(model) if steps is None else steps
    ensure_paths_inputs(paths, accounts, steps, fund_usdt, ruin_target)
    if curve not in CURVES:
        raise ValueError(f"curve must be one of {', '.join(CURVES)}, got {curve!r}")
    if model not in MODELS:
        raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {model!r}")
    price_rng, population_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    prices = generate_prices(model, price_rng, paths, steps)
    base = spec or PopulationSpec()
    population = generate_population(PopulationSpec.from_dict({**base.__dict__, "n_accounts": accounts}),
                                     population_rng)
    fund = FundConfig(initial_usdt=fund_usdt, ruin_target=ruin_target)
    result = run_montecarlo(Market.from_prices(prices), population, fund, CURVES[curve])
    return PathsRun(model, paths, steps, seed, population, fund, result)


def path_table(run: PathsRun) -> dict[str, np.ndarray]:
    """Per-path columns: fund minimum and end, required fund, shortfall (USDT), outflow and
    inflow totals (USDT, from per-step net flows), liquidations, exhausted, ADL triggered."""
    r = run.result
    flows = r.flows_usdt
    return {
        "path": np.arange(run.n_paths),
        "fund_min_usdt": r.fund_min_usdt,
        "fund_end_usdt": run.fund.initial_usdt + flows.sum(axis=1),
        "required_usdt": r.required_usdt,
        "shortfall_usdt": r.shortfall_usdt,
        "net_outflow_usdt": np.maximum(-flows, 0.0).sum(axis=1),
        "net_inflow_usdt": np.maximum(flows, 0.0).sum(axis=1),
        "n_liquidations": r.n_liquidations,
        "exhausted": r.exhausted,
        "adl_triggered": r.adl_triggered,
    }


def write_table(columns: dict[str, np.ndarray], out_dir: str | Path, stem: str) -> list[Path]:
    """Write ``stem.csv`` and, when pyarrow is installed, ``stem.parquet``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f"{stem}.csv"]
    names = list(columns)
    with written[0].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(zip(*(_plain(columns[n]) for n in names), strict=True))
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return written
    pq.write_table(pa.table({n: list(_plain(columns[n])) for n in names}), out / f"{stem}.parquet")
    written.append(out / f"{stem}.parquet")
    return written


def _plain(values) -> list:
    return np.asarray(values).tolist()


def summary_table(run: PathsRun) -> Table:
    """The rich table of the fund distribution and the headline probabilities."""
    r = run.result
    table = Table(title=f"Monte Carlo: {run.n_paths:,} {run.model} paths × {run.n_steps:,} min × "
                  f"{run.population.size:,} accounts (seed {run.seed})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("initial fund", f"{run.fund.initial_usdt:,.0f} USDT")
    for q in FUND_QUANTILES:
        table.add_row(f"fund minimum, {q:.1%} quantile", f"{np.quantile(r.fund_min_usdt, q):,.0f} USDT")
    table.add_row("mean liquidations per path", f"{r.n_liquidations.mean():,.1f}")
    table.add_row("P(ADL triggered)", f"{r.p_adl:.2%}")
    table.add_row("P(fund exhausted)", f"{r.p_exhausted:.2%}")
    table.add_row(f"expected shortfall ({run.fund.tail_q:.0%} tail), fund minimum",
                  f"{r.es_fund_min_usdt:,.0f} USDT")
    table.add_row(f"expected shortfall ({run.fund.tail_q:.0%} tail), shortfall",
                  f"{r.es_shortfall_usdt:,.0f} USDT")
    table.add_row(f"fund needed for P(ruin) ≤ {run.fund.ruin_target:.1%}",
                  f"{r.fund_needed_usdt + 0.0:,.0f} USDT")
    return table


def stress_paths_command(paths: int, model: str = "gbm", accounts: int = 10_000, seed: int = 0,
                         out: str | Path | None = None, fund: float = 250_000.0,
                         steps: int | None = None, curve: str = "day", ruin_target: float = 0.01,
                         spec: PopulationSpec | None = None, console: Console | None = None) -> PathsRun:
    """The CLI hook: run, print the summary, write ``paths.csv``/``paths.parquet`` into ``out``.

    Bad inputs raise ValueError with a one-line message (the CLI turns it into ``fail()``).
    """
    console = console or Console()
    run = run_paths(paths, model, accounts, seed, fund, steps, curve, ruin_target, spec)
    console.print(summary_table(run))
    if out is not None:
        written = write_table(path_table(run), out, "paths")
        console.print(f"per-path results: {', '.join(str(p) for p in written)}")
    return run
