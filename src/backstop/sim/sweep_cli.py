"""The ``backstop sweep`` command body: points, a progress bar, the table, the outputs."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from backstop.sim.sweep import (
    METRICS,
    RAY_HINT,
    grid_points,
    local_workers,
    parse_grid,
    random_points,
    run_sweep,
    varied_keys,
    write_report,
    write_results,
)


def sweep_points(grid: list[str], random: int, seed: int) -> list[dict[str, Any]]:
    """Points from ``--grid`` specs, or ``random`` seeded draws (from the grid's values, if
    any: no value given is ignored)."""
    if random < 0:
        raise ValueError(f"--random must be >= 0, got {random}")
    parsed = parse_grid(grid)
    if random:
        return random_points(random, seed, parsed or None)
    if not parsed:
        raise ValueError("give --grid KEY=V1,V2 (repeatable) or --random N")
    return grid_points(parsed)


def results_table(rows: list[dict[str, Any]]) -> Table:
    """The varied keys and the metrics, one row per point."""
    keys = varied_keys(rows) or ["fund"]
    table = Table(title=f"sweep: {len(rows)} points")
    for name in (*keys, *METRICS):
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*(str(row[k]) for k in keys), *(_fmt(row[m]) for m in METRICS))
    return table


def _fmt(value: Any) -> str:
    return f"{value:,.4g}" if isinstance(value, float) else str(value)


def sweep_command(console: Console, grid: list[str], random: int, paths: int, accounts: int, seed: int,
                  model: str, out: Path | None, ray_address: str | None) -> list[dict[str, Any]]:
    """Run the sweep (local processes, or Ray with ``ray_address``) and write ``sweep.csv``,
    ``sweep.parquet`` and ``sweep.html`` into ``out``."""
    points = sweep_points(grid, random, seed)
    out = out or Path("backstop-runs") / f"sweep-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    if ray_address is None:
        console.print(f"{len(points)} points on {local_workers(len(points))} local processes; {RAY_HINT}",
                      markup=False, highlight=False, soft_wrap=True)
    start = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task("sweep", total=len(points))
        rows = run_sweep(points, paths, accounts, seed, model, ray_address=ray_address,
                         on_result=lambda _row: progress.advance(bar))
    if ray_address is not None:
        _shutdown_ray()
    if not rows:
        raise ValueError("no sweep point finished")
    console.print(results_table(rows))
    written = [*write_results(rows, out), write_report(rows, out)]
    console.print(f"{len(rows)}/{len(points)} points in {time.perf_counter() - start:.1f} s; "
                  f"wrote {', '.join(str(p) for p in written)}")
    return rows


def _shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
