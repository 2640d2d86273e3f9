"""``report.html``: plotly figures of a stress run, plotly.js embedded (works offline).

The report opens with the verdict (:func:`backstop.report.summary.verdict`): one sentence on
whether the fund held and, if not, why ADL fired. Plots: one timeline on a shared time axis
(price and mark; insurance fund balance; liquidation notional per minute; ADL events), the
margin-ratio distribution snapshots, the volatility cone (the calibration history when it is
found, else the shipped cone of :mod:`backstop.sim.calibrate`) with the scenario's own
realized volatility marked, the ADL policy comparison and the cascade amplification heat-map when
they ran. With feedback the price panel shows the exogenous path and the index after impact.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import defaultdict
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from backstop.model.events import AutoDeleveraged, LiquidationStarted, MarkPriceUpdated
from backstop.numeric import MONEY_SCALE
from backstop.report.adl_compare import COMPARE_COLUMNS
from backstop.report.amplification import heatmap_figure
from backstop.report.amplification import html_section as amplification_section
from backstop.report.summary import Headline, feedback_text, fund_series, lots_notional, utc, verdict
from backstop.sim import calibrate
from backstop.sim.amplification import Cell
from backstop.sim.feedback import PARAMETERS, FeedbackParams
from backstop.sim.stress import StressResult

MINUTES_PER_YEAR = 365.0 * 24.0 * 60.0
CITATIONS = (
    "Context, not our results: Chitra, “Autodeleveraging: Impossibilities and Optimization” "
    "(arXiv 2512.01112) shows no ADL policy is solvent, revenue-preserving and fair at once, "
    "that pro-rata is the unique fair rule under its axioms, and that queue rules concentrate "
    "losses. On Hyperliquid's ADL waves of 2025-10-10 the budget actually needed was about "
    "$15.1M while the queue removed about $60.1M from winners (an overshoot of about $45M); "
    "wealth pro-rata would have removed $15.1M and contract pro-rata $12.1M "
    "(pluriholonomic/autodeleveraging-analysis, MIT)."
)


def _times(ts_ms: list[int]) -> list[dt.datetime]:
    return [dt.datetime.fromtimestamp(t / 1000, dt.UTC) for t in ts_ms]


def price_figure(result: StressResult) -> go.Figure:
    """The path's index, the engine's mark and, with feedback, the index after the cascade's impact."""
    path = result.scenario.path
    inst = result.scenario.inst
    marks = [e for e in result.events if isinstance(e, MarkPriceUpdated) and e.inst_id == inst.inst_id]
    fig = go.Figure()
    cascade = result.scenario.cascade is not None
    fig.add_scatter(x=_times(path.times_ms), y=[float(p) for p in path.prices], mode="lines",
                    name="exogenous index (path)" if cascade else "index (path)")
    if cascade:
        observed = result.scenario.observed_ticks
        fig.add_scatter(x=_times(path.times_ms[:len(observed)]),
                        y=[float(inst.ticks_to_px(t)) for t in observed],
                        name="index with the cascade's impact", mode="lines")
    fig.add_scatter(x=_times([e.ts for e in marks]), y=[float(inst.ticks_to_px(e.mark_ticks)) for e in marks],
                    name="mark (engine)", mode="lines+markers", marker={"size": 3})
    return _layout(fig, "Index and mark price", "USDT")


def fund_figure(result: StressResult) -> go.Figure:
    series = fund_series(result)
    t0 = series[0][0]
    start = [b for t, b in series if t <= t0][-1]
    series = [(t0, start), *[(t, b) for t, b in series if t > t0]]
    series.append((max(result.scenario.path.times_ms[-1], series[-1][0]), series[-1][1]))
    fig = go.Figure()
    fig.add_scatter(x=_times([t for t, _ in series]), y=[b / MONEY_SCALE for _, b in series],
                    mode="lines", line_shape="hv", name="fund balance")
    return _layout(fig, "Insurance fund balance", "USDT")


