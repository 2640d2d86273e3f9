"""Venue comparison: one crash, one population, one fund, each venue's rules.

Per venue profile (:mod:`backstop.engine.venues`) the scenario runs again through the exact
engine on that venue's catalogue and policies (:func:`backstop.sim.venue_scenario.venue_scenario`);
the path, the population (seeded), the maker and the initial fund are the same. Columns (USDT,
floats only here, in reporting):

- **opened**: accounts whose position opened (a venue with a lower leverage cap or margin
  table can refuse some of the population);
- **liquidations** and their notional at the mark; **fund** start, minimum and end; the
  **bankruptcy losses** the fund paid;
- **ADL trades** and the **accounts** they touched; ADL **needed**, **taken** and
  **overshoot**, as :mod:`backstop.report.adl_compare` measures them;
- **socialized** loss.

The report gets the table and the funds' paths overlaid in one chart.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace
from pathlib import Path

import plotly.graph_objects as go
from rich.console import Console
from rich.table import Table

from backstop.engine.config import Venue
from backstop.engine.venues import venue_profile
from backstop.model.events import PositionChanged
from backstop.numeric import MONEY_SCALE
from backstop.report import tables
from backstop.report.adl_compare import _Tracker
from backstop.report.summary import Headline, fund_series, headline, utc
from backstop.sim.scenario import MAKER_UID, ScenarioSpec
from backstop.sim.stress import StressResult, run_stress
from backstop.sim.venue_scenario import venue_scenario

VENUE_COLUMNS = ("venue", "opened", "liquidations", "liquidated_notional_usdt", "fund_start_usdt",
                 "fund_min_usdt", "fund_end_usdt", "bankruptcy_losses_usdt", "adl_trades",
                 "adl_needed_usdt", "adl_taken_usdt", "adl_overshoot_usdt", "adl_accounts",
                 "socialized_usdt", "conservation_ok")
"""The comparison's columns, in the order the terminal and the report show them."""
LABELS = {"liquidated_notional_usdt": "liq. notional", "fund_start_usdt": "fund start",
          "fund_min_usdt": "fund min", "fund_end_usdt": "fund end",
          "bankruptcy_losses_usdt": "bankr. losses", "adl_trades": "ADL trades",
          "adl_needed_usdt": "ADL needed", "adl_taken_usdt": "ADL taken",
          "adl_overshoot_usdt": "ADL overshoot", "adl_accounts": "ADL accounts",
          "socialized_usdt": "socialized", "conservation_ok": "conserved"}
"""Short row names for the terminal table."""


@dataclass(frozen=True)
class VenueRun:
    """One venue's row, its fund's path (``(ts ms, balance in money units)``, from the
    initial fund on) and the time of the fund's low (the headline's, epoch ms)."""

    row: dict
    fund_path: list[tuple[int, int]]
    fund_min_ts: int


def compare_venues(spec: ScenarioSpec, venues: tuple[Venue, ...] = tuple(Venue),
                   progress: bool = True) -> list[VenueRun]:
    """One run per venue. The spec's own fund setting (``insurance_fund.initial``, e.g. from
    ``--fund``) carries over to every venue; the spec's other policies are the venue's."""
    fund = dict(spec.config.insurance_fund.initial)
    runs = []
    for venue in venues:
        config = venue_profile(venue).config
        if fund:
            config = config.with_overrides(insurance_fund={"initial": fund})
        scenario = venue_scenario(replace(spec, config=config))
        tracker = _Tracker(scenario)
        result = run_stress(scenario, progress=progress, keep_events=False, on_step=tracker.on_step,
                            full_check_every=10**9)
        h = headline(result)
        runs.append(VenueRun(_row(venue, result, h, tracker), _from_start(fund_series(result)),
                             h.fund_min_ts))
        if result.interrupted:
            break
    return runs


