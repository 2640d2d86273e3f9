"""Profit-haircut ADL under the adversarial money fuzzer: every policy combination the fuzzer
draws, with ``adl.haircut`` forced to each haircut policy, runs with ``check_invariants=True``
(conservation, no negative cash, reserve, isolated margin or fund, ADL only in a recorded ADL
state) and replays to the same state hash; every haircut takes at most the winner's profit
and leaves its principal (cash and isolated margin) where it was."""

from __future__ import annotations

import random

import pytest

from backstop.engine.config import AdlHaircut
from backstop.engine.exchange import Exchange
from backstop.model.events import PositionChanged, ProfitHaircut
from backstop.sim.adversary import Adversary, build_config, catalogue_for_fuzzing, random_policy

CATALOGUE = catalogue_for_fuzzing()
HAIRCUTS = [h.value for h in AdlHaircut if h != AdlHaircut.NONE]


def _principal(ex: Exchange, uids: set[int]) -> dict:
    """Cash and isolated margin of each account, by ledger key."""
    return {key: value for key, value in ex.state.ledger.balances.items()
            if key[0] in ("cash", "isolated") and int(key[1].split("/")[0]) in uids}


def _uids(event: object) -> set[int]:
    """Every account an event names."""
    return {getattr(event, name) for name in ("uid", "taker_uid", "maker_uid", "liquidated_uid")
            if isinstance(getattr(event, name, None), int)}


def _episode(seed: int, haircut: str, commands: int) -> int:
    """One fuzzing episode with the haircut policy; returns the haircuts seen."""
    rnd = random.Random(seed)
    policy = random_policy(rnd)
    policy["adl"]["haircut"] = haircut
    config = build_config(policy)
    ex = Exchange(CATALOGUE, config, check_invariants=True)
    adversary = Adversary(ex)
    adversary.fund_everyone(rnd)
    seen = 0
    for _ in range(commands):
        before = _principal(ex, set(adversary.uids))
        _command, events = adversary.step(rnd)
        cuts = [e for e in events if isinstance(e, ProfitHaircut)]
        for cut in cuts:
            assert 0 < cut.amount <= cut.profit, cut
        # a winner whose only change was a haircut keeps its principal to the unit
        cut_only = {c.uid for c in cuts} - {uid for e in events
                                            if not isinstance(e, (ProfitHaircut, PositionChanged))
                                            for uid in _uids(e)}
        after = _principal(ex, cut_only)
        assert after == {k: v for k, v in before.items() if int(k[1].split("/")[0]) in cut_only}
        seen += len(cuts)
    replayed = Exchange.replay(ex.log, CATALOGUE, config)
    assert replayed.state_hash() == ex.state_hash(), "Invariant: replay diverged"
    return seen


@pytest.mark.parametrize("haircut", HAIRCUTS)
def test_haircut_policies_keep_every_invariant_and_replay(haircut):
    seen = sum(_episode(seed, haircut, 300) for seed in range(12))
    assert seen > 0, "the episodes should make the haircut policy act"
