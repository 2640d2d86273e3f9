"""Profit-haircut allocators (money units): hand-checked tables, then properties over random
profits and needs: the total covers the need with no rounding excess, no winner pays more
than its profit, pro-rata takes equal fractions up to the unit, and the minimum-overshoot
allocation is a lower bound for every policy's overshoot (the queue's included)."""

from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backstop.math.haircut import (
    allocate_leverage_haircut,
    allocate_min_overshoot,
    allocate_pro_rata_haircut,
    allocate_weighted_haircut,
)


def calculate_overshoot(needed: int, haircuts: list[int]) -> int:
    """Profit taken beyond the need."""
    return sum(haircuts) - needed


def allocate_queue_haircut(needed: int, capacities_in_rank_order: list[int]) -> list[int]:
    """Chitra's wealth-space queue (arXiv 2512.01112): in rank order each winner loses its
    whole profit (its position is closed) until the need is covered."""
    out, left = [], max(0, needed)
    for cap in capacities_in_rank_order:
        take = max(0, cap) if left > 0 else 0
        out.append(take)
        left -= take
    return out


EXACT = (
    ("pro_rata", lambda need, caps, lev: allocate_pro_rata_haircut(need, caps)),
    ("leverage", lambda need, caps, lev: allocate_leverage_haircut(need, caps, lev, [1_000] * len(caps))),
    ("min_overshoot", lambda need, caps, lev: allocate_min_overshoot(need, caps)),
)


@pytest.mark.parametrize("need, caps, expected", [
    (30, [100, 200], [10, 20]),  # 10 % of each
    (1, [1, 1, 1], [1, 0, 0]),  # one unit: the first of the equal remainders
    (500, [100, 200], [100, 200]),  # not enough profit: everything, never more
    (0, [100, 200], [0, 0]),
    (10, [0, -5, 40], [0, 0, 10]),  # losers and flat positions pay nothing
])
def test_pro_rata_table(need, caps, expected):
    assert allocate_pro_rata_haircut(need, caps) == expected


@pytest.mark.parametrize("need, caps, weights, expected", [
    (60, [100, 100], [1, 2], [20, 40]),  # in proportion to the weights
    (150, [100, 100], [1, 3], [50, 100]),  # 3/4 of 150 = 112.5 > 100: capped, the rest to the other
    (150, [100, 100], [0, 1], [50, 100]),  # a weightless winner pays only what the others cannot
])
def test_weighted_table(need, caps, weights, expected):
    assert allocate_weighted_haircut(need, caps, weights) == expected


@pytest.mark.parametrize("need, caps, expected", [
    (50, [100, 60, 10], [45, 5, 0]),  # level 55: 100 → 55, 60 → 55
    (20, [10, 10, 10], [7, 7, 6]),  # level 3 over-takes 1 unit: given back by the last
    (1_000, [10, 20], [10, 20]),
])
def test_min_overshoot_table(need, caps, expected):
    assert allocate_min_overshoot(need, caps) == expected


def test_the_queue_model_overshoots_by_the_last_profit_it_closes():
    # ranked 200, 300, 100; 250 needed: the first two are closed whole, 250 beyond the need
    got = allocate_queue_haircut(250, [200, 300, 100])
    assert got == [200, 300, 0] and calculate_overshoot(250, got) == 250
    assert calculate_overshoot(250, allocate_min_overshoot(250, [200, 300, 100])) == 0


profits = st.lists(st.integers(min_value=-10**12, max_value=10**12), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(profits, st.integers(min_value=0, max_value=3 * 10**13),
       st.lists(st.integers(min_value=0, max_value=10**9), min_size=30, max_size=30))
def test_every_allocator_covers_exactly_and_never_beyond_profit(caps, need, notionals):
    collectible = sum(max(0, c) for c in caps)
    for _name, allocate in EXACT:
        got = allocate(need, caps, notionals[:len(caps)])
        assert len(got) == len(caps)
        assert all(0 <= h <= max(0, c) for h, c in zip(got, caps, strict=True))
        assert sum(got) == min(need, collectible)


@settings(max_examples=300, deadline=None)
@given(profits, st.integers(min_value=1, max_value=3 * 10**13))
def test_pro_rata_takes_equal_fractions_up_to_rounding(caps, need):
    collectible = sum(max(0, c) for c in caps)
    got = allocate_pro_rata_haircut(need, caps)
    if collectible == 0:
        assert got == [0] * len(caps)
        return
    fraction = min(F(need, collectible), F(1))
    for h, c in zip(got, caps, strict=True):
        assert abs(h - fraction * max(0, c)) < 1


@settings(max_examples=300, deadline=None)
@given(profits, st.integers(min_value=0, max_value=3 * 10**13), st.randoms(use_true_random=False),
       st.lists(st.integers(min_value=0, max_value=10**9), min_size=30, max_size=30))
def test_min_overshoot_is_a_lower_bound_for_every_policy(caps, need, rnd, notionals):
    floor = calculate_overshoot(need, allocate_min_overshoot(need, caps))
    ranked = list(caps)
    rnd.shuffle(ranked)
    queue = allocate_queue_haircut(need, ranked)
    assert calculate_overshoot(need, queue) >= floor
    assert sum(queue) >= min(need, sum(max(0, c) for c in caps))  # the queue covers too
    for _name, allocate in EXACT:
        assert calculate_overshoot(need, allocate(need, caps, notionals[:len(caps)])) >= floor


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=30),
       st.integers(min_value=1, max_value=3 * 10**13))
def test_min_overshoot_leaves_every_winner_at_one_level(caps, need):
    """Water-filling to an integer level ``L``: whoever pays keeps ``L`` or ``L + 1``, and
    whoever pays nothing had no more than ``L + 1``."""
    got = allocate_min_overshoot(need, caps)
    kept = [c - h for c, h in zip(caps, got, strict=True)]
    payers = [k for k, h in zip(kept, got, strict=True) if h]
    if payers:
        assert max(payers) - min(payers) <= 1
        untouched = [k for k, h in zip(kept, got, strict=True) if not h]
        assert all(u <= min(payers) + 1 for u in untouched)
