"""Replay of the real 2025-10-10 day through the exact engine: conservation at every step."""

from __future__ import annotations

from backstop.sim.scenario import Scenario, ScenarioSpec
from backstop.sim.stress import run_stress
from shared_data import OCT10_DEPTH, OCT10_KLINES, shared_file


def test_oct10_replay_conserves_at_every_step():
    # 150 accounts; every bar's close plus each new low/high: 852 index updates
    spec = ScenarioSpec(prices=shared_file(OCT10_KLINES), n_accounts=150, seed=3,
                        depth_file=shared_file(OCT10_DEPTH), schedule="bars")
    scenario = Scenario(spec)
    result = run_stress(scenario, progress=False, full_check_every=1)
    assert not result.interrupted and result.steps_done == scenario.n_steps
    assert result.checks.violations == []
    assert result.checks.conservation == scenario.n_steps + 2  # opening, every step, final
    assert result.checks.full == scenario.n_steps + 2
    kinds = {type(e).__name__ for e in result.events}
    assert {"LiquidationStarted", "LiquidationSettled", "InsuranceFundChanged"} <= kinds
    low = min(scenario.path.prices)
    assert str(low) == "101516.5"  # the day's low reached the engine


def test_same_seed_same_event_log():
    spec = ScenarioSpec(model="jump", n_accounts=60, steps=240, seed=11)
    first = run_stress(Scenario(spec), progress=False)
    second = run_stress(Scenario(spec), progress=False)
    other = run_stress(Scenario(ScenarioSpec(model="jump", n_accounts=60, steps=240, seed=12)),
                       progress=False)
    assert first.log_hash() == second.log_hash()
    assert first.log_hash() != other.log_hash()
