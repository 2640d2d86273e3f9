"""The headline figures of a stress run, from its events alone, and the ``rich`` summary.

Money is exact (int units of 1e-8 USDT) until it is printed; notionals are
``lots × ctVal × lotSz × price`` as exact decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from backstop.engine.queries import conservation_audit
from backstop.model.events import (
    AdlStateChanged,
    AutoDeleveraged,
    InsuranceFundChanged,
    LiquidationSettled,
    LiquidationStarted,
    ProfitHaircut,
)
from backstop.numeric import money_str
from backstop.sim.stress import StressResult


@dataclass(frozen=True)
class Headline:
    """Fund figures in money units; ``*_notional`` in USDT; times in epoch ms."""

    fund_id: str
    fund_start: int
    fund_min: int
    fund_min_ts: int
    fund_end: int
    max_drawdown: int
    max_drawdown_ts: int
    liquidations: int
    liquidation_notional: Decimal
    surplus_deposited: int
    bankruptcy_losses: int
    adl_events: int
    adl_notional: Decimal
    adl_accounts: int
    socialized: int
    conservation_checks: int
    full_checks: int
    violations: int
    conservation_difference: int
    adl_haircut: int = 0
    adl_haircut_accounts: int = 0
    """Profit taken by an ``adl.haircut`` policy (money units) and the winners it touched."""


def fund_series(result: StressResult) -> list[tuple[int, int]]:
    """``(ts, balance)`` of the scenario's fund: the start, then every movement."""
    scenario = result.scenario
    fund_id = scenario.exchange.state.fund_of[scenario.inst.inst_id]
    series = [(scenario.path.times_ms[0] - 60_000, 0)]
    for event in result.events:
        if isinstance(event, InsuranceFundChanged) and event.fund_id == fund_id:
            series.append((max(event.ts, series[0][0]), event.balance))
    return series


def lots_notional(result: StressResult, lots: int, ticks: int) -> Decimal:
    """USDT notional of ``lots`` at ``ticks`` of the scenario's instrument."""
    inst = result.scenario.inst
    return inst.lots_to_sz(lots) * inst.ct_val * inst.ticks_to_px(ticks)


def headline(result: StressResult) -> Headline:
    """The summary's figures."""
    series = fund_series(result)
    t0 = series[0][0]
    start = [b for t, b in series if t <= t0][-1]
    body = [(t, b) for t, b in series if t > t0] or [(t0, start)]
    low_ts, low = min(body, key=lambda tb: (tb[1], tb[0]))
    drawdown, drawdown_ts = _max_drawdown([(t0, start), *body])
    ev = result.events
    started = [e for e in ev if isinstance(e, LiquidationStarted)]
    settled = [e for e in ev if isinstance(e, LiquidationSettled)]
    adl = [e for e in ev if isinstance(e, AutoDeleveraged)]
    haircuts = [e for e in ev if isinstance(e, ProfitHaircut)]
    reports = conservation_audit(result.scenario.exchange.state)
    return Headline(
        fund_id=result.scenario.exchange.state.fund_of[result.scenario.inst.inst_id],
        fund_start=start, fund_min=min(low, start), fund_min_ts=low_ts, fund_end=body[-1][1],
        max_drawdown=drawdown, max_drawdown_ts=drawdown_ts,
        liquidations=len(started),
        liquidation_notional=sum((lots_notional(result, e.lots, e.mark_ticks) for e in started),
                                 Decimal(0)),
        surplus_deposited=sum(e.to_fund for e in settled),
        bankruptcy_losses=sum(e.from_fund for e in settled),
        adl_events=len(adl),
        adl_notional=sum((lots_notional(result, e.lots, e.px_ticks) for e in adl), Decimal(0)),
        adl_accounts=len({e.uid for e in adl}),
        socialized=sum(e.socialized for e in settled),
        conservation_checks=result.checks.conservation, full_checks=result.checks.full,
        violations=len(result.checks.violations),
        conservation_difference=sum(abs(r.difference) for r in reports),
        adl_haircut=sum(e.amount for e in haircuts), adl_haircut_accounts=len({e.uid for e in haircuts}),
    )


TRIGGERS = {
    "bal_adl_start": "the balance trigger: the fund could not cover a bankruptcy deficit",
    "rate_adl_start": ("the decline trigger: the fund fell more than {share:.0%} from its peak "
                       "within {hours:g} h"),
    "pos_adl_start": "the position trigger: the book could not absorb the liquidation volume",
}
"""Why ADL fired, per ``AdlStateChanged.adl_type`` (OKX's names)."""


