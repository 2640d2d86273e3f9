"""The Monte Carlo verdict (``backstop stress --paths N``): ``report.html`` a risk manager can act on.

From the per-path results of :func:`backstop.sim.mc_cli.run_paths` (money in USDT, floats: the
fast path is statistical):

- **ruin probability against the initial fund**: a path is ruined by a fund ``F`` when the
  deficit it needs covered (``required_usdt``, the lowest cumulative fund flow) exceeds ``F``;
  ``P(ruin | F)`` is the share of such paths, with a 95 % Wilson score interval;
- **fund needed** for ``P(ruin) ≤ 1 %`` and ``≤ 0.1 %``: the empirical quantile of
  ``required_usdt`` (:func:`backstop.sim.montecarlo.fund_needed`), with a distribution-free 95 %
  upper bound from the binomial law of order statistics; with too few paths for a target the
  report says so instead of giving a number;
- **expected shortfall** of the tail (the mean of the worst ``tail_q`` share of fund minima and
  of shortfalls);
- the fund's path as a **fan chart** (5/25/50/75/95 % quantiles per minute, and the worst path);
- **ADL probability** at the chosen fund (the fund exhausted, or down more than the decline
  share from its peak within the window) and its curve against the initial fund.

A run with feedback (``--feedback``, :func:`backstop.sim.mc_cli.run_contagion`) adds the
contagion section: per instrument the exogenous and the cascade drawdown and their ratio (the
amplification), cross accounts liquidated and their legs closed by another coin's move, and the
shared pool against per-family funds (both with ADL): P(ADL), socialised losses and the fund each
layout needs; then where every parameter came from.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from backstop.sim.mc_cli import LAYOUT_NAMES, ContagionSummary, PathsRun
from backstop.sim.montecarlo import fund_needed, rolling_max

Z95 = 1.959963984540054
"""Two-sided 95 % normal quantile."""
RUIN_TARGETS = (0.01, 0.001)
FAN_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
CURVE_POINTS = 41
MAX_FAN_POINTS = 600


@dataclass(frozen=True)
class FundNeed:
    """The fund for ``P(ruin) ≤ target``: the estimate and its 95 % upper bound (USDT); both
    ``None`` when the run has too few paths to resolve the target."""

    target: float
    estimate: float | None
    upper95: float | None
    paths_needed: int


def wilson_interval(ruined: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """95 % Wilson score interval for proportions ``ruined / n`` (``ruined`` counts)."""
    p = np.asarray(ruined, dtype=np.float64) / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = np.where(p == 0.0, 0.0, np.clip(centre - half, 0.0, 1.0))  # exact ends, no rounding dust
    high = np.where(p == 1.0, 1.0, np.clip(centre + half, 0.0, 1.0))
    return low, high


def ruin_curve(required_usdt: np.ndarray,
               funds_usdt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``P(ruin | F)`` for every ``F`` in ``funds_usdt``, and its 95 % band."""
    ordered = np.sort(required_usdt)
    ruined = ordered.size - np.searchsorted(ordered, funds_usdt, side="right")
    low, high = wilson_interval(ruined, ordered.size)
    return ruined / ordered.size, low, high


def fund_need(required_usdt: np.ndarray, target: float) -> FundNeed:
    """:class:`FundNeed` for ``target``: the order statistic of :func:`fund_needed`, and as the
    upper bound the smallest order statistic ``X_(u)`` with ``P(Binomial(n, 1 - target) < u)
    ≥ 97.5 %`` (so the true quantile lies below it with 97.5 % confidence, one-sided)."""
    n = required_usdt.size
    paths_needed = math.ceil(3.0 / target)  # the rule of three: a few ruined paths to see the tail
    if n < paths_needed:
        return FundNeed(target, None, None, paths_needed)
    ordered = np.sort(required_usdt)
    u = _upper_rank(n, 1.0 - target)
    upper = float(ordered[u - 1]) if u <= n else None
    return FundNeed(target, fund_needed(required_usdt, target), upper, paths_needed)


def _upper_rank(n: int, q: float, confidence: float = 0.975) -> int:
    """Smallest rank ``u`` (1-based) with ``P(Binomial(n, q) <= u - 1) >= confidence``; n + 1 if none."""
    k = np.arange(n + 1, dtype=np.float64)
    log_pmf = (math.lgamma(n + 1) - np.array([math.lgamma(x + 1) + math.lgamma(n - x + 1) for x in k])
               + k * math.log(q) + (n - k) * math.log1p(-q))
    weights = np.exp(log_pmf - log_pmf.max())
    cdf = np.cumsum(weights) / weights.sum()
    hits = np.flatnonzero(cdf >= confidence)
    return int(hits[0]) + 1 if hits.size else n + 1


