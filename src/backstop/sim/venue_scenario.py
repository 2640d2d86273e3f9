"""A stress :class:`~backstop.sim.scenario.Scenario` under a venue profile.

The scenario's config names the venue (``EngineConfig.venue``); this builds the scenario and
gives its exchange the venue's catalogue, with the venue's notional brackets mapped to
contracts at the path's first price, before any command runs. The population, path, maker and
fund are the scenario's own, so runs under two venues differ only by the venue's rules.
"""

from __future__ import annotations

from backstop.engine.config import Venue
from backstop.engine.exchange import Exchange
from backstop.engine.venues import venue_profile
from backstop.sim.scenario import INST_ID, Scenario, ScenarioSpec


def venue_scenario(spec: ScenarioSpec) -> Scenario:
    """``Scenario(spec)``, on the catalogue of ``spec.config.venue`` (OKX: unchanged)."""
    scenario = Scenario(spec)
    if spec.config.venue is Venue.OKX:
        return scenario
    start = str(scenario.path.prices[0])
    catalogue = venue_profile(spec.config.venue).catalogue({INST_ID: start})
    inst = catalogue.get(INST_ID)
    if inst is None:
        raise ValueError(f"venue {spec.config.venue.value} lists no {INST_ID}")
    scenario.exchange = Exchange(catalogue, config=scenario.config, keep_log=False)
    scenario.inst = inst
    scenario.maker.inst = inst
    return scenario