def _from_start(series: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The fund's path from its initial balance: ``fund_series`` opens with the empty fund just
    before the path, then the initial deposit; keep the last point at that first time."""
    t0 = series[0][0]
    first = max(i for i, (t, _) in enumerate(series) if t <= t0)
    return series[first:]


def _row(venue: Venue, result: StressResult, h: Headline, tracker: _Tracker) -> dict:
    adl = tracker.row(venue.value)
    opened = {e.uid for e, step in zip(result.events, result.steps, strict=True)
              if step == 0 and isinstance(e, PositionChanged) and e.uid != MAKER_UID}
    usdt = float(MONEY_SCALE)
    return {"venue": venue.value, "opened": len(opened), "liquidations": h.liquidations,
            "liquidated_notional_usdt": float(h.liquidation_notional),
            "fund_start_usdt": h.fund_start / usdt, "fund_min_usdt": h.fund_min / usdt,
            "fund_end_usdt": h.fund_end / usdt, "bankruptcy_losses_usdt": h.bankruptcy_losses / usdt,
            "adl_trades": h.adl_events, "adl_needed_usdt": adl["needed_usdt"],
            "adl_taken_usdt": adl["taken_usdt"], "adl_overshoot_usdt": adl["overshoot_usdt"],
            "adl_accounts": h.adl_accounts, "socialized_usdt": h.socialized / usdt,
            "conservation_ok": result.checks.ok}


def print_venue_table(console: Console, runs: list[VenueRun]) -> None:
    """One column per venue, one row per figure (five venues fit a terminal's width)."""
    table = Table(title="Venue comparison: one crash, one population, one fund (USDT)")
    table.add_column("")
    for run in runs:
        table.add_column(run.row["venue"], justify="right")
    for c in VENUE_COLUMNS[1:]:
        table.add_row(LABELS.get(c, c), *(_cell(run.row[c]) for run in runs))
    console.print(table)


def _cell(value: object) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def fund_figure(runs: list[VenueRun]) -> go.Figure:
    """The funds' balances over the path, one line per venue."""
    import datetime as dt

    fig = go.Figure()
    for run in runs:
        times = [dt.datetime.fromtimestamp(t / 1000, dt.UTC) for t, _ in run.fund_path]
        fig.add_scatter(x=times, y=[b / MONEY_SCALE for _, b in run.fund_path], name=run.row["venue"],
                        mode="lines", line={"shape": "hv"})
    fig.update_layout(title="Insurance fund under each venue's rules", height=380,
                      template="plotly_white", margin={"l": 60, "r": 30, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.2}, yaxis_title="USDT")
    return fig


def venue_section(runs: list[VenueRun], include_plotlyjs: bool) -> str:
    """The report's HTML section: the table, each venue's fund low, the overlaid fund chart
    (``include_plotlyjs``: inline plotly.js, for a page that has none yet)."""
    head = "".join(f"<th>{html.escape(LABELS.get(c, c))}</th>" for c in VENUE_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r.row[c]))}</td>" for c in VENUE_COLUMNS)
                   + "</tr>" for r in runs)
    lows = "; ".join(f"{r.row['venue']}: low {r.row['fund_min_usdt']:,.2f} at {utc(r.fund_min_ts)} UTC"
                     for r in runs)
    chart = fund_figure(runs).to_html(full_html=False, include_plotlyjs=include_plotlyjs,
                                      div_id="venue_funds")
    sources = "; ".join(f"{v.value}: {', '.join(venue_profile(v).sources)}"
                        for v in (Venue(r.row["venue"]) for r in runs))
    return (f"<h2>Venue comparison</h2><table><tr>{head}</tr>{body}</table><p>{html.escape(lows)}</p>"
            f"{chart}<p><small>{html.escape(sources)}</small></p>")


def write_venue_outputs(runs: list[VenueRun], out: Path) -> None:
    """``out/venue_compare.parquet`` and the section inside ``out/report.html`` (appended to the
    page the stress report wrote, or a page of its own when there is none)."""
    tables.write_rows([r.row for r in runs], out / "venue_compare.parquet")
    page = out / "report.html"
    if page.is_file():
        text = page.read_text()
        page.write_text(text.replace("</body></html>", venue_section(runs, False) + "</body></html>", 1))
    else:
        out.mkdir(parents=True, exist_ok=True)
        page.write_text(f"<!doctype html><html><head><meta charset='utf-8'></head><body>"
                        f"{venue_section(runs, True)}</body></html>")
