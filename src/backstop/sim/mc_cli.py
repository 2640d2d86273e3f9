"""``backstop stress --paths N``: Monte Carlo fund adequacy on the vectorised fast path.

:func:`run_paths` draws N seeded paths of one-minute steps from a model: ``crash`` (the
built-in 2025-10-10 crash, :mod:`backstop.sim.price_sources`, one 180-minute cycle by default)
or a fitted day of ``gbm``, ``garch`` or ``jump`` (constants from :mod:`backstop.sim.calibrate`),
a population from :mod:`backstop.sim.population`, and runs :func:`backstop.sim.montecarlo.run_montecarlo`.
:func:`print_summary` shows the fund-minimum quantiles, P(ADL), P(exhausted), expected
shortfall and the fund needed for a target ruin probability; :func:`write_table` writes the
per-path results (Parquet when pyarrow is installed, and always CSV).
:func:`run_contagion` (``--paths N --feedback``) is the fast path with feedback instead: five
correlated instruments, isolated and cross accounts, liquidations that move the price
(:mod:`backstop.sim.contagion`), and the shared pool against per-family funds with ADL.
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
from backstop.sim.contagion import CascadeOutcome, FundLayout, FundOutcome, fund_outcome, run_cascade
from backstop.sim.feedback import SHIPPED_FEEDBACK, FeedbackParams
from backstop.sim.impact import CRASH_CURVE, DAY_MEDIAN_CURVE, DepthCurve
from backstop.sim.montecarlo import FundConfig, Market, MonteCarloResult, run_montecarlo, summarize_fund
from backstop.sim.paths import (
    MINUTE_DAYS,
    MINUTE_YEARS,
    SHIPPED_UNIVERSE,
    Universe,
    correlated_log_paths,
    garch_paths,
    gbm_paths,
    merton_paths,
)
from backstop.sim.population import BookSpec, PopulationSpec, generate_book, generate_population
from backstop.sim.price_sources import CRASH_CYCLE_MINUTES, crash_closes

MODELS = ("crash", "gbm", "garch", "jump")
CURVES: dict[str, DepthCurve | None] = {"day": DAY_MEDIAN_CURVE, "crash": CRASH_CURVE, "none": None}
FUND_QUANTILES = (0.001, 0.01, 0.05, 0.25, 0.5)
DEFAULT_S0_USDT = 100_000.0
DEFAULT_STEPS = 1440  # one day of minutes
DEFAULT_OI_SHARE = 0.03
"""The population's default share of the market's open interest under feedback: at 3 % the shipped
books hold on the fitted models' ordinary days (amplification ~1) while the crash model deepens,
BTC's by about a third and the thin altcoins' several times; at 30 % and more the shipped
power-law impact runs away on most paths (see BENCHMARKS.md)."""


def default_steps(model: str) -> int:
    """A path's natural length in minutes: one crash cycle, else one day."""
    return CRASH_CYCLE_MINUTES if model == "crash" else DEFAULT_STEPS
MAX_CELLS = 2_000_000_000  # paths × steps × accounts beyond this is refused (memory/time)
MAX_FEEDBACK_CELLS = 50_000_000  # paths × steps × instruments (three float64 arrays of it: 1.2 GB)
MAX_FEEDBACK_ACCOUNTS = 1_000_000


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
class ContagionSummary:
    """The multi-instrument part of a run with feedback (:func:`run_contagion`).

    ``inst_ids``; ``outcome``: the walk's per-path arrays (:class:`CascadeOutcome`); ``funds``:
    the shared pool and the per-family funds with ADL on the same flows; ``oi_share``: the
    population's share of the market's open interest; ``sources``: where the universe's and the
    feedback's values came from."""

    inst_ids: tuple[str, ...]
    outcome: CascadeOutcome
    funds: tuple[FundOutcome, ...]
    oi_share: float
    n_cross_accounts: int
    sources: dict[str, str]

    def amplification(self) -> np.ndarray:
        """Per instrument: mean cascade drawdown / mean exogenous drawdown over paths (1 if the
        exogenous paths never fall)."""
        exog = self.outcome.exog_drawdown.mean(axis=0)
        mark = self.outcome.mark_drawdown.mean(axis=0)
        return np.where(exog > 0, mark / np.where(exog > 0, exog, 1.0), 1.0)


@dataclass(frozen=True)
class PathsRun:
    """What :func:`run_paths` or :func:`run_contagion` produced: the inputs' summary and the
    Monte Carlo result (for a contagion run, of the shared pool without ADL, summed over
    instruments, so every single-fund figure reads the same); ``n_accounts`` accounts."""

    model: str
    n_paths: int
    n_steps: int
    seed: int
    n_accounts: int
    fund: FundConfig
    result: MonteCarloResult
    contagion: ContagionSummary | None = None