def verdict(result: StressResult, h: Headline) -> str:
    """One sentence: whether the fund held, and if not, when ADL fired and on which trigger.

    It held when no ADL trade ran and nothing was socialized; it did not hold when it was
    exhausted (its balance reached 0, or the balance trigger fired); otherwise ADL fired while
    the fund still had money (the decline or position trigger), and the sentence says so."""
    low = f"{money_str(h.fund_min)} USDT at {utc(h.fund_min_ts)} UTC"
    if not h.adl_events and not h.adl_haircut and not h.socialized:
        return (f"The fund held: it paid {money_str(h.bankruptcy_losses)} USDT of bankruptcy losses on "
                f"{h.liquidations} liquidations, its lowest balance was {low}, and ADL never fired.")
    adl = result.scenario.config.adl
    starts = [e for e in result.events if isinstance(e, AdlStateChanged) and e.adl_type in TRIGGERS]
    first_trade = next(e for e in result.events if isinstance(e, AutoDeleveraged)) if h.adl_events else None
    if starts:
        hours = adl.decline_window_ms / 3_600_000
        why = TRIGGERS[starts[0].adl_type].format(share=adl.decline_share, hours=hours)
        when = utc(starts[0].ts)
    else:
        why = "the waterfall: the book and the fund could not absorb a liquidation"
        when = utc(first_trade.ts) if first_trade else utc(h.fund_min_ts)
    parts = [f"ADL closed {h.adl_events} trades ({h.adl_notional:,.2f} USDT) against {h.adl_accounts} "
             f"accounts"] if h.adl_events else []
    if h.adl_haircut:
        parts.append(f"ADL took {money_str(h.adl_haircut)} USDT from the profit of "
                     f"{h.adl_haircut_accounts} winners, who kept their positions")
    taken = ", and ".join(parts) or "no ADL trade ran"
    social = f", and {money_str(h.socialized)} USDT was socialized" if h.socialized else ""
    exhausted = h.fund_min <= 0 or (starts and starts[0].adl_type == "bal_adl_start")
    opening = "The fund did not hold:" if exhausted else "The fund was not exhausted, yet"
    return (f"{opening} ADL fired at {when} UTC on {why}; {taken}{social}; the fund's "
            f"lowest balance was {low}.")


def feedback_text(scenario) -> str:
    """How the path reached the engine: open loop, or with the cascade's feedback and its depth."""
    if scenario.cascade is None:
        return "feedback off (open loop: the path as given)"
    exogenous, observed = scenario.drawdowns()
    ratio = f", {observed / exogenous:.2f}×" if exogenous > 0 else ""
    share = 1 / scenario.spec.liquidity_multiplier
    return (f"feedback on: forced flow moved the index, whose fall deepened from {exogenous:.2%} "
            f"(exogenous) to {observed:.2%}{ratio} (population = {share:.1%} "
            f"of the market's open interest, calm 1 % depth for it {scenario.cascade.depth_usd:,.0f} USD, "
            f"sim/feedback.py's fitted parameters)")


def _max_drawdown(series: list[tuple[int, int]]) -> tuple[int, int]:
    """Largest fall from a running peak, and the time of its trough."""
    peak, worst, worst_ts = series[0][1], 0, series[0][0]
    for ts, balance in series:
        peak = max(peak, balance)
        if peak - balance > worst:
            worst, worst_ts = peak - balance, ts
    return worst, worst_ts


def utc(ts_ms: int) -> str:
    import datetime as dt
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_summary(console: Console, result: StressResult, h: Headline) -> None:
    """The terminal summary."""
    s = result.scenario
    source = s.spec.prices or f"model {s.spec.model}"
    console.rule(f"backstop stress — {s.inst.inst_id}, {s.population.size} accounts, seed {s.spec.seed}")
    console.print(f"path: {source}, {result.steps_done}/{s.n_steps} index updates"
                  f"{' (interrupted)' if result.interrupted else ''}, {result.runtime_s:.1f} s; "
                  f"ADL ranking {s.config.adl.ranking}, liquidation {s.config.liquidation.style}; "
                  f"{feedback_text(s)}")
    table = Table(title=f"insurance fund {h.fund_id} (USDT)", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("fund start", money_str(h.fund_start)),
        ("fund minimum", f"{money_str(h.fund_min)}  at {utc(h.fund_min_ts)}"),
        ("fund end", money_str(h.fund_end)),
        ("max drawdown", f"{money_str(h.max_drawdown)}  at {utc(h.max_drawdown_ts)}"),
        ("liquidations", f"{h.liquidations}  ({h.liquidation_notional:,.2f} notional)"),
        ("surplus deposited", money_str(h.surplus_deposited)),
        ("bankruptcy losses paid", money_str(h.bankruptcy_losses)),
        ("ADL events", f"{h.adl_events}  ({h.adl_notional:,.2f} notional, {h.adl_accounts} accounts)"),
        ("socialized loss", money_str(h.socialized)),
        ("conservation", _conservation_text(h)),
    ]
    if h.adl_haircut:  # an adl.haircut policy ran
        rows.insert(-2, ("ADL profit haircut",
                         f"{money_str(h.adl_haircut)}  ({h.adl_haircut_accounts} accounts)"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    console.print(verdict(result, h), highlight=False, soft_wrap=True, markup=False)


def _conservation_text(h: Headline) -> str:
    verdict = "[green]exact[/green]" if not h.violations and not h.conservation_difference \
        else f"[red]{h.violations} violations[/red]"
    return (f"{verdict}: {h.conservation_checks} step audits, {h.full_checks} full invariant checks, "
            f"final difference {money_str(h.conservation_difference)}")
