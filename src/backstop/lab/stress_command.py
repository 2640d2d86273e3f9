"""``backstop stress``: flags → scenario → run → outputs. Raises ``ValueError`` on bad input.

Every flag either applies or is refused (:func:`ensure_flags_apply`): the exact engine takes
``--prices`` or ``--model`` (default ``crash``, the built-in 2025-10-10 model), ``--depth``,
``--policy``, ``--config``, ``--venue``, ``--fund``, ``--compare-adl``, ``--compare-venues``,
``--feedback``, ``--oi-share``, ``--calibration`` (with feedback), ``--amplification`` with
``--grid-oi`` and ``--grid-leverage``; the Monte Carlo (``--paths N``)
takes ``--model`` (:data:`backstop.sim.mc_cli.MODELS`), ``--accounts``, ``--fund``, ``--seed``,
``--out``, ``--feedback`` and ``--oi-share`` (with feedback), and refuses the flags that only the
exact engine reads.

Feedback (``--feedback``, :mod:`backstop.sim.cascade`) is **off by default**: the default paths
(the crash model of 2025-10-10, a replayed file) already are a real day's outcome, the market's
own cascade included, so feeding the population's forced flow back on top counts that cascade
twice; a risk team replaying history expects the history. The what-if is one flag away
(``--feedback``, with ``--oi-share`` saying how much of the market the population stands for:
by default :data:`~backstop.sim.mc_cli.DEFAULT_OI_SHARE` under feedback, as for ``--paths``; 1,
the whole market, without), and ``--amplification`` runs it over a grid of open interest ×
leverage.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from rich.console import Console

from backstop.engine.venues import resolve_venue
from backstop.sim.amplification import DEFAULT_LEVERAGE_SCALES, DEFAULT_OI_SHARES, with_oi_share
from backstop.sim.feedback import FeedbackParams
from backstop.sim.mc_cli import DEFAULT_OI_SHARE
from backstop.sim.scenario import (
    DEFAULT_MODEL,
    INST_FAMILY,
    INST_ID,
    Scenario,
    ScenarioSpec,
    find_shared_data,
    parse_policy,
)
from backstop.sim.stress import run_stress
from backstop.sim.venue_scenario import venue_scenario

DEPTH_FILE = "btcusdt-perp-bookdepth-2025-10-10.csv"
PATHS_ONLY_REFUSED = ("prices", "depth", "policy", "config", "compare_adl", "venue", "compare_venues",
                      "amplification", "calibration")
"""Flags of the exact engine that ``--paths`` (the fast path) cannot honour."""
DEFAULT_MC_FUND_USDT = 250_000.0


@dataclass(frozen=True)
class StressFlags:
    """The command line of ``backstop stress``, as given (``None``: not given)."""

    prices: Path | None = None
    model: str | None = None
    depth: Path | None = None
    accounts: int = 1000
    policy: str | None = None
    config: Path | None = None
    seed: int = 0
    out: Path | None = None
    compare_adl: bool = False
    paths: int = 0
    fund: float | None = None
    venue: str | None = None
    compare_venues: bool = False
    feedback: bool | None = None
    calibration: Path | None = None
    oi_share: float | None = None
    amplification: bool = False
    grid_oi: str | None = None
    grid_leverage: str | None = None


def ensure_flags_apply(flags: StressFlags) -> None:
    """Refuse (``ValueError``) a flag the chosen mode would ignore, or a contradiction."""
    if flags.paths < 0:
        raise ValueError(f"--paths must be >= 1, got {flags.paths}")
    if flags.paths:
        given = [f"--{name.replace('_', '-')}" for name in PATHS_ONLY_REFUSED if getattr(flags, name)]
        verb = "applies" if len(given) == 1 else "apply"
        if given:
            raise ValueError(f"{', '.join(given)} {verb} to the exact engine, not to --paths (the fast "
                             "path draws its own paths and models OKX tier-1 isolated margin); drop them "
                             "or drop --paths")
    if flags.prices is not None and flags.model is not None:
        raise ValueError("give --prices FILE or --model NAME, not both")
    if flags.fund is not None and flags.policy and "insurance_fund.initial" in flags.policy:
        raise ValueError("--fund and --policy insurance_fund.initial both set the fund; give one")
    if flags.compare_venues and (flags.policy or flags.config):
        raise ValueError("--compare-venues runs each venue's own policies, so --policy/--config would "
                         "change only the first run; drop them (--fund sets every venue's fund)")
    if flags.calibration is not None and not (flags.feedback or flags.amplification):
        raise ValueError("--calibration sets the feedback rule's parameters; add --feedback or "
                         "--amplification")
    if flags.amplification and flags.feedback is False:
        raise ValueError("--amplification measures the cascade that feedback makes; drop --no-feedback")
    if not flags.amplification and (flags.grid_oi or flags.grid_leverage):
        raise ValueError("--grid-oi and --grid-leverage shape the --amplification grid; add --amplification")
    if flags.amplification and flags.oi_share is not None:
        raise ValueError("--amplification runs its own open-interest shares (--grid-oi); drop --oi-share")
    amplification_grid(flags)


def amplification_grid(flags: StressFlags) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(open-interest shares, leverage scales)`` of ``--amplification``; ``ValueError`` if bad."""
    shares = parse_grid(flags.grid_oi, DEFAULT_OI_SHARES, "--grid-oi")
    if any(s > 1 for s in shares):
        raise ValueError(f"--grid-oi takes open-interest shares in (0, 1], got {flags.grid_oi}")
    return shares, parse_grid(flags.grid_leverage, DEFAULT_LEVERAGE_SCALES, "--grid-leverage")


