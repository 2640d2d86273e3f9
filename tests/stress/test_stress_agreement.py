"""The vectorised fast path against the exact engine, on the same paths and positions.

Tolerance (see ``backstop.sim.agreement``): liquidation counts equal; per-account liquidation
steps equal for all but 2 % (at least 1 allowed); total bankruptcy loss and total surplus within
2 % of the larger plus 2 USDT per liquidation. Measured gaps are far smaller (< 0.1 %).

With feedback on (sim/feedback.py's rule on both sides, the fast side sim/contagion.py), the same
tolerance plus the cascade's drawdown within 0.5 percentage points; measured: loss within 0.4 %,
drawdown within 0.3 points, steps equal, on cascades that deepen the path's fall by up to 3.6x.
"""

from __future__ import annotations

import numpy as np
import pytest

from backstop.sim.agreement import check_agreement, compare
from backstop.sim.cascade import drawdown
from backstop.sim.exact_scenario import build_scenario, engine_liquidations, ohlc_from_prices, run_engine
from backstop.sim.feedback import BTC_FEEDBACK
from backstop.sim.impact import CRASH_CURVE, DAY_MEDIAN_CURVE
from backstop.sim.montecarlo import liquidate_path
from backstop.sim.paths import MINUTE_YEARS, gbm_paths, load_klines, merton_paths
from backstop.sim.price_sources import CRASH_CYCLE_MINUTES, crash_closes
from shared_data import OCT10_KLINES, shared_file


def _jump_path(seed: int) -> np.ndarray:
    """A day of minutes with ~3 jumps of about -8 % and no log drift."""
    rate, mean, std, sigma = 365.0 * 3, -0.08, 0.04, 0.6
    kappa = np.exp(mean + 0.5 * std**2) - 1.0
    mu = rate * kappa + 0.5 * sigma**2
    return merton_paths(np.random.default_rng(seed), 100_000.0, 1, 1440, MINUTE_YEARS, mu, sigma,
                        rate, mean, std)[0]


def _gbm_path(seed: int) -> np.ndarray:
    return gbm_paths(np.random.default_rng(seed), 100_000.0, 1, 1440, MINUTE_YEARS, 0.0, 1.5)[0]


def _assert_agrees(agreement) -> None:
    assert agreement.n_liq_engine == agreement.n_liq_fast, agreement
    assert agreement.n_liq_engine > 0, agreement
    assert agreement.within_tolerance, agreement


@pytest.mark.parametrize(("name", "seed"), [("gbm", 2), ("jump", 3), ("jump", 4)])
def test_fast_path_agrees_with_engine_on_generated_paths(name: str, seed: int) -> None:
    prices = _gbm_path(seed) if name == "gbm" else _jump_path(seed)
    agreement = check_agreement(ohlc_from_prices(prices), n_accounts=200, seed=seed,
                                curve=DAY_MEDIAN_CURVE)
    _assert_agrees(agreement)
    assert agreement.step_mismatches == 0
    if name == "jump":  # the jumps gap through bankruptcy prices: the fund pays
        assert agreement.loss_engine_usdt > 100.0
        assert abs(agreement.loss_engine_usdt - agreement.loss_fast_usdt) < 0.001 * agreement.loss_engine_usdt


def test_fast_path_agrees_with_engine_on_2025_10_10() -> None:
    bars = load_klines(shared_file(OCT10_KLINES))
    agreement = check_agreement(bars, n_accounts=200, seed=5, curve=CRASH_CURVE)
    _assert_agrees(agreement)
    assert agreement.max_fill_gap_bp < 5.0


def test_per_account_steps_and_fund_balance_match() -> None:
    scenario = build_scenario(ohlc_from_prices(_jump_path(3)), 120, seed=3, curve=DAY_MEDIAN_CURVE)
    run_engine(scenario)
    engine = engine_liquidations(scenario)
    fast = liquidate_path(scenario.population, scenario.ohlc, DAY_MEDIAN_CURVE)
    np.testing.assert_array_equal(engine.step, fast.step)
    hit = engine.step >= 0
    np.testing.assert_allclose(engine.fund_flow_usdt[hit], fast.fund_flow_usdt[hit], rtol=1e-3, atol=0.05)
    start = float(scenario.exchange.config.insurance_fund.initial["BTC-USDT"])
    assert engine.fund_end_usdt == pytest.approx(start + engine.fund_flow_usdt.sum(), abs=1e-6)
    assert compare(engine, fast).within_tolerance


def _market_share(share: float):
    """BTC's fitted rule with the population standing for ``share`` of the market's open interest
    (the depth it meets is the real one scaled to the population, divided by ``share``)."""
    return BTC_FEEDBACK.scaled_depth(1 / share, f"population = {share:.0%} of the market's open interest")


@pytest.mark.parametrize(("name", "seed", "share"), [("jump", 3, 0.01), ("gbm", 2, 0.01), ("jump", 3, 0.033)])
def test_fast_path_agrees_with_engine_with_feedback(name, seed, share):
    prices = _gbm_path(seed) if name == "gbm" else _jump_path(seed)
    agreement = check_agreement(ohlc_from_prices(prices), n_accounts=200, seed=seed,
                                feedback=_market_share(share))
    _assert_agrees(agreement)
    assert agreement.step_mismatches == 0
    assert agreement.drawdown_engine > drawdown(prices)  # the cascade deepened the fall
    assert abs(agreement.drawdown_engine - agreement.drawdown_fast) < 0.005


@pytest.mark.parametrize("share", [0.01, 0.033])
def test_fast_path_agrees_with_engine_with_feedback_on_2025_10_10(share):
    bars = load_klines(shared_file(OCT10_KLINES))
    agreement = check_agreement(bars, n_accounts=200, seed=5, feedback=_market_share(share))
    _assert_agrees(agreement)
    assert agreement.drawdown_engine > drawdown(bars.close) * 1.5
    assert abs(agreement.loss_engine_usdt - agreement.loss_fast_usdt) < 0.01 * agreement.loss_fast_usdt


def test_fast_path_agrees_with_engine_with_feedback_on_the_crash_model():
    # The crash comes 24 minutes in, while the realized volatility still remembers the start:
    # both sides must start it from the same first close (this caught a unit slip, USDT vs ticks).
    prices = crash_closes(np.random.default_rng(0), CRASH_CYCLE_MINUTES)
    agreement = check_agreement(ohlc_from_prices(prices), n_accounts=300, seed=0,
                                feedback=_market_share(0.03))
    _assert_agrees(agreement)
    assert agreement.step_mismatches == 0
    assert agreement.drawdown_engine > 3 * drawdown(prices)  # a runaway within the fitted range
