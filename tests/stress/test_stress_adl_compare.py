"""ADL policy comparison: one row per policy (ranking queues and profit haircuts), overshoot ≥ 0
and least for the haircuts, Gini in [0, 1], and the fund's and the exchange's revenue."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from backstop.model.events import Filled, InsuranceFundChanged, ProfitHaircut
from backstop.numeric import MONEY_SCALE
from backstop.report.adl_compare import (
    ADL_POLICIES,
    COMPARE_FUND_SHARE,
    compare_adl,
    gini,
    overshoot_sentence,
    policy_overrides,
)
from backstop.report.summary import headline, verdict
from backstop.sim.scenario import Scenario, ScenarioSpec
from backstop.sim.stress import run_stress


def test_one_row_per_policy(crash_files):
    klines, depth, _ = crash_files
    spec = ScenarioSpec(prices=klines, n_accounts=100, seed=2, depth_file=depth)
    rows = compare_adl(spec, progress=False)
    assert [r["policy"] for r in rows] == list(ADL_POLICIES)
    for r in rows:
        assert r["overshoot_usdt"] >= -1e-8
        assert 0.0 <= r["gini"] <= 1.0
        assert r["conservation_ok"]
    assert any(r["accounts_touched"] for r in rows), "the small fund should make ADL happen"
    by = {r["policy"]: r for r in rows}
    queues = [by[p] for p in ADL_POLICIES if not p.startswith("haircut_")]
    haircuts = [by[p] for p in ADL_POLICIES if p.startswith("haircut_")]
    # a haircut closes no winner's position and takes exactly what it needs: the least overshoot
    for h in haircuts:
        assert h["profit_closed_usdt"] == 0.0 and h["needed_usdt"] > 0
        assert h["overshoot_usdt"] == pytest.approx(0.0, abs=1e-8)
        assert h["overshoot_usdt"] <= min(q["overshoot_usdt"] for q in queues) + 1e-8
        assert h["max_haircut_pct"] < 100.0  # nobody's whole profit
    # the queue closes whole positions: it removes more profit than it needs
    assert by["okx"]["overshoot_usdt"] > 0 and by["okx"]["removed_over_needed"] > 1
    # pro-rata spreads the cut over every profitable winner: it touches at least as many
    # accounts as any queue, with a smaller largest haircut than the okx queue
    assert by["haircut_pro_rata"]["accounts_touched"] >= max(q["accounts_touched"] for q in queues)
    assert by["haircut_pro_rata"]["max_haircut_pct"] < by["okx"]["max_haircut_pct"]
    assert "okx queue removed" in overshoot_sentence(rows)


def test_policy_names_select_a_queue_or_a_haircut():
    assert policy_overrides("bitmex") == {"ranking": "bitmex", "haircut": "none"}
    assert policy_overrides("haircut_leverage") == {"haircut": "leverage"}
    with pytest.raises(ValueError, match="unknown ADL policy"):
        policy_overrides("haircut_none")


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
    config = spec.config.with_overrides(adl=policy_overrides("okx"), insurance_fund={"initial": {}})
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


def test_a_haircut_run_says_what_adl_took(crash_files):
    """A run under ``adl.haircut`` closes no winner, so its summary counts the haircuts: the
    verdict never says that ADL did not fire when winners paid."""
    klines, depth, _ = crash_files
    spec = ScenarioSpec(prices=klines, n_accounts=80, seed=4, depth_file=depth)
    config = spec.config.with_overrides(adl=policy_overrides("haircut_pro_rata"),
                                        insurance_fund={"initial": {}})
    result = run_stress(Scenario(replace(spec, config=config, fund_share=COMPARE_FUND_SHARE)), progress=False)
    cuts = [e for e in result.events if isinstance(e, ProfitHaircut)]
    h = headline(result)
    assert cuts and h.adl_haircut == sum(e.amount for e in cuts) and h.adl_events == 0
    assert h.adl_haircut_accounts == len({e.uid for e in cuts})
    text = verdict(result, h)
    assert "never fired" not in text and f"from the profit of {h.adl_haircut_accounts} winners" in text
