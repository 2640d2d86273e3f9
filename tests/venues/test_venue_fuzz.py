"""The adversarial money fuzzer (``backstop.sim.adversary``) under each venue profile: every
command kind against the venue's margin tables (MM deductions, no fee in the trigger,
leverage caps) and policies, every invariant checked after every command, then a replay to
the same state hash. Both risk screens run, so the float screen's superset property is
exercised with deductions left out of its requirement."""

from __future__ import annotations

import random

import pytest

from backstop.engine.config import Venue
from backstop.engine.exchange import Exchange
from backstop.engine.venues import venue_profile
from backstop.sim.adversary import INSTRUMENTS, Adversary, Tally


@pytest.mark.parametrize("venue", [v for v in Venue if v is not Venue.OKX])
def test_adversary_under_a_venue_profile(venue):
    catalogue = venue_profile(venue).catalogue().subset(list(INSTRUMENTS))
    total = Tally()
    for seed in range(8):
        rnd = random.Random(seed)
        config = venue_profile(venue).config.with_overrides(
            insurance_fund={"initial": {"BTC-USDT": rnd.choice(["0", "50", "5000"])}},
            risk={"screen": "vectorised" if seed % 2 else "exact"})
        exchange = Exchange(catalogue, config, check_invariants=True)
        adversary = Adversary(exchange, 6)
        adversary.fund_everyone(rnd)
        for _ in range(300):
            total.add(adversary.step(rnd)[1])
        replayed = Exchange.replay(exchange.log, catalogue, config)
        assert replayed.state_hash() == exchange.state_hash()
    assert total.commands == 2400 and total.liquidations > 0