def build_spec(flags: StressFlags) -> ScenarioSpec:
    """The exact-engine scenario the flags describe; without ``--depth`` the 2025-10-10 depth
    file is used when it is found beside the checkout (else the shipped depth curves)."""
    base = resolve_venue(flags.venue, flags.config)[0]
    engine_config = parse_policy(flags.policy, base) if flags.policy else base
    if flags.fund is not None:
        engine_config = engine_config.with_overrides(
            insurance_fund={"initial": {_family(): _fund_decimal(flags.fund)}})
    model = None if flags.prices else (flags.model or DEFAULT_MODEL)
    oi_share = DEFAULT_OI_SHARE if flags.feedback and flags.oi_share is None else flags.oi_share
    spec = ScenarioSpec(prices=flags.prices, model=model,
                        n_accounts=flags.accounts, seed=flags.seed, config=engine_config,
                        depth_file=flags.depth or find_shared_data(DEPTH_FILE),
                        feedback=feedback_params(flags) if flags.feedback else None)
    return spec if oi_share is None else with_oi_share(spec, oi_share)


def feedback_params(flags: StressFlags) -> FeedbackParams:
    """The feedback rule's parameters: the ``[feedback]`` table of ``--calibration`` (written by
    ``backstop calibrate --depth D --klines K --out FILE``; keys it lacks keep the shipped value),
    else the shipped ones (fitted the same way to 2025-10-10)."""
    if flags.calibration is None:
        return FeedbackParams.shipped(INST_FAMILY)
    try:
        table = tomllib.loads(Path(flags.calibration).read_text()).get("feedback")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"--calibration {flags.calibration}: {exc}") from None
    if not isinstance(table, dict):
        raise ValueError(f"--calibration {flags.calibration} has no [feedback] table: write one with "
                         "`backstop calibrate --depth BOOKDEPTH --klines KLINES --out FILE`")
    return FeedbackParams.from_calibration(table, INST_FAMILY)


def parse_grid(text: str | None, default: tuple[float, ...], flag: str) -> tuple[float, ...]:
    """``--grid-oi``/``--grid-leverage``: comma-separated positive numbers, else ``default``."""
    if text is None:
        return default
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{flag} takes comma-separated numbers, got {text!r}") from None
    if not values or any(not v > 0 for v in values):
        raise ValueError(f"{flag} takes comma-separated numbers > 0, got {text!r}")
    return values


def _family() -> str:
    return INST_ID.rsplit("-", 1)[0]


