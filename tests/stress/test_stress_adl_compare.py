"""ADL policy comparison: one row per ranking policy, overshoot ≥ 0, Gini in [0, 1], and the
fund's and the exchange's revenue."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from backstop.engine.config import ADL_RANKINGS
from backstop.model.events import Filled, InsuranceFundChanged
from backstop.numeric import MONEY_SCALE
from backstop.report.adl_compare import COMPARE_FUND_SHARE, compare_adl, gini
from backstop.sim.scenario import Scenario, ScenarioSpec
from backstop.sim.stress import run_stress


def test_one_row_per_policy(crash_files):
    klines, depth, _ = crash_files
    spec = ScenarioSpec(prices=klines, n_accounts=100, seed=2, depth_file=depth)
    rows = compare_adl(spec, progress=False)
    assert [r["policy"] for r in rows] == list(ADL_RANKINGS)
    for r in rows:
        assert r["overshoot_usdt"] >= 0
        assert 0.0 <= r["gini"] <= 1.0
        assert r["conservation_ok"]
    assert any(r["accounts_touched"] for r in rows), "the small fund should make ADL happen"
    pro_rata = next(r for r in rows if r["policy"] == "pro_rata")
    assert pro_rata["accounts_touched"] >= max(r["accounts_touched"] for r in rows)


@pytest.mark.parametrize("values, expected", [
    ([1, 1, 1, 1], 0.0),  # equal haircuts
    ([0, 0, 0, 4], 0.75),  # one of four takes everything: (n-1)/n
    ([], 0.0),
])
def test_gini(values, expected):
    assert gini(np.array(values, dtype=float)) == pytest.approx(expected)


def test_revenues_match_the_events_of_the_same_run(crash_files):
    klines, depth, _ = crash_files
    spec = ScenarioSpec(prices=klines, n_accounts=80, seed=4, depth_file=depth)
    row = compare_adl(spec, ("okx",), progress=False)[0]
    # The same run again, every event kept: sum what happened after the opening (step >= 1).
    config = spec.config.with_overrides(adl={"ranking": "okx"}, insurance_fund={"initial": {}})
    scenario = Scenario(replace(spec, config=config, fund_share=COMPARE_FUND_SHARE))
    result = run_stress(scenario, progress=False)
    during = [e for e, step in zip(result.events, result.steps, strict=True) if step >= 1]
    fund_id = scenario.exchange.state.fund_of[scenario.inst.inst_id]
    fund_moves = [e for e in during if isinstance(e, InsuranceFundChanged) and e.fund_id == fund_id]
    fees = sum(e.taker_fee + e.maker_fee for e in during if isinstance(e, Filled))
    assert row["fund_revenue_usdt"] == pytest.approx(sum(e.amt for e in fund_moves) / MONEY_SCALE)
    assert fund_moves and fund_moves[-1].balance - _balance_before(result, fund_id) == sum(
        e.amt for e in fund_moves)
    assert row["exchange_revenue_usdt"] == pytest.approx(fees / MONEY_SCALE) and fees > 0


def _balance_before(result, fund_id: str) -> int:
    """The fund's balance when the path starts (after the opening)."""
    moves = [e for e, step in zip(result.events, result.steps, strict=True)
             if step < 1 and isinstance(e, InsuranceFundChanged) and e.fund_id == fund_id]
    return moves[-1].balance if moves else 0
