"""The amplification grid (:mod:`backstop.sim.amplification`) as a heat-map, an HTML table and a
terminal table; it only formats what the runs measured."""

from __future__ import annotations

import html

import plotly.graph_objects as go
from rich import box
from rich.console import Console
from rich.table import Table

from backstop.sim.amplification import Cell

EXPLAIN = ("Amplification = the cascade's drawdown (the index the engine received, exogenous × "
           "impact of the forced flow) / the exogenous shock's drawdown, on the same path. "
           "Open-interest share: the population's share of the market's open interest (the book "
           "it meets scales with it). A runaway (marked !) is a cascade whose impact reached the rule's "
           "cap, a tenfold move: the power law is fitted within 5 % of mid and says nothing there.")


def _axes(cells: list[Cell]) -> tuple[list[float], list[float]]:
    shares = sorted({c.oi_share for c in cells})
    levers = sorted({c.leverage_scale for c in cells})
    return shares, levers


def _label(cell: Cell) -> str:
    return f"{cell.amplification:.2f}×" + ("!" if cell.runaway else "")


def heatmap_figure(cells: list[Cell]) -> go.Figure:
    """Amplification over open-interest share (x) × leverage scale (y), each cell labelled."""
    shares, levers = _axes(cells)
    at = {(c.oi_share, c.leverage_scale): c for c in cells}
    z = [[at[(s, lev)].amplification if (s, lev) in at else None for s in shares] for lev in levers]
    text = [[_label(at[(s, lev)]) if (s, lev) in at else "" for s in shares] for lev in levers]
    fig = go.Figure(go.Heatmap(x=[f"{s:.2%}" for s in shares], y=[f"×{lev:g}" for lev in levers], z=z,
                               text=text, texttemplate="%{text}", colorscale="Reds", zmin=1,
                               colorbar={"title": "amplification"}))
    fig.update_layout(title="Cascade amplification of the drawdown", height=380, template="plotly_white",
                      margin={"l": 60, "r": 30, "t": 50, "b": 40})
    fig.update_xaxes(title="open-interest share of the market", type="category")
    fig.update_yaxes(title="leverage scale", type="category")
    return fig


COLUMNS = (("OI\nshare", lambda c: f"{c.oi_share:.2%}"), ("lever", lambda c: f"×{c.leverage_scale:g}"),
           ("OI\nUSDT", lambda c: f"{c.open_interest_usdt:,.0f}"),
           ("exo.\nfall", lambda c: f"{c.exogenous_drawdown:.2%}"),
           ("cascade\nfall", lambda c: f"{c.cascade_drawdown:.2%}"),
           ("ampl.", _label), ("liq.", lambda c: str(c.liquidations)),
           ("ADL", lambda c: str(c.adl_trades)),
           ("fund\nlow USDT", lambda c: f"{c.fund_min_usdt:,.0f}"))
"""Column title and format; the terminal table and the report's table show the same."""


def html_section(cells: list[Cell]) -> str:
    """The report's amplification table and explanation (the heat-map is a figure of its own)."""
    head = "".join(f"<th>{name.replace(chr(10), ' ')}</th>" for name, _ in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(c))}</td>" for _, fmt in COLUMNS) + "</tr>"
                   for c in cells)
    return f"<h2>Cascade amplification</h2><p>{html.escape(EXPLAIN)}</p><table><tr>{head}</tr>{body}</table>"


def print_table(console: Console, cells: list[Cell]) -> None:
    """The terminal table."""
    table = Table(title="cascade amplification = fall with feedback / exogenous fall (! runaway)",
                  box=box.SIMPLE_HEAD, padding=(0, 1))
    for name, _ in COLUMNS:
        table.add_column(name, justify="right", no_wrap=True, min_width=max(map(len, name.split("\n"))))
    for c in cells:
        table.add_row(*(fmt(c) for _, fmt in COLUMNS))
    console.print(table)