def adl_curve(run: PathsRun, funds_usdt: np.ndarray) -> np.ndarray:
    """``P(ADL | F)``: the share of paths whose fund, started at ``F``, is exhausted or falls
    more than the decline share below its peak within the window."""
    cumulative = np.cumsum(run.result.flows_usdt, axis=1)
    fund = run.fund
    out = np.empty(funds_usdt.size)
    for i, start in enumerate(funds_usdt):
        balance = start + cumulative
        peak = rolling_max(balance, fund.decline_window_steps)
        declined = ((peak > 0) & (balance < (1.0 - fund.decline_share) * peak)).any(axis=1)
        out[i] = float(((balance.min(axis=1) < 0) | declined).mean())
    return out


def fund_grid(run: PathsRun) -> np.ndarray:
    """Initial funds to draw the curves at: 0 to past the largest requirement and the chosen fund."""
    top = max(float(run.result.required_usdt.max()), run.fund.initial_usdt, 1.0) * 1.1
    return np.linspace(0.0, top, CURVE_POINTS)


def verdict(run: PathsRun, needs: list[FundNeed]) -> str:
    """One paragraph: the ruin probability at the chosen fund and the fund each target needs."""
    r, n, fund = run.result, run.n_paths, run.fund.initial_usdt
    ruined = int((r.required_usdt > fund).sum())
    low, high = wilson_interval(np.array([ruined]), n)
    held = "held on every path" if ruined == 0 else f"ran out on {ruined:,} of {n:,} paths"
    parts = [f"With an initial fund of {fund:,.0f} USDT the fund {held}: P(ruin) = {ruined / n:.2%} "
             f"(95 % CI {low[0]:.2%}–{high[0]:.2%}), P(ADL) = {r.p_adl:.2%}."]
    for need in needs:
        if need.estimate is None:
            parts.append(f"P(ruin) ≤ {need.target:.1%} is not resolved by {n:,} paths "
                         f"(run at least {need.paths_needed:,}).")
        else:
            bound = (f"95 % upper bound {need.upper95:,.0f}" if need.upper95 is not None
                     else "its 95 % upper bound needs more paths")
            parts.append(f"P(ruin) ≤ {need.target:.1%} needs {need.estimate:,.0f} USDT ({bound}).")
    return " ".join(parts)


def ruin_figure(run: PathsRun, funds: np.ndarray) -> go.Figure:
    p, low, high = ruin_curve(run.result.required_usdt, funds)
    fig = go.Figure()
    fig.add_scatter(x=np.r_[funds, funds[::-1]], y=100 * np.r_[high, low[::-1]], fill="toself",
                    line={"width": 0}, fillcolor="rgba(200,30,30,0.18)", name="95 % band",
                    hoverinfo="skip")
    fig.add_scatter(x=funds, y=100 * p, mode="lines", name="P(ruin)", line={"color": "crimson"})
    fig.add_scatter(x=funds, y=100 * adl_curve(run, funds), mode="lines", name="P(ADL)",
                    line={"dash": "dot", "color": "darkorange"})
    fig.add_vline(x=run.fund.initial_usdt, line_dash="dash", annotation_text="chosen fund")
    fig.update_xaxes(title="initial insurance fund (USDT)")
    return _layout(fig, "Ruin and ADL probability against the initial fund", "probability %")


