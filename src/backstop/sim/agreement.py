"""The exact engine against the vectorised fast path on the same scenario and path.

:func:`check_agreement` builds the scenario of :mod:`backstop.sim.exact_scenario`, runs it
through the engine and the fast path, and :func:`compare` reports the liquidation count, the
per-account step agreement, and total bankruptcy loss and surplus on both sides. The tolerance
(:data:`MONEY_RTOL`, see its comment) covers the discrete ladder against a continuous curve:
the engine fills at the VWAP of discrete levels (at most one level's spacing worse than the
curve's marginal price, usually better), and several liquidations at one update share the
ladder, whereas the fast path gives each order a fresh curve at its marginal (worst) price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backstop.sim.exact_scenario import EngineLiquidations, build_scenario, engine_liquidations, run_engine
from backstop.sim.impact import DepthCurve
from backstop.sim.montecarlo import NEVER, PathLiquidations, liquidate_path
from backstop.sim.paths import Ohlc

# Tolerance on total bankruptcy loss and total surplus: 2 % of the larger side plus 2 USDT
# per liquidation. The money gap comes from (1) the discrete ladder against the continuous
# curve (VWAP of levels vs marginal price, at most one level's spacing), (2) liquidations at
# one index update sharing the ladder, (3) the liquidation price rounded to the tick
# (< 0.1 USDT/BTC) and fees/margins rounded up to 1e-8 USDT.
MONEY_RTOL = 0.02
MONEY_ATOL_PER_LIQ_USDT = 2.0
# Liquidation steps: the engine checks exact integers, the fast path floats; an account whose
# liquidation price equals a bar's extreme to within a tick may differ by one step.
STEP_MISMATCH_SHARE = 0.02


@dataclass(frozen=True)
class Agreement:
    """Engine against fast path on one path; money in USDT."""

    n_accounts: int
    n_liq_engine: int
    n_liq_fast: int
    step_mismatches: int
    loss_engine_usdt: float
    loss_fast_usdt: float
    surplus_engine_usdt: float
    surplus_fast_usdt: float
    max_fill_gap_bp: float

    def money_tolerance_usdt(self, engine: float, fast: float) -> float:
        """The allowed gap: :data:`MONEY_RTOL` of the larger plus an allowance per liquidation."""
        return MONEY_RTOL * max(abs(engine), abs(fast)) + MONEY_ATOL_PER_LIQ_USDT * self.n_liq_engine

    @property
    def within_tolerance(self) -> bool:
        loss_ok = abs(self.loss_engine_usdt - self.loss_fast_usdt) <= self.money_tolerance_usdt(
            self.loss_engine_usdt, self.loss_fast_usdt)
        surplus_ok = abs(self.surplus_engine_usdt - self.surplus_fast_usdt) <= self.money_tolerance_usdt(
            self.surplus_engine_usdt, self.surplus_fast_usdt)
        steps_ok = self.step_mismatches <= max(1, STEP_MISMATCH_SHARE * self.n_liq_engine)
        return loss_ok and surplus_ok and steps_ok and self.n_liq_engine == self.n_liq_fast


def compare(engine: EngineLiquidations, fast: PathLiquidations) -> Agreement:
    """Liquidation counts, steps, bankruptcy loss, surplus and the largest fill gap (bp)."""
    both = (engine.step != NEVER) & (fast.step != NEVER)
    gap = np.abs(engine.fill_price[both] - fast.fill_price[both]) / fast.fill_price[both] * 1e4
    return Agreement(
        n_accounts=int(engine.step.size),
        n_liq_engine=int((engine.step != NEVER).sum()),
        n_liq_fast=int((fast.step != NEVER).sum()),
        step_mismatches=int((engine.step != fast.step).sum()),
        loss_engine_usdt=float(-np.minimum(engine.fund_flow_usdt, 0).sum()),
        loss_fast_usdt=float(-np.minimum(fast.fund_flow_usdt, 0).sum()),
        surplus_engine_usdt=float(np.maximum(engine.fund_flow_usdt, 0).sum()),
        surplus_fast_usdt=float(np.maximum(fast.fund_flow_usdt, 0).sum()),
        max_fill_gap_bp=float(gap.max(initial=0.0)),
    )


def check_agreement(ohlc: Ohlc, n_accounts: int = 200, seed: int = 0,
                    curve: DepthCurve | None = None, invariants: str = "linear") -> Agreement:
    """Build the scenario, run both ways on ``ohlc``, and compare."""
    sc = build_scenario(ohlc, n_accounts, seed, curve, invariants=invariants)
    run_engine(sc)
    fast = liquidate_path(sc.population, sc.ohlc, curve)
    return compare(engine_liquidations(sc), fast)
