"""Amplification: how far a cascade deepens the exogenous shock, over open interest × leverage.

For each cell of a grid, the scenario runs through the exact engine with feedback
(:mod:`backstop.sim.cascade`). Its **amplification** is the cascade's drawdown (the largest fall
from a running peak of the index the engine received, at every visit of the path) divided by the
exogenous shock's (the same measure on the replayed or modelled path alone, at the same visits).
1 means the forced flow never moved the index by a tick. A cell whose impact reached the rule's
cap (:data:`backstop.sim.feedback.MAX_IMPACT_LOG`, a tenfold move) is a **runaway**: the power
law fitted within 5 % of mid no longer says anything there, and the cap sets the drawdown.

The axes:

- **open-interest share**: the population's open interest as a share of the real market's
  (:data:`backstop.sim.liquidity.REFERENCE_OPEN_INTEREST_BTC`). The book the population meets
  (the maker's ladder and the feedback's depth) is the real one times
  ``population OI / (share × market OI)``, so share 1 means the population is the whole market;
- **leverage scale**: every leverage range of the population's mix times the scale, kept within
  1..100x (the same seeded draws, so a larger scale never lowers an account's leverage).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from backstop.model.events import InsuranceFundChanged
from backstop.numeric import MONEY_SCALE
from backstop.sim.feedback import FeedbackParams
from backstop.sim.population import MAX_LEVERAGE, PopulationSpec
from backstop.sim.scenario import ScenarioSpec
from backstop.sim.stress import run_stress
from backstop.sim.venue_scenario import venue_scenario

DEFAULT_OI_SHARES = (0.003, 0.01, 0.03, 0.1)
DEFAULT_LEVERAGE_SCALES = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Cell:
    """One grid cell's outcome; drawdowns are fractions (0.17 = 17 %), money in USDT."""

    oi_share: float
    leverage_scale: float
    open_interest_usdt: float
    exogenous_drawdown: float
    cascade_drawdown: float
    liquidations: int
    adl_trades: int
    fund_min_usdt: float
    runaway: bool = False

    @property
    def amplification(self) -> float:
        """Cascade drawdown / exogenous drawdown (1 when the path never falls)."""
        return self.cascade_drawdown / self.exogenous_drawdown if self.exogenous_drawdown > 0 else 1.0

    def row(self) -> dict:
        """A flat row for the Parquet table and the report."""
        return {"oi_share": self.oi_share, "leverage_scale": self.leverage_scale,
                "open_interest_usdt": self.open_interest_usdt,
                "exogenous_drawdown": self.exogenous_drawdown, "cascade_drawdown": self.cascade_drawdown,
                "amplification": self.amplification, "runaway": self.runaway,
                "liquidations": self.liquidations, "adl_trades": self.adl_trades,
                "fund_min_usdt": self.fund_min_usdt}


def scaled_leverage(spec: PopulationSpec, scale: float) -> PopulationSpec:
    """``spec`` with every leverage range times ``scale``, clipped to 1..100x."""
    if scale <= 0:
        raise ValueError(f"leverage scale must be > 0, got {scale}")
    mix = tuple((w, min(MAX_LEVERAGE, max(1.0, lo * scale)), min(MAX_LEVERAGE, max(1.0, hi * scale)))
                for w, lo, hi in spec.leverage_mix)
    return replace(spec, leverage_mix=mix)


def with_oi_share(spec: ScenarioSpec, share: float) -> ScenarioSpec:
    """``spec`` whose population stands for ``share`` of the market's open interest."""
    if not 0 < share <= 1:
        raise ValueError(f"open-interest share must be in (0, 1], got {share}")
    return replace(spec, liquidity_multiplier=1.0 / share)


def cell_spec(spec: ScenarioSpec, feedback: FeedbackParams, oi_share: float,
              leverage_scale: float) -> ScenarioSpec:
    """The scenario of one cell: ``spec`` with feedback, the OI share and the leverage scale."""
    population = scaled_leverage(spec.population or PopulationSpec(), leverage_scale)
    return replace(with_oi_share(spec, oi_share), feedback=feedback, population=population)


def run_cell(spec: ScenarioSpec, oi_share: float, leverage_scale: float) -> Cell:
    """Run one cell's scenario (``spec`` already has feedback) and measure it."""
    scenario = venue_scenario(spec)
    result = run_stress(scenario, progress=False, keep_events=False)
    fund_id = scenario.exchange.state.fund_of[scenario.inst.inst_id]
    fund = [e.balance for e in result.events if isinstance(e, InsuranceFundChanged) and e.fund_id == fund_id]
    kinds = [type(e).__name__ for e in result.events]
    return Cell(oi_share, leverage_scale, scenario.gross_notional_usdt, *scenario.drawdowns(),
                kinds.count("LiquidationStarted"), kinds.count("AutoDeleveraged"),
                min(fund, default=0) / MONEY_SCALE, scenario.cascade.hit_cap)


def run_grid(spec: ScenarioSpec, feedback: FeedbackParams, oi_shares: Sequence[float] = DEFAULT_OI_SHARES,
             leverage_scales: Sequence[float] = DEFAULT_LEVERAGE_SCALES,
             on_cell: Callable[[Cell], None] | None = None) -> list[Cell]:
    """Every (OI share, leverage scale) cell, rows in OI order then leverage order."""
    cells = []
    for share in oi_shares:
        for lever in leverage_scales:
            cell = run_cell(cell_spec(spec, feedback, share, lever), share, lever)
            cells.append(cell)
            if on_cell is not None:
                on_cell(cell)
    return cells