def fan_figure(run: PathsRun) -> go.Figure:
    balance = run.fund.initial_usdt + np.cumsum(run.result.flows_usdt, axis=1)
    step = max(1, balance.shape[1] // MAX_FAN_POINTS)
    minutes = np.arange(0, balance.shape[1], step)
    cut = balance[:, ::step]
    bands = np.quantile(cut, FAN_QUANTILES, axis=0)
    fig = go.Figure()
    for (lo, hi), alpha in (((0, 4), 0.15), ((1, 3), 0.3)):
        fig.add_scatter(x=np.r_[minutes, minutes[::-1]], y=np.r_[bands[hi], bands[lo][::-1]],
                        fill="toself", line={"width": 0}, fillcolor=f"rgba(30,90,200,{alpha})",
                        hoverinfo="skip", name=f"{FAN_QUANTILES[lo]:.0%}–{FAN_QUANTILES[hi]:.0%}")
    fig.add_scatter(x=minutes, y=bands[2], mode="lines", name="median", line={"color": "navy"})
    worst = int(np.argmin(run.result.fund_min_usdt))
    fig.add_scatter(x=minutes, y=cut[worst], mode="lines", name=f"worst path ({worst})",
                    line={"color": "crimson", "width": 1})
    fig.add_hline(y=0.0, line_color="black", line_width=1)
    fig.update_xaxes(title="minutes from the start of the path")
    return _layout(fig, "Insurance fund over time (fan chart over paths)", "USDT")


def tail_figure(run: PathsRun) -> go.Figure:
    fig = go.Figure()
    fig.add_histogram(x=run.result.required_usdt, nbinsx=60, name="fund each path needs")
    fig.add_vline(x=run.fund.initial_usdt, line_dash="dash", annotation_text="chosen fund")
    fig.update_xaxes(title="smallest initial fund that never goes below 0 (USDT)")
    return _layout(fig, "What each path needs", "paths")


def _layout(fig: go.Figure, title: str, y_title: str) -> go.Figure:
    fig.update_layout(title=title, height=400, template="plotly_white",
                      margin={"l": 60, "r": 30, "t": 50, "b": 40}, legend={"orientation": "h", "y": -0.25})
    fig.update_yaxes(title=y_title)
    return fig


def summary_rows(run: PathsRun, needs: list[FundNeed]) -> list[tuple[str, str]]:
    r, f = run.result, run.fund
    rows = [("initial fund", f"{f.initial_usdt:,.0f} USDT"),
            ("paths × minutes × accounts", f"{run.n_paths:,} × {run.n_steps:,} × {run.n_accounts:,}"),
            ("P(ruin) at the chosen fund", f"{r.p_exhausted:.2%}"),
            ("P(ADL) at the chosen fund", f"{r.p_adl:.2%}"),
            (f"expected shortfall ({f.tail_q:.0%} tail): fund minimum", f"{r.es_fund_min_usdt:,.0f} USDT"),
            (f"expected shortfall ({f.tail_q:.0%} tail): shortfall", f"{r.es_shortfall_usdt:,.0f} USDT"),
            ("mean liquidations per path", f"{r.n_liquidations.mean():,.1f}")]
    for need in needs:
        value = "not resolved" if need.estimate is None else (
            f"{need.estimate:,.0f} USDT (≤ {need.upper95:,.0f} at 95 %)" if need.upper95 is not None
            else f"{need.estimate:,.0f} USDT")
        rows.append((f"fund needed for P(ruin) ≤ {need.target:.1%}", value))
    return rows


def contagion_sentence(run: PathsRun) -> str:
    """One paragraph on the cascade and the fund layouts of a feedback run."""
    c = run.contagion
    assert c is not None
    out, amp = c.outcome, c.amplification()
    btc = (f"{c.inst_ids[0]}'s mean drawdown went from {out.exog_drawdown[:, 0].mean():.1%} (exogenous) to "
           f"{out.mark_drawdown[:, 0].mean():.1%} (×{amp[0]:.2f})")
    alts = (f", the altcoins' by ×{amp[1:].min():.2f}–×{amp[1:].max():.2f}" if amp.size > 1 else "")
    shared, family = (next(f for f in c.funds if f.layout is layout) for layout in LAYOUT_NAMES)
    target = run.fund.ruin_target
    need_shared, need_family = (_need_text(f.required_usdt, target) for f in (shared, family))
    return (f"With the population standing for {c.oi_share:.1%} of the market's open interest, forced "
            f"selling deepened the fall: {btc}{alts}. Per path {out.n_cross.mean():,.1f} cross accounts were "
            f"liquidated, closing {out.n_contagion.mean():,.1f} positions in a coin other than the one whose "
            f"move triggered them. With ADL, the shared pool fired ADL on {shared.p_adl:.1%} of paths and "
            f"per-family funds on {family.p_adl:.1%}; P(ruin) ≤ {target:.1%} needs "
            f"{need_shared} pooled against {need_family} split by open interest.")


def _need_text(required_usdt: np.ndarray, target: float) -> str:
    """The fund for ``target`` as text, or why the run cannot resolve it (:func:`fund_need`)."""
    need = fund_need(required_usdt, target)
    if need.estimate is None:
        return f"an amount {required_usdt.size:,} paths cannot resolve (run {need.paths_needed:,})"
    return f"{need.estimate:,.0f} USDT"


def contagion_rows(c: ContagionSummary) -> str:
    """The per-instrument table as HTML rows."""
    out, amp = c.outcome, c.amplification()
    head = ("<tr><th>instrument</th><th>exogenous drawdown</th><th>cascade drawdown</th>"
            "<th>amplification</th><th>liquidations per path</th></tr>")
    return head + "".join(
        f"<tr><th>{html.escape(inst)}</th><td>{out.exog_drawdown[:, i].mean():.1%}</td>"
        f"<td>{out.mark_drawdown[:, i].mean():.1%}</td><td>×{amp[i]:.2f}</td>"
        f"<td>{out.n_liquidations[:, i].mean():,.1f}</td></tr>" for i, inst in enumerate(c.inst_ids))


def layout_rows(run: PathsRun) -> str:
    """The fund-layout comparison as HTML rows."""
    c, f_cfg = run.contagion, run.fund
    assert c is not None
    head = ("<tr><th>layout</th><th>P(ADL)</th><th>P(exhausted)</th><th>mean socialised</th>"
            f"<th>socialised, {f_cfg.tail_q:.0%} tail</th>"
            f"<th>fund for P(ruin) ≤ {f_cfg.ruin_target:.1%}</th></tr>")
    return head + "".join(
        f"<tr><th>{html.escape(LAYOUT_NAMES[f.layout])}</th><td>{f.p_adl:.2%}</td>"
        f"<td>{f.p_exhausted:.2%}</td>"
        f"<td>{f.socialized_usdt.mean():,.0f} USDT</td>"
        f"<td>{f.expected_socialized(f_cfg.tail_q):,.0f} USDT</td>"
        f"<td>{html.escape(_need_text(f.required_usdt, f_cfg.ruin_target))}</td></tr>" for f in c.funds)


def drawdown_figure(c: ContagionSummary) -> go.Figure:
    out = c.outcome
    fig = go.Figure()
    fig.add_bar(x=list(c.inst_ids), y=100 * out.exog_drawdown.mean(axis=0), name="exogenous shock")
    fig.add_bar(x=list(c.inst_ids), y=100 * out.mark_drawdown.mean(axis=0), name="with feedback")
    return _layout(fig, "Mean drawdown per instrument: the shock and the cascade", "drawdown %")


def contagion_section(run: PathsRun) -> tuple[str, list[go.Figure]]:
    """HTML and figures of the contagion section ('' and none without feedback)."""
    c = run.contagion
    if c is None:
        return "", []
    sources = "".join(f"<li><code>{html.escape(k)}</code>: {html.escape(v)}</li>"
                      for k, v in c.sources.items())
    body = (f"<h2>Cascade and contagion</h2><p>{html.escape(contagion_sentence(run))}</p>"
            f"<table>{contagion_rows(c)}</table><h3>Fund layouts (with ADL)</h3>"
            f"<table>{layout_rows(run)}</table>"
            f"<details><summary>Where the parameters come from</summary><ul>{sources}</ul></details>")
    return body, [drawdown_figure(c)]


def model_note(run: PathsRun) -> str:
    """What the fast path modelled (one line under the table)."""
    if run.contagion is None:
        return ("Fast path (floats, OKX tier-1 isolated accounts, first-passage liquidation against the "
                "book-depth curve); the exact engine checks it in backstop.sim.agreement.")
    return (f"Fast path with feedback (floats; {len(run.contagion.inst_ids)} instruments, isolated and cross "
            "accounts; liquidation flow moves the mark through backstop.sim.feedback, walked within each "
            "minute). The single-fund figures above are the shared pool without ADL; the layouts below "
            "apply ADL.")


def write_mc_report(path: Path, run: PathsRun) -> str:
    """Write the self-contained ``report.html`` (plotly.js inlined); returns the verdict."""
    needs = [fund_need(run.result.required_usdt, t) for t in RUIN_TARGETS]
    text = verdict(run, needs)
    section, extra = contagion_section(run)
    figs = [ruin_figure(run, fund_grid(run)), fan_figure(run), tail_figure(run), *extra]
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"mc{i}")
             for i, fig in enumerate(figs)]
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                    for k, v in summary_rows(run, needs))
    title = f"Monte Carlo: {run.n_paths:,} {run.model} paths (seed {run.seed})"
    body = (f"<h1>{html.escape(title)}</h1><p class='verdict'>{html.escape(text)}</p>"
            f"<table>{table}</table>"
            f"<p><small>{html.escape(model_note(run))}</small></p>"
            + "\n".join(parts[:3]) + section + "\n".join(parts[3:]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<!doctype html><html><head><meta charset='utf-8'><title>backstop Monte Carlo</title>"
                    "<style>body{font-family:sans-serif;max-width:1150px;margin:auto}"
                    "td,th{padding:2px 10px;text-align:right}.verdict{font-size:1.15em}</style></head>"
                    f"<body>{body}</body></html>")
    return text
