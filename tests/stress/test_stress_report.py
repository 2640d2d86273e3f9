"""The report renders with data in every plot; Parquet tables round-trip."""

from __future__ import annotations

import json
import re

import pytest
from rich.console import Console

from backstop.model.events import AdlStateChanged, AutoDeleveraged, LiquidationSettled
from backstop.report.adl_compare import COMPARE_COLUMNS
from backstop.report.build import report
from backstop.report.html import cone_figure, timeline_figure
from backstop.report.summary import headline, verdict
from backstop.report.tables import read_table
from backstop.sim.scenario import Scenario, ScenarioSpec
from backstop.sim.stress import run_stress


@pytest.fixture(scope="module")
def run(tmp_path_factory, crash_files):
    out = tmp_path_factory.mktemp("stress")
    klines, depth, _ = crash_files
    spec = ScenarioSpec(prices=klines, n_accounts=120, seed=5, depth_file=depth)
    result = run_stress(Scenario(spec), progress=False)
    rows = [{"policy": "okx", "needed_usdt": 1.0, "taken_usdt": 1.5, "overshoot_usdt": 0.5,
             "profit_closed_usdt": 2.0, "removed_over_needed": 1.5, "max_haircut_pct": 3.0,
             "accounts_touched": 2, "gini": 0.4, "fund_revenue_usdt": -4.0, "exchange_revenue_usdt": 5.0}]
    assert set(rows[0]) == set(COMPARE_COLUMNS)  # the report shows every column the comparison makes
    console = Console(record=True, width=120)
    headline = report(console, result, out, rows)
    return result, out, headline, console.export_text()


def plotly_figures(html: str) -> dict[str, list[dict]]:
    """div id → traces, parsed from the ``Plotly.newPlot("id", [traces], ...)`` calls."""
    decoder = json.JSONDecoder()
    out = {}
    for match in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', html):
        traces, _ = decoder.raw_decode(html, match.end())
        out[match.group(1)] = traces
    return out


def _points(trace: dict) -> int:
    values = trace.get("x", trace.get("y", []))
    if isinstance(values, dict):  # plotly may pack arrays as {"dtype", "bdata"}
        return 1 if values.get("bdata") else 0
    return len(values)


def test_report_plots_hold_data(run):
    _, out, _, _ = run
    html = (out / "report.html").read_text()
    assert "plotly.js" in html.lower() or "Plotly" in html  # embedded, no CDN needed
    assert re.search(r"<script[^>]+src=\"https?://", html) is None
    figures = plotly_figures(html)
    assert len(figures) == 4  # timeline (price, fund, liquidations, ADL), margin ratios, cone, ADL compare
    for div, traces in figures.items():
        assert traces, f"{div} has no traces"
        assert all(_points(t) > 0 for t in traces), f"{div} has an empty trace"
    assert "2512.01112" in html


def test_summary_lists_headline_figures(run):
    result, _, headline, text = run
    for label in ("fund start", "fund minimum", "max drawdown", "liquidations", "ADL events",
                  "socialized loss", "conservation"):
        assert label in text
    assert headline.violations == 0 and headline.conservation_difference == 0
    assert headline.liquidations == sum(type(e).__name__ == "LiquidationStarted" for e in result.events)


@pytest.mark.parametrize("kind", [AutoDeleveraged, LiquidationSettled])
def test_parquet_tables_round_trip(run, kind):
    result, out, _, _ = run
    table = read_table(out / "events" / f"{kind.__name__}.parquet")
    events = [e for e in result.events if isinstance(e, kind)]
    assert events, f"the run produced no {kind.__name__}"
    rebuilt = [kind(**{name: table[name][i] for name in kind._fields}) for i in range(len(events))]
    assert rebuilt == events


def test_timeline_charts_share_one_time_axis(run):
    result, _, _, _ = run
    fig = timeline_figure(result)
    axes = [name for name in fig.layout if name.startswith("xaxis")]
    assert len(axes) == 4
    matches = {name: fig.layout[name].matches for name in axes}
    free = [name for name, target in matches.items() if target is None]
    assert len(free) == 1  # every other axis follows the bottom one: zooming one zooms all
    assert {target for target in matches.values() if target} == {free[0].replace("axis", "")}
    assert {trace.xaxis for trace in fig.data} == {"x", "x2", "x3", "x4"}


def test_verdict_names_the_adl_trigger(run):
    result, out, h, text = run
    sentence = verdict(result, h)
    first = next(e for e in result.events if isinstance(e, AdlStateChanged) and e.adl_type != "adl_end")
    exhausted = h.fund_min <= 0 or first.adl_type == "bal_adl_start"
    opening = "The fund did not hold:" if exhausted else "The fund was not exhausted, yet"
    assert sentence.startswith(f"{opening} ADL fired at ")
    trigger = {"bal_adl_start": "balance trigger", "rate_adl_start": "decline trigger",
               "pos_adl_start": "position trigger"}[first.adl_type]
    assert trigger in sentence and f"{h.adl_accounts} accounts" in sentence
    assert sentence in (out / "report.html").read_text().replace("&#x27;", "'")
    assert sentence.split(";")[0] in " ".join(text.split())


def test_verdict_when_the_fund_holds():
    spec = ScenarioSpec(model="gbm", n_accounts=30, steps=60, seed=1)
    result = run_stress(Scenario(spec), progress=False)
    sentence = verdict(result, headline(result))
    assert sentence.startswith("The fund held:") and "ADL never fired" in sentence


def test_cone_without_history_uses_the_shipped_cone(run):
    result, _, _, _ = run
    fig = cone_figure(result, None)
    assert "shipped" in fig.layout.title.text
    assert len(fig.data) == 6 and all(len(trace.x) for trace in fig.data)
