"""The ADL queue's front: skipping winners already closed in the risk pass changes nothing,
and ranking a scored queue only as far as it is read gives the full sort's order.

Each scenario runs twice on the same commands: with the queue's front kept between the
slices of a pass, and with it found from the start for every slice (the walk before the
front existed). The event logs must be equal, while the first run does skip closed winners."""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_strategies import adl_policies, liquidation_styles

from backstop.engine.adl import RankedQueue
from backstop.engine.config import config_from_dict
from backstop.engine.exchange import Exchange
from backstop.math.adl import AdlCandidate, adl_rank_key, rank_candidates
from backstop.model.catalogue import default_catalogue
from backstop.model.commands import Deposit, PlaceOrder, SetIndexPrice, SetLeverage
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import AutoDeleveraged

BTC = "BTC-USDT-SWAP"
MAKER = 100
CATALOGUE = default_catalogue().subset([BTC])
EXAMPLES = int(os.environ.get("BACKSTOP_HYPOTHESIS_EXAMPLES", "60"))


@contextmanager
def _front_recorded(keep_front: bool):
    """Run with the front kept (as the engine does) or found from the start of the queue
    every slice (a closed winner is then skipped only if it is closed at that moment, as the
    walk before the front did); yields the list of fronts the queues reported."""
    fronts: list[int] = []
    real = RankedQueue.skip_closed

    def skip_closed(self, state, keep):
        front = real(self, state, keep and keep_front)
        fronts.append(front)
        return front

    RankedQueue.skip_closed = skip_closed  # type: ignore[method-assign]
    try:
        yield fronts
    finally:
        RankedQueue.skip_closed = real  # type: ignore[method-assign]


def _run(longs, shorts, policy, moves):
    """Longs and shorts open against each other through a maker's book, which is then
    pulled; the index moves by per-mille ``moves``. Returns every event."""
    ex = Exchange(CATALOGUE, config_from_dict(policy), check_invariants=True)
    ts, px = 0, D(100_000)
    events = ex.execute(SetIndexPrice(ts, "BTC-USDT", px))
    events += ex.execute(Deposit(ts, MAKER, "USDT", D(50_000_000)))
    uid = 0
    for side, group in ((Side.BUY, longs), (Side.SELL, shorts)):
        for mode, lever, contracts in group:
            uid += 1
            maker_side = Side.SELL if side == Side.BUY else Side.BUY
            events += ex.execute(PlaceOrder(ts, MAKER, BTC, maker_side, OrderType.LIMIT, D(contracts), px))
            need = D(contracts) * px / 100 / lever * D("1.05") + 50
            events += ex.execute(Deposit(ts, uid, "USDT", need.quantize(D("0.01"))))
            events += ex.execute(SetLeverage(ts, uid, BTC, mode, D(lever)))
            events += ex.execute(PlaceOrder(ts, uid, BTC, side, OrderType.MARKET, D(contracts), td_mode=mode))
    for move in moves:  # no maker quotes left: liquidations go down the waterfall
        ts += 60_000
        px = max(D(1000), (px * (1000 + move) / 1000).quantize(D("0.1")))
        events += ex.execute(SetIndexPrice(ts, "BTC-USDT", px))
    return events


positions = st.lists(st.tuples(st.sampled_from([MarginMode.CROSS, MarginMode.ISOLATED]),
                               st.integers(5, 50), st.integers(1, 40)), min_size=1, max_size=8)
policies = st.fixed_dictionaries({
    "liquidation": liquidation_styles,
    "adl": adl_policies,
    "waterfall": st.sampled_from([{"order": ["insurance_fund", "adl"]},
                                  {"order": ["insurance_fund", "vault", "adl"],
                                   "vault_capital": {"USDT": "3000"}}]),
    "insurance_fund": st.sampled_from([{}, {"initial": {"BTC-USDT": "500"}}]),
})
moves = st.lists(st.one_of(st.integers(-60, 40), st.sampled_from([-150, -250, 150])),
                 min_size=1, max_size=6)


def _same_both_ways(longs, shorts, policy, path):
    with _front_recorded(True) as kept:
        with_front = _run(longs, shorts, policy, path)
    with _front_recorded(False) as fresh:
        from_start = _run(longs, shorts, policy, path)
    assert with_front == from_start
    return with_front, kept, fresh


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(longs=positions, shorts=positions, policy=policies, path=moves)
def test_keeping_the_front_changes_no_event(longs, shorts, policy, path):
    _same_both_ways(longs, shorts, policy, path)


def test_a_crash_through_many_small_winners_skips_the_closed_ones():
    """Many small shorts against a few large longs: each long's slices close one short after
    another, so later slices start past the closed ones, with the same events."""
    shorts = [(MarginMode.CROSS, 10, 1 + k % 3) for k in range(12)]
    longs = [(MarginMode.CROSS, 50, 8), (MarginMode.ISOLATED, 40, 10)]
    policy = {"adl": {"ranking": "okx"}, "waterfall": {"order": ["insurance_fund", "adl"]}}
    events, kept, fresh = _same_both_ways(longs, shorts, policy, [-150])
    assert sum(isinstance(e, AutoDeleveraged) for e in events) >= 3
    assert max(kept) > 0 and kept == fresh  # no book trade in between: the kept front holds


candidates = st.lists(st.builds(
    AdlCandidate, uid=st.integers(1, 30), inst_id=st.just(BTC),
    mgn_mode=st.sampled_from(["cross", "isolated"]), size_lots=st.integers(-50, 50).filter(bool),
    upl=st.integers(-10**9, 10**9), margin=st.integers(0, 10**9), equity=st.integers(-10**9, 10**10),
    notional=st.integers(1, 10**10), mm=st.integers(0, 10**8), wallet=st.integers(0, 10**10),
    mark_ticks=st.integers(1, 10**6), entry_num=st.integers(1, 10**7), entry_den=st.integers(1, 50),
    cost=st.integers(-10**10, 10**10)), max_size=40, unique_by=lambda c: c.sort_key)


@settings(max_examples=300, deadline=None)
@given(candidates, st.sampled_from(["okx", "bitmex", "binance", "hyperliquid"]), st.integers(0, 41))
def test_a_queue_ranked_as_far_as_read_is_the_full_sort(cands, ranking, depth):
    """Ties in score included (equal candidates apart from the account), read in any depth."""
    cands = cands + [replace(c, uid=c.uid + 100) for c in cands[:3]]
    queue = RankedQueue([], [(adl_rank_key(ranking, c), c) for c in cands])
    full = rank_candidates(ranking, cands, random.Random(0))
    assert queue.reach(depth) == (depth < len(full))
    assert list(queue) == full[:depth + 1]
    assert [queue[i] for i in range(len(full)) if queue.reach(i)] == full