def liquidation_figure(result: StressResult) -> go.Figure:
    per_minute: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for e in result.events:
        if isinstance(e, LiquidationStarted):
            per_minute[e.route][e.ts // 60_000 * 60_000] += float(lots_notional(result, e.lots, e.mark_ticks))
    fig = go.Figure()
    for route, minutes in sorted(per_minute.items()):
        keys = sorted(minutes)
        fig.add_bar(x=_times(keys), y=[minutes[k] for k in keys], name=f"route: {route}")
    fig.update_layout(barmode="stack")
    return _layout(fig, "Liquidation notional per minute", "USDT")


def adl_figure(result: StressResult) -> go.Figure:
    adl = [e for e in result.events if isinstance(e, AutoDeleveraged)]
    fig = go.Figure()
    fig.add_scatter(x=_times([e.ts for e in adl]), y=[float(lots_notional(result, e.lots, e.px_ticks))
                                                    for e in adl],
                    mode="markers", name="ADL trade notional",
                    text=[f"uid {e.uid} ← {e.liquidated_uid}, upl taken {e.upl_taken / MONEY_SCALE:.2f}"
                          for e in adl])
    return _layout(fig, f"ADL events ({len(adl)})", "USDT notional")


TIMELINE = (("Index and mark price", "USDT", price_figure),
            ("Insurance fund balance", "USDT", fund_figure),
            ("Liquidation notional per minute", "USDT", liquidation_figure),
            ("ADL events", "USDT notional", adl_figure))


def timeline_figure(result: StressResult) -> go.Figure:
    """The four time series stacked on one shared time axis (zooming one zooms all)."""
    fig = make_subplots(rows=len(TIMELINE), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[title for title, _, _ in TIMELINE])
    for row, (_, y_title, build) in enumerate(TIMELINE, 1):
        for trace in build(result).data:
            fig.add_trace(trace, row=row, col=1)
        fig.update_yaxes(title_text=y_title, row=row, col=1)
    fig.update_layout(height=260 * len(TIMELINE), barmode="stack", template="plotly_white",
                      margin={"l": 70, "r": 30, "t": 40, "b": 40}, legend={"orientation": "h", "y": -0.05},
                      title="Timeline (UTC, one shared time axis)")
    return fig


def margin_ratio_figure(result: StressResult) -> go.Figure:
    fig = go.Figure()
    for label, ratios in result.snapshots.items():
        if ratios.size:
            fig.add_histogram(x=np.log10(np.clip(ratios, 1e-3, None)), name=label, opacity=0.55,
                              nbinsx=60)
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="log10 margin ratio (equity / (MM + fee)); ≤ 0 is liquidatable")
    return _layout(fig, "Margin-ratio distribution snapshots", "accounts")


def realized_vol(result: StressResult) -> tuple[float, float]:
    """The scenario's annualized realized volatility and its length in days."""
    closes = result.scenario.path.bar_close
    returns = np.diff(np.log(closes))
    minutes = closes.size * result.scenario.path.bar_minutes
    vol = float(np.std(returns, ddof=1) * np.sqrt(MINUTES_PER_YEAR / result.scenario.path.bar_minutes))
    return vol, minutes / 1440.0


def cone_figure(result: StressResult, history: Path | None) -> go.Figure:
    """The cone of ``history`` (daily closes) when given, else the shipped cone."""
    fig = go.Figure()
    vol, days = realized_vol(result)
    if history is not None:
        cone = calibrate.volatility_cone(calibrate.log_returns(calibrate.load_daily_closes(history)))
        title = f"Volatility cone, BTC daily 2020–2025 ({history.name})"
    else:
        cone = calibrate.SHIPPED_CONE
        title = f"Volatility cone, BTC daily 2020–2025 (shipped, {calibrate.SHIPPED_CONE_SOURCE})"
    windows = sorted(cone)
    for i, pct in enumerate(calibrate.CONE_PERCENTILES):
        fig.add_scatter(x=windows, y=[100 * cone[w][i] for w in windows], mode="lines+markers",
                        name=f"p{pct}")
    fig.add_scatter(x=[max(days, 0.1)], y=[100 * vol], mode="markers+text", name="this scenario",
                    marker={"size": 14, "symbol": "star", "color": "crimson"},
                    text=[f"scenario {100 * vol:.0f}% ({days:.2f} d)"], textposition="top right")
    fig.update_xaxes(type="log", title="window (days)")
    return _layout(fig, title, "annualized realized volatility %")


def adl_compare_figure(rows: list[dict]) -> go.Figure:
    policies = [r["policy"] for r in rows]
    fig = go.Figure()
    for key, name in (("needed_usdt", "needed"), ("taken_usdt", "taken"),
                      ("profit_closed_usdt", "winners' profit closed")):
        fig.add_bar(x=policies, y=[r[key] for r in rows], name=name)
    fig.add_scatter(x=policies, y=[r["gini"] for r in rows], name="Gini of haircuts", yaxis="y2",
                    mode="lines+markers")
    fig.update_layout(barmode="group", yaxis2={"overlaying": "y", "side": "right", "range": [0, 1],
                                               "title": "Gini"})
    return _layout(fig, "ADL policy comparison (fund forced small)", "USDT")


