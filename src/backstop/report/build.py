"""Everything a ``backstop stress`` run writes: tables, the HTML report, the ADL comparison."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.console import Console
from rich.table import Table

from backstop.report import html, tables
from backstop.report.adl_compare import COMPARE_COLUMNS
from backstop.report.amplification import print_table as print_amplification
from backstop.report.summary import Headline, headline, print_summary
from backstop.sim.amplification import Cell
from backstop.sim.scenario import find_shared_data
from backstop.sim.stress import StressResult

HISTORY_FILE = "btcusd-1d-2011-2025.csv"


def default_out_dir() -> Path:
    """``./backstop-runs/<UTC timestamp>/``."""
    return Path("backstop-runs") / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def write_outputs(result: StressResult, out: Path, adl_rows: list[dict] | None = None,
                  history: Path | None = None, amplification: list[Cell] | None = None) -> Headline:
    """Parquet tables under ``out/events/``, ``out/adl_compare.parquet``,
    ``out/amplification.parquet``, ``out/report.html``."""
    h = headline(result)
    tables.write_event_tables(result.events, result.steps, out / "events")
    if adl_rows:
        tables.write_rows(adl_rows, out / "adl_compare.parquet")
    if amplification:
        tables.write_rows([c.row() for c in amplification], out / "amplification.parquet")
    html.write_report(out / "report.html", result, h, history or find_shared_data(HISTORY_FILE),
                      adl_rows, amplification)
    return h


def print_adl_table(console: Console, rows: list[dict]) -> None:
    table = Table(title="ADL policy comparison (fund forced small; USDT)")
    for c in COMPARE_COLUMNS:
        table.add_column(c.replace("_usdt", ""), justify="right")
    for r in rows:
        table.add_row(*(f"{r[c]:,.2f}" if isinstance(r[c], float) else str(r[c]) for c in COMPARE_COLUMNS))
    console.print(table)


def report(console: Console, result: StressResult, out: Path,
           adl_rows: list[dict] | None = None, amplification: list[Cell] | None = None) -> Headline:
    """Write every output and print the summary."""
    h = write_outputs(result, out, adl_rows, amplification=amplification)
    print_summary(console, result, h)
    if adl_rows:
        print_adl_table(console, adl_rows)
    if amplification:
        print_amplification(console, amplification)
    console.print(f"report: {out / 'report.html'}  tables: {out / 'events'}/")
    return h
