"""CI-sized money-invariant run (issue 6, item 6): the full size is ``bench/money_at_scale.py``."""

from __future__ import annotations

import os

import pytest

from backstop.engine.config import EngineConfig
from backstop.sim.chaos import run_chaos

EVENTS = int(os.environ.get("BACKSTOP_CHAOS_EVENTS", "12000"))

POLICIES = {
    "okx": {},
    "adl_only_pro_rata": {"waterfall": {"order": ["adl"]}, "adl": {"ranking": "pro_rata"}},
    "socialize": {"waterfall": {"order": ["insurance_fund", "socialize"]}},
    "progressive": {"liquidation": {"style": "progressive"}, "waterfall": {"order": ["adl"]},
                    "adl": {"ranking": "hyperliquid"}},
}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_conservation_holds_after_every_command(name):
    config = EngineConfig().with_overrides(
        insurance_fund={"initial": {"BTC-USDT": "300", "ETH-USDT": "100", "BTC-USD": "0.005"}},
        **POLICIES[name])
    report = run_chaos(EVENTS, seed=7, config=config)
    assert report.violations == []
    assert report.events >= EVENTS
    assert report.conservation_checks == report.commands
    # the run exercised what moves money: fills, liquidations, funding, withdrawals
    for kind in ("Filled", "LiquidationSettled", "FundingPaid", "Withdrawn"):
        assert report.event_kinds[kind] > 0, kind
    if name == "adl_only_pro_rata":
        assert report.event_kinds["AutoDeleveraged"] > 0


def test_same_seed_same_run():
    first, second = run_chaos(3000, seed=3), run_chaos(3000, seed=3)
    assert first.digest.hexdigest() == second.digest.hexdigest()
    assert run_chaos(3000, seed=4).digest.hexdigest() != first.digest.hexdigest()


def test_vectorised_screen_liquidates_exactly_what_the_exact_scan_does():
    """The float screen (confirmed exactly) and the Python scan give the same event log."""
    runs = {}
    for screen in ("exact", "vectorised"):
        config = EngineConfig().with_overrides(
            risk={"screen": screen}, waterfall={"order": ["insurance_fund", "adl"]},
            insurance_fund={"initial": {"BTC-USDT": "300", "ETH-USDT": "100", "BTC-USD": "0.005"}})
        runs[screen] = run_chaos(8000, seed=11, config=config)
    assert runs["exact"].event_kinds["LiquidationStarted"] > 10
    assert runs["exact"].digest.hexdigest() == runs["vectorised"].digest.hexdigest()