def _fund_decimal(usdt: float) -> Decimal:
    try:
        value = Decimal(repr(float(usdt)))
    except (InvalidOperation, ValueError):
        raise ValueError(f"--fund must be a USDT amount, got {usdt!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"--fund must be a finite amount >= 0 USDT, got {usdt}")
    return value


def ensure_depth_covers_path(scenario: Scenario, depth: Path) -> None:
    """Refuse a ``--depth`` file whose times the path never reaches: it would be ignored."""
    start, end = scenario.path.times_ms[0], scenario.path.times_ms[-1]
    if not scenario.maker.depth.covers(start, end):
        times = scenario.maker.depth.book.time_ms  # type: ignore[union-attr]
        raise ValueError(f"--depth {depth} covers {_utc(int(times[0]))}..{_utc(int(times[-1]))} UTC but "
                         f"the path runs {_utc(start)}..{_utc(end)}; give the book depth of the path's days")


def _utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")


def run_stress_command(console: Console, flags: StressFlags) -> None:
    """Check the flags, then run the Monte Carlo (``--paths``) or the exact scenario."""
    ensure_flags_apply(flags)
    if flags.paths:
        run_monte_carlo(console, flags)
        return
    run_exact(console, flags)


def run_monte_carlo(console: Console, flags: StressFlags) -> None:
    """``--paths N``: the fast path, its summary, ``paths.csv``/``.parquet`` and ``report.html``
    with the verdict (:mod:`backstop.report.montecarlo`)."""
    from backstop.report.build import default_out_dir
    from backstop.report.montecarlo import write_mc_report
    from backstop.sim.mc_cli import stress_paths_command

    fund = DEFAULT_MC_FUND_USDT if flags.fund is None else flags.fund
    out = flags.out or default_out_dir()
    run = stress_paths_command(flags.paths, flags.model or DEFAULT_MODEL, flags.accounts, flags.seed,
                               out, fund, console=console, feedback=bool(flags.feedback),
                               oi_share=flags.oi_share)
    text = write_mc_report(out / "report.html", run)
    console.print(text, highlight=False, soft_wrap=True)
    console.print(f"report: {out / 'report.html'}", highlight=False, soft_wrap=True)


def run_exact(console: Console, flags: StressFlags) -> None:
    """One scenario through the exact engine, with ``report.html`` and the event tables."""
    from backstop.report.adl_compare import compare_adl as run_compare
    from backstop.report.adl_compare import overshoot_sentence
    from backstop.report.build import default_out_dir, report

    spec = build_spec(flags)
    scenario = venue_scenario(spec)
    if flags.depth is not None:
        ensure_depth_covers_path(scenario, flags.depth)
    out = flags.out or default_out_dir()
    show = console.is_terminal
    if spec.model:
        console.print(f"scenario: --model {spec.model} ({scenario.n_steps} index updates), "
                      f"{spec.n_accounts} accounts, seed {spec.seed}", highlight=False)
    result = run_stress(scenario, progress=show)
    rows = None
    if flags.compare_adl and not result.interrupted:
        console.print("ADL comparison: one run per ADL policy (ranking queues, then profit haircuts), "
                      "fund forced small")
        rows = run_compare(spec, progress=show)
    cells = None
    if flags.amplification and not result.interrupted:
        cells = run_amplification(console, flags, spec)
    report(console, result, out, rows, cells)
    if rows:
        console.print(overshoot_sentence(rows), highlight=False, soft_wrap=True)
    if flags.compare_venues and not result.interrupted:
        run_venue_comparison(console, spec, out, show)
    if result.interrupted:
        console.print(f"[yellow]interrupted after {result.steps_done} of {scenario.n_steps} steps;"
                      " the outputs hold what was done[/yellow]")


def run_amplification(console: Console, flags: StressFlags, spec: ScenarioSpec) -> list:
    """``--amplification``: the scenario with feedback over the open-interest × leverage grid."""
    from backstop.sim.amplification import run_grid

    shares, levers = amplification_grid(flags)
    console.print(f"amplification: {len(shares)} open-interest shares × {len(levers)} leverage scales, "
                  "each a run with feedback", highlight=False)
    return run_grid(spec, feedback_params(flags), shares, levers,
                    on_cell=lambda c: console.print(
                        f"  OI share {c.oi_share:g}, leverage ×{c.leverage_scale:g}: "
                        f"amplification {c.amplification:.2f}", highlight=False))


def run_venue_comparison(console: Console, spec: ScenarioSpec, out: Path, show: bool) -> None:
    """``--compare-venues``: the same crash, population and fund under every venue profile;
    the table in the terminal and in ``report.html``."""
    from backstop.report.venue_compare import compare_venues, print_venue_table, write_venue_outputs

    console.print("venue comparison: one run per venue profile (same path, population and fund)")
    runs = compare_venues(spec, progress=show)
    write_venue_outputs(runs, out)
    print_venue_table(console, runs)
