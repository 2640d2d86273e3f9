"""Profit haircuts: who pays a socialized deficit, in money units (1e-8), exactly.

Chitra ("Autodeleveraging: Impossibilities and Optimization", arXiv 2512.01112; "Autodeleveraging
as Online Learning", arXiv 2602.15182) describes an ADL policy by two things: its *severity*,
the part of a bankrupt deficit that is socialized (here: ``needed``, set by the waterfall), and
its *haircut vector*, the part of each winner's unrealized profit taken to pay it. A haircut
lives in profit space only: each winner's capacity is its profit (never its principal), and
positions stay open. These functions compute the haircut vector; each returns one amount per
winner, in the order given, with

- ``0 <= haircut[i] <= capacity[i]`` (never more than a winner's profit);
- ``sum(haircut) == min(needed, sum(capacity))``: the total taken covers what is needed with
  no rounding excess (the rule asked of a haircut is ``needed <= total < needed + winners``;
  these meet it with an excess of 0). The **overshoot**, total − needed, is so 0, the least
  any allocation reaches; Chitra's wealth-space queue, which takes each ranked winner's whole
  profit until the deficit is covered, overshoots by up to the last winner's profit.

Rounding: an exact allocator rounds each proportional share down and hands the leftover
units, one each, to the largest remainders (:func:`backstop.math.adl.allocate_pro_rata`), so
every share is within one unit of its exact proportional value and the total is exact.
"""

from __future__ import annotations

from backstop.math.adl import allocate_pro_rata
from backstop.numeric import PPM, div_floor


def allocate_pro_rata_haircut(needed: int, capacities: list[int]) -> list[int]:
    """Every winner loses the same fraction ``f = needed / Σ capacity`` of its profit, up to
    one unit of rounding (shares rounded down, leftovers by largest remainder), capped at
    ``f = 1``. The unique fair rule under Chitra's axioms."""
    caps = [max(0, c) for c in capacities]
    return allocate_pro_rata(min(max(0, needed), sum(caps)), caps)


def allocate_weighted_haircut(needed: int, capacities: list[int], weights: list[int]) -> list[int]:
    """Haircuts in proportion to ``weights`` (≥ 0), each capped at its capacity, water-filled:
    a winner whose proportional share would reach its capacity pays exactly its capacity and
    the rest is shared among the others in proportion to their weights, until ``needed`` (or
    everything collectible) is covered. Shares round as :func:`allocate_pro_rata`; a winner
    with capacity but no weight pays only when the weighted ones cannot cover the need."""
    caps = [max(0, c) for c in capacities]
    left = min(max(0, needed), sum(caps))
    out = [0] * len(caps)
    active = [i for i, c in enumerate(caps) if c > 0 and weights[i] > 0]
    while left and active:
        total_weight = sum(weights[i] for i in active)
        capped = [i for i in active if left * weights[i] >= caps[i] * total_weight]
        if not capped:  # every exact share is below its cap, so a rounded-up one is at most it
            for i, share in zip(active, allocate_pro_rata(left, [weights[i] for i in active]), strict=True):
                out[i] = share
            return out
        for i in capped:
            out[i], left = caps[i], left - caps[i]
        active = [i for i in active if i not in capped]
    rest = [caps[i] - out[i] for i in range(len(caps))]  # only weightless winners remain
    for i, share in enumerate(allocate_pro_rata_haircut(left, rest)):
        out[i] += share
    return out


def calculate_leverage_weight(capacity: int, notional: int, equity: int) -> int:
    """Risk-aware pro-rata's weight (Chitra's RAP): profit × effective leverage, with
    leverage = notional / equity in ppm rounded down (an equity ≤ 0 counts as one unit)."""
    leverage_ppm = div_floor(max(0, notional) * PPM, max(equity, 1))
    return max(0, capacity) * leverage_ppm


def allocate_leverage_haircut(needed: int, capacities: list[int], notionals: list[int],
                              equities: list[int]) -> list[int]:
    """Risk-aware pro-rata: haircuts in proportion to profit × leverage, capped at profit, so
    the most leveraged winners (the riskiest to the venue) pay a larger share of their
    profit. Adding margin lowers a winner's leverage and so its share: the moral hazard the
    paper weighs against the risk it removes."""
    weights = [calculate_leverage_weight(c, n, e)
               for c, n, e in zip(capacities, notionals, equities, strict=True)]
    return allocate_weighted_haircut(needed, capacities, weights)


def allocate_min_overshoot(needed: int, capacities: list[int]) -> list[int]:
    """The benchmark: the water-filling allocation, whose overshoot (0 whenever the profit
    suffices) is the least any allocation can reach. Profits above a common level ``L`` are
    shaved down to it (the richest pay first, none ends below ``L``); the integer level is
    the largest with ``Σ max(0, c − L) ≥ needed``, and the units that level overshoots are
    given back one each by the winners at or above it, last first."""
    caps = [max(0, c) for c in capacities]
    target = min(max(0, needed), sum(caps))
    if not target:
        return [0] * len(caps)
    low, high = 0, max(caps)  # Σ max(0, c − low) ≥ target > Σ max(0, c − high) = 0
    while high - low > 1:
        mid = (low + high) // 2
        if sum(max(0, c - mid) for c in caps) >= target:
            low = mid
        else:
            high = mid
    out = [max(0, c - low) for c in caps]
    excess = sum(out) - target  # < the number of winners above ``low`` (else ``low + 1`` fits)
    for i in reversed(range(len(caps))):
        if not excess:
            break
        if out[i]:
            out[i] -= 1
            excess -= 1
    return out