def ensure_paths_inputs(paths: int, accounts: int, steps: int, fund_usdt: float, ruin_target: float,
                        instruments: int | None = None) -> None:
    """Raise ValueError naming the first impossible input. The open-loop fast path's work and
    memory grow with paths × steps × accounts; with ``instruments`` (the feedback path) they grow
    with paths × steps × instruments (the walk is O(steps + liquidations)) and the accounts."""
    if paths < 1:
        raise ValueError(f"--paths must be >= 1, got {paths}")
    if accounts < 1:
        raise ValueError(f"--accounts must be >= 1, got {accounts}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if instruments is None and paths * steps * accounts > MAX_CELLS:
        raise ValueError(f"paths × steps × accounts = {paths * steps * accounts:,} exceeds {MAX_CELLS:,}")
    if instruments is not None and paths * steps * instruments > MAX_FEEDBACK_CELLS:
        raise ValueError(f"paths × steps × instruments = {paths * steps * instruments:,} exceeds "
                         f"{MAX_FEEDBACK_CELLS:,}")
    if instruments is not None and accounts > MAX_FEEDBACK_ACCOUNTS:
        raise ValueError(f"--accounts must be <= {MAX_FEEDBACK_ACCOUNTS:,} with --feedback, got {accounts:,}")
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
    return PathsRun(model, paths, steps, seed, population.size, fund, result)


def run_contagion(paths: int, model: str = "crash", accounts: int = 10_000, seed: int = 0,
                  fund_usdt: float = 250_000.0, steps: int | None = None, ruin_target: float = 0.01,
                  spec: PopulationSpec | None = None, instruments: int = 5, feedback: bool = True,
                  oi_share: float = DEFAULT_OI_SHARE, universe: Universe = SHIPPED_UNIVERSE,
                  params: dict[str, FeedbackParams] | None = None) -> PathsRun:
    """The fast path with feedback (:mod:`backstop.sim.contagion`): BTC paths from ``model``, the
    altcoins of ``universe`` correlated to them, a :class:`Book` of ``accounts`` isolated and
    cross accounts over the first ``instruments`` instruments, and the funds with ADL.

    ``oi_share``: the population's open interest as a share of the market's (the depth it meets
    scales with it); ``params``: feedback parameters per instrument id (default: shipped). Same
    seed, same result.
    """
    steps = default_steps(model) if steps is None else steps
    ensure_paths_inputs(paths, accounts, steps, fund_usdt, ruin_target, instruments)
    if model not in MODELS:
        raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {model!r}")
    if not 0.0 < oi_share <= 1.0:
        raise ValueError(f"--oi-share must be in (0, 1], got {oi_share}")
    universe = universe.take(instruments)
    price_rng, population_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    exog = correlated_log_paths(generate_prices(model, price_rng, paths, steps, universe.s0[0]), universe,
                                price_rng)
    base = spec or PopulationSpec()
    book_spec = BookSpec(PopulationSpec.from_dict({**base.__dict__, "n_accounts": accounts}))
    book = generate_book(book_spec.for_instruments(instruments), universe.s0, population_rng)
    chosen = params or SHIPPED_FEEDBACK
    feedback_params = [chosen[inst] for inst in universe.inst_ids]
    outcome = run_cascade(exog, book, feedback_params, feedback=feedback, oi_share=oi_share)
    fund = FundConfig(initial_usdt=fund_usdt, ruin_target=ruin_target)
    split = book.gross_notional_usdt(instruments)
    split = split / split.sum()
    funds = tuple(fund_outcome(outcome.flows_usdt, layout, fund_usdt, split, fund)
                  for layout in FundLayout)
    result = summarize_fund(outcome.flows_usdt.sum(axis=1), outcome.n_liquidations.sum(axis=1), fund)
    sources = dict(universe.sources) | {f"{p.inst_id}.{name}": where for p in feedback_params
                                        for name, where in p.sources.items()}
    summary = ContagionSummary(universe.inst_ids, outcome, funds, oi_share, int((~book.isolated).sum()),
                               sources)
    return PathsRun(model, paths, steps, seed, accounts, fund, result, summary)


def path_table(run: PathsRun) -> dict[str, np.ndarray]:
    """Per-path columns: fund minimum and end, required fund, shortfall (USDT), outflow and
    inflow totals (USDT, from per-step net flows), liquidations, exhausted, ADL triggered."""
    r = run.result
    flows = r.flows_usdt
    return _base_columns(run, r, flows) | ({} if run.contagion is None else contagion_columns(run.contagion))


def contagion_columns(c: ContagionSummary) -> dict[str, np.ndarray]:
    """Per-path columns of a feedback run: drawdowns per instrument (fractions), cross accounts
    liquidated, contagion legs, and per fund layout the socialised loss (USDT) and first ADL step."""
    out = c.outcome
    columns: dict[str, np.ndarray] = {}
    for i, inst in enumerate(c.inst_ids):
        columns[f"{inst}_exog_drawdown"] = out.exog_drawdown[:, i]
        columns[f"{inst}_drawdown"] = out.mark_drawdown[:, i]
        columns[f"{inst}_liquidations"] = out.n_liquidations[:, i]
    columns["cross_liquidated"] = out.n_cross
    columns["contagion_legs"] = out.n_contagion
    for f in c.funds:
        columns[f"{f.layout.value}_socialized_usdt"] = f.socialized_usdt
        columns[f"{f.layout.value}_adl_step"] = f.adl_step
    return columns


def _base_columns(run: PathsRun, r: MonteCarloResult, flows: np.ndarray) -> dict[str, np.ndarray]:
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
                  f"{run.n_accounts:,} accounts (seed {run.seed})")
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


