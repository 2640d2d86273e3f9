"""``backstop stress``: flags → scenario → run → outputs. Raises ``ValueError`` on bad input."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from backstop.engine.config import EngineConfig, load_config
from backstop.sim.scenario import Scenario, ScenarioSpec, find_shared_data, parse_policy
from backstop.sim.stress import run_stress

DEPTH_FILE = "btcusdt-perp-bookdepth-2025-10-10.csv"


def build_spec(prices: Path | None, model: str | None, accounts: int, policy: str | None,
               config: Path | None, seed: int) -> ScenarioSpec:
    """The scenario the flags describe; the 2025-10-10 depth file is used when it is found."""
    base = load_config(config) if config else EngineConfig()
    engine_config = parse_policy(policy, base) if policy else base
    return ScenarioSpec(prices=prices, model=model, n_accounts=accounts, seed=seed,
                        config=engine_config, depth_file=find_shared_data(DEPTH_FILE))


def run_stress_command(console: Console, *, prices: Path | None, model: str | None, accounts: int,
                       policy: str | None, config: Path | None, seed: int, out: Path | None,
                       compare_adl: bool) -> None:
    from backstop.report.adl_compare import compare_adl as run_compare
    from backstop.report.build import default_out_dir, report

    spec = build_spec(prices, model, accounts, policy, config, seed)
    scenario = Scenario(spec)
    out = out or default_out_dir()
    show = console.is_terminal
    result = run_stress(scenario, progress=show)
    rows = None
    if compare_adl and not result.interrupted:
        console.print("ADL comparison: one run per ranking policy, fund forced small")
        rows = run_compare(spec, progress=show)
    report(console, result, out, rows)
    if result.interrupted:
        console.print(f"[yellow]interrupted after {result.steps_done} of {scenario.n_steps} steps;"
                      " the outputs hold what was done[/yellow]")
