"""Endogenous cascades in the exact replay (sim/cascade.py, Scenario.run_step) and the
amplification grid (sim/amplification.py) with its report."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from rich.console import Console

from backstop.model.events import AutoDeleveraged, Filled, MarkPriceUpdated
from backstop.report.build import report
from backstop.sim.amplification import cell_spec, run_grid, scaled_leverage
from backstop.sim.cascade import Cascade, drawdown, forced_flow_usdt
from backstop.sim.feedback import BTC_FEEDBACK
from backstop.sim.population import PopulationSpec, generate_population
from backstop.sim.scenario import Scenario, ScenarioSpec
from backstop.sim.stress import run_stress

# A rule that never moves a price: a book a trillion trillion USD deep that never withdraws.
INERT = replace(BTC_FEEDBACK, depth_usd=1e24, vol_ref=1e9)


def _spec(crash_files, **kw) -> ScenarioSpec:
    klines, depth, _ = crash_files
    return ScenarioSpec(prices=klines, depth_file=depth, **{"n_accounts": 80, "seed": 4, **kw})


# -- the state ------------------------------------------------------------------------------


def test_impact_is_rounded_toward_the_exogenous_tick():
    cascade = Cascade(BTC_FEEDBACK, depth_usd=1e6)
    assert cascade.observed_ticks(1_000_000) == 1_000_000  # no flow, no move
    cascade.absorb(-1e6)  # a sell as large as the depth: about -1 %
    moved = 1_000_000 * math.exp(cascade.impact)
    assert cascade.impact == pytest.approx(-0.01)
    assert cascade.observed_ticks(1_000_000) == math.ceil(moved) < 1_000_000
    cascade.flow_usd = 1e-3  # far below one tick: nothing moves
    assert cascade.observed_ticks(1_000_000) == 1_000_000
    cascade.flow_usd = 5e5
    assert cascade.observed_ticks(1_000_000) == math.floor(1_000_000 * math.exp(cascade.impact)) > 1_000_000


def test_flow_decays_with_the_half_life_and_depth_withdraws_with_volatility():
    cascade = Cascade(BTC_FEEDBACK, depth_usd=1e6)
    cascade.advance(0)
    cascade.absorb(-2e6)
    cascade.advance(int(BTC_FEEDBACK.half_life_s * 1000))
    assert cascade.flow_usd == pytest.approx(-1e6)
    calm = cascade.impact
    for minute in range(30):  # 2 % a minute up and down: far above vol_ref
        cascade.close_bar(100.0 * (1.02 if minute % 2 else 1.0), 60.0)
    assert cascade.realized_vol > BTC_FEEDBACK.vol_ref and cascade.share < 1.0
    assert cascade.impact < calm  # the same flow against a thinner book moves the price more


def test_a_cascade_that_reaches_the_cap_is_a_runaway():
    cascade = Cascade(BTC_FEEDBACK, depth_usd=1e6)
    cascade.absorb(-2e6)
    assert not cascade.hit_cap and cascade.deepest_impact == pytest.approx(abs(cascade.impact))
    cascade.absorb(-1e12)  # a million times the depth: the power law would say -100 in log
    assert cascade.hit_cap and cascade.observed_ticks(1_000_000) == math.ceil(1_000_000 / 10 - 1e-6)
    cascade.advance(0)
    cascade.advance(36_000_000)  # ten hours later the flow has decayed, the record stays
    assert abs(cascade.impact) < 0.5 * math.log(10.0) and cascade.hit_cap


def test_forced_flow_signs_fills_and_adl_closes():
    fill, normal = (Filled(1, 1, "BTC-USDT-SWAP", 1_000_000, 50, "sell", 7, 1001, 8, 1, 0, 0, category)
                    for category in ("full_liquidation", "normal"))
    adl = AutoDeleveraged(1, 2000, "BTC-USDT-SWAP", "isolated", 30, 1_000_000, 1001, 0)
    per = 0.0001 * 0.1  # ctVal × lotSz × tickSz: USDT of one lot at one tick
    side = {1001: 1, 2000: -1}.get  # 1001 a long
    assert forced_flow_usdt([fill], "BTC-USDT-SWAP", per, side) == pytest.approx(-50 * 1_000_000 * per)
    assert forced_flow_usdt([normal], "BTC-USDT-SWAP", per, side) == 0.0
    # ADL closes the bankrupt long: a sell of its lots
    assert forced_flow_usdt([adl], "BTC-USDT-SWAP", per, side) == pytest.approx(-30 * 1_000_000 * per)
    assert forced_flow_usdt([fill, adl], "ETH-USDT-SWAP", per, side) == 0.0


# -- the replay -----------------------------------------------------------------------------


def test_an_inert_rule_reproduces_the_open_loop_log(crash_files):
    # Every visit is offered, yet only what the schedule keeps (or a new extreme) is sent: with no
    # impact the engine gets exactly the open-loop updates, so the event log is the same.
    open_loop = run_stress(Scenario(_spec(crash_files)), progress=False)
    inert = run_stress(Scenario(_spec(crash_files, feedback=INERT)), progress=False)
    assert inert.log_hash() == open_loop.log_hash()


def test_same_seed_same_log_with_feedback(crash_files):
    spec = _spec(crash_files, feedback=BTC_FEEDBACK, liquidity_multiplier=10.0)
    first, second = (run_stress(Scenario(spec), progress=False) for _ in range(2))
    assert first.log_hash() == second.log_hash()


def test_forced_flow_deepens_the_crash_the_engine_sees(crash_files):
    spec = _spec(crash_files, feedback=BTC_FEEDBACK, liquidity_multiplier=10.0)  # OI share 10 %
    scenario = Scenario(spec)
    result = run_stress(scenario, progress=False, full_check_every=1)
    open_loop = run_stress(Scenario(replace(spec, feedback=None)), progress=False)
    assert result.checks.violations == []
    exogenous = np.array([scenario.inst.px_to_ticks(p) for p in scenario.path.prices])
    observed = np.array(scenario.observed_ticks)
    assert observed.size == exogenous.size
    assert observed.min() < exogenous.min()  # the cascade took the index below the path's low
    exogenous_fall, cascade_fall = scenario.drawdowns()
    assert exogenous_fall == pytest.approx(drawdown(exogenous)) and cascade_fall > exogenous_fall
    assert np.all((observed <= exogenous) | (observed - exogenous < exogenous * 0.01))
    marks = [e.mark_ticks for e in result.events if isinstance(e, MarkPriceUpdated)]
    assert min(marks) < min(e.mark_ticks for e in open_loop.events if isinstance(e, MarkPriceUpdated))

    def count(r, name):
        return sum(type(e).__name__ == name for e in r.events)
    assert count(result, "LiquidationStarted") >= count(open_loop, "LiquidationStarted")


# -- amplification --------------------------------------------------------------------------


def test_drawdown_is_the_largest_fall_from_a_running_peak():
    assert drawdown(np.array([100.0, 90.0, 120.0, 96.0, 110.0])) == pytest.approx(0.2)
    assert drawdown(np.array([1.0, 2.0, 3.0])) == 0.0


def test_leverage_scale_keeps_the_draws_and_the_cap():
    base = PopulationSpec(n_accounts=500)
    lever = [generate_population(scaled_leverage(base, s), np.random.default_rng(1)).leverage
             for s in (1.0, 2.0)]
    assert np.all(lever[1] >= lever[0]) and lever[1].max() <= 100.0
    low = lever[0] < 25  # the 2-10x and 10-25x ranges: doubled exactly (the 25-100x one is capped)
    assert low.sum() > 400 and np.allclose(lever[1][low], 2 * lever[0][low])


@pytest.fixture(scope="module")
def grid(crash_files):
    return run_grid(_spec(crash_files, n_accounts=60), BTC_FEEDBACK, (0.003, 0.1), (1.0, 2.0))


def test_amplification_grows_with_open_interest(grid):
    at = {(c.oi_share, c.leverage_scale): c for c in grid}
    assert len(at) == 4
    for c in grid:
        assert c.amplification >= 1.0 and c.exogenous_drawdown > 0
        assert c.open_interest_usdt > 0
    for lever in (1.0, 2.0):
        assert at[(0.1, lever)].cascade_drawdown > at[(0.003, lever)].cascade_drawdown
    assert at[(0.1, 1.0)].amplification > 1.05  # a tenth of the market's OI moves it


def test_cell_spec_scales_the_book_and_the_leverage(crash_files):
    spec = cell_spec(_spec(crash_files), BTC_FEEDBACK, 0.01, 2.0)
    assert spec.liquidity_multiplier == pytest.approx(100.0) and spec.feedback == BTC_FEEDBACK
    assert spec.population.leverage_mix[0][1:] == (4.0, 20.0)


def test_report_shows_the_amplification_heatmap_and_table(grid, crash_files, tmp_path):
    result = run_stress(Scenario(_spec(crash_files, n_accounts=30)), progress=False)
    console = Console(record=True, width=200)
    report(console, result, tmp_path, None, grid)
    page = (tmp_path / "report.html").read_text()
    assert "Cascade amplification" in page and '"type":"heatmap"' in page.replace(" ", "")
    for c in grid:
        assert f"{c.amplification:.2f}×" in page
    text = console.export_text()
    assert "cascade amplification" in text and f"{grid[-1].cascade_drawdown:.2%}" in text
    assert (tmp_path / "amplification.parquet").is_file()
