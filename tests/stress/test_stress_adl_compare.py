"""ADL policy comparison: one row per ranking policy, overshoot ≥ 0, Gini in [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest

from backstop.engine.config import ADL_RANKINGS
from backstop.report.adl_compare import compare_adl, gini
from backstop.sim.scenario import ScenarioSpec


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