def _layout(fig: go.Figure, title: str, y_title: str) -> go.Figure:
    fig.update_layout(title=title, height=380, margin={"l": 60, "r": 30, "t": 50, "b": 40},
                      template="plotly_white", legend={"orientation": "h", "y": -0.2})
    fig.update_yaxes(title=y_title, selector={"anchor": "x"})
    return fig


def figures(result: StressResult, history: Path | None, adl_rows: list[dict] | None,
            amplification: list[Cell] | None = None) -> list[go.Figure]:
    out = [timeline_figure(result), margin_ratio_figure(result), cone_figure(result, history)]
    if adl_rows:
        out.append(adl_compare_figure(adl_rows))
    if amplification:
        out.append(heatmap_figure(amplification))
    return out


def write_report(path: Path, result: StressResult, h: Headline, history: Path | None = None,
                 adl_rows: list[dict] | None = None, amplification: list[Cell] | None = None) -> Path:
    """Write the self-contained HTML report; returns its path."""
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"fig{i}")
             for i, fig in enumerate(figures(result, history, adl_rows, amplification))]
    body = (_header(result, h) + (_adl_table(adl_rows) if adl_rows else "")
            + (amplification_section(amplification) if amplification else "") + "\n".join(parts))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>backstop stress</title>"
                    f"<style>body{{font-family:sans-serif;max-width:1150px;margin:auto}}"
                    f"td,th{{padding:2px 10px;text-align:right}}.verdict{{font-size:1.15em}}</style>"
                    f"</head><body>{body}</body></html>")
    return path


def _header(result: StressResult, h: Headline) -> str:
    s = result.scenario
    source = html.escape(str(s.spec.prices or f"model {s.spec.model}"))
    rows = [("fund start / min / end (USDT)",
             " / ".join(f"{x / MONEY_SCALE:,.2f}" for x in (h.fund_start, h.fund_min, h.fund_end))),
            ("max drawdown", f"{h.max_drawdown / MONEY_SCALE:,.2f} at {utc(h.max_drawdown_ts)} UTC"),
            ("liquidations", f"{h.liquidations} ({h.liquidation_notional:,.2f} USDT)"),
            ("surplus deposited / bankruptcy losses",
             f"{h.surplus_deposited / MONEY_SCALE:,.2f} / {h.bankruptcy_losses / MONEY_SCALE:,.2f}"),
            ("ADL", f"{h.adl_events} trades, {h.adl_notional:,.2f} USDT, {h.adl_accounts} accounts"),
            ("socialized loss", f"{h.socialized / MONEY_SCALE:,.2f}"),
            ("conservation", f"{h.conservation_checks} step audits, {h.violations} violations")]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (f"<h1>backstop stress report</h1><p>{source}; {s.population.size} accounts; seed {s.spec.seed};"
            f" ADL {s.config.adl.ranking}; {result.steps_done} index updates;"
            f" {html.escape(feedback_text(s))}</p>"
            f"<p class='verdict'>{html.escape(verdict(result, h))}</p><table>{table}</table>"
            + (_feedback_table(s.spec.feedback) if s.spec.feedback is not None else ""))


def _feedback_table(params: FeedbackParams) -> str:
    """The feedback rule's parameters, each with its source (``backstop calibrate`` fits them)."""
    body = "".join(f"<tr><th>{name}</th><td>{getattr(params, name):,.6g}</td>"
                   f"<td style='text-align:left'>{html.escape(params.sources.get(name, ''))}</td></tr>"
                   for name in PARAMETERS)
    return (f"<h2>Feedback parameters ({html.escape(params.inst_id)})</h2>"
            f"<table><tr><th>parameter</th><th>value</th><th>source</th></tr>{body}</table>")


def _adl_table(rows: list[dict]) -> str:
    head = "".join(f"<th>{c}</th>" for c in COMPARE_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r[c])}</td>" for c in COMPARE_COLUMNS) + "</tr>"
                   for r in rows)
    return (f"<h2>ADL policy comparison</h2><table><tr>{head}</tr>{body}</table>"
            f"<p><small>{html.escape(CITATIONS)}</small></p>")


def _fmt(value: object) -> str:
    return f"{value:,.4g}" if isinstance(value, float) else html.escape(str(value))