def contagion_table(run: PathsRun) -> Table:
    """Per instrument: drawdowns, amplification, liquidations; then cross accounts and contagion."""
    c = run.contagion
    assert c is not None
    out = c.outcome
    table = Table(title=f"Cascade with feedback: {len(c.inst_ids)} instruments, population = "
                  f"{c.oi_share:.1%} of the market's open interest")
    for name in ("instrument", "exogenous drawdown", "cascade drawdown", "amplification", "liquidations"):
        table.add_column(name, justify="left" if name == "instrument" else "right")
    amplification = c.amplification()
    for i, inst in enumerate(c.inst_ids):
        table.add_row(inst, f"{out.exog_drawdown[:, i].mean():.1%}", f"{out.mark_drawdown[:, i].mean():.1%}",
                      f"×{amplification[i]:.2f}", f"{out.n_liquidations[:, i].mean():,.1f}")
    table.caption = (f"means over paths; cross accounts liquidated {out.n_cross.mean():,.1f} of "
                     f"{c.n_cross_accounts:,} per path, {out.n_contagion.mean():,.1f} of their legs closed "
                     "by another coin's move")
    return table


def fund_layout_table(run: PathsRun) -> Table:
    """The shared pool against per-family funds, both with ADL, on the same flows."""
    c = run.contagion
    assert c is not None
    table = Table(title=f"Fund layouts, {run.fund.initial_usdt:,.0f} USDT in total")
    for name in ("layout", "P(ADL)", "P(exhausted)", "mean socialised",
                 f"socialised, {run.fund.tail_q:.0%} tail", f"fund for P(ruin) ≤ {run.fund.ruin_target:.1%}"):
        table.add_column(name, justify="left" if name == "layout" else "right")
    for f in c.funds:
        table.add_row(LAYOUT_NAMES[f.layout], f"{f.p_adl:.2%}", f"{f.p_exhausted:.2%}",
                      f"{f.socialized_usdt.mean():,.0f} USDT",
                      f"{f.expected_socialized(run.fund.tail_q):,.0f} USDT",
                      f"{f.fund_needed(run.fund.ruin_target):,.0f} USDT")
    return table


LAYOUT_NAMES = {FundLayout.SHARED: "shared pool",
                FundLayout.FAMILY: "per-family funds (split by open interest)"}


def stress_paths_command(paths: int, model: str = "gbm", accounts: int = 10_000, seed: int = 0,
                         out: str | Path | None = None, fund: float = 250_000.0,
                         steps: int | None = None, curve: str = "day", ruin_target: float = 0.01,
                         spec: PopulationSpec | None = None, console: Console | None = None,
                         feedback: bool = False, oi_share: float | None = None) -> PathsRun:
    """The CLI hook: run, print the summary, write ``paths.csv``/``paths.parquet`` into ``out``.

    ``feedback``: the five-instrument fast path with feedback and cross accounts
    (:func:`run_contagion`, ``oi_share`` default :data:`DEFAULT_OI_SHARE`); without it the
    single-instrument open-loop fast path (:func:`run_paths`), which refuses ``oi_share``.

    Bad inputs raise ValueError with a one-line message (the CLI turns it into ``fail()``).
    """
    console = console or Console()
    if feedback:
        run = run_contagion(paths, model, accounts, seed, fund, steps, ruin_target, spec,
                            oi_share=DEFAULT_OI_SHARE if oi_share is None else oi_share)
    elif oi_share is not None:
        raise ValueError("--oi-share sizes the book that feedback moves; add --feedback")
    else:
        run = run_paths(paths, model, accounts, seed, fund, steps, curve, ruin_target, spec)
    console.print(summary_table(run))
    if run.contagion is not None:
        console.print(contagion_table(run))
        console.print(fund_layout_table(run))
    if out is not None:
        written = write_table(path_table(run), out, "paths")
        console.print(f"per-path results: {', '.join(str(p) for p in written)}")
    return run
