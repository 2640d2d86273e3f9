"""The isolated trigger index: per instrument and side, every isolated position's exact
liquidation trigger price, sorted, so a mark where nothing crosses costs two comparisons per
instrument.

Prices are integer ticks, sizes signed integer lots, money integer units of 1e-8 of the
settlement currency. Triggers are exact (Python ints through :mod:`backstop.math`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable

from sortedcontainers import SortedList

from backstop.math.margin import calculate_mm_plus_fee, calculate_rate_amount, find_tier, is_liquidatable
from backstop.math.values import calculate_upl
from backstop.model.instrument import Instrument
from backstop.numeric import PPM, div_ceil, div_floor

INF_TICKS = 2**62
"""Trigger sentinel: a long with this trigger is always a candidate, a short never."""
_WINDOW_CAP = 4096

Key = Hashable


class IsolatedTriggerIndex:
    """Per instrument, isolated longs' triggers and shorts' triggers, each in a ``SortedList``.

    A long is liquidatable only at marks ≤ its trigger, a short only at marks ≥ its trigger
    (:func:`calculate_trigger_ticks`), so a mark crosses the longs with the highest triggers
    and the shorts with the lowest. Insert/remove O(log n); a mark where nothing crosses costs
    two comparisons per instrument; hits cost O(log n + hits).
    """

    def __init__(self, n_instruments: int) -> None:
        self._longs = [SortedList() for _ in range(n_instruments)]
        self._shorts = [SortedList() for _ in range(n_instruments)]
        self._entry: dict[Key, tuple[int, bool, int, int]] = {}
        self._key_of: dict[int, Key] = {}
        self._serial = itertools.count()

    def upsert(self, key: Key, inst_index: int, is_long: bool, trigger_ticks: int) -> None:
        self.remove(key)
        serial = next(self._serial)
        self._entry[key] = (inst_index, is_long, trigger_ticks, serial)
        self._key_of[serial] = key
        (self._longs if is_long else self._shorts)[inst_index].add((trigger_ticks, serial))

    def remove(self, key: Key) -> None:
        entry = self._entry.pop(key, None)
        if entry is not None:
            inst_index, is_long, trigger, serial = entry
            (self._longs if is_long else self._shorts)[inst_index].remove((trigger, serial))
            del self._key_of[serial]

    def trigger_of(self, key: Key) -> int | None:
        entry = self._entry.get(key)
        return None if entry is None else entry[2]

    def crossed(self, inst_index: int, mark_ticks: int) -> list[Key]:
        """Isolated positions of one instrument whose trigger the mark has reached."""
        longs, shorts = self._longs[inst_index], self._shorts[inst_index]
        out: list[Key] = []
        if longs and longs[-1][0] >= mark_ticks:
            start = longs.bisect_left((mark_ticks, -1))
            out.extend(self._key_of[s] for _, s in longs.islice(start))
        if shorts and shorts[0][0] <= mark_ticks:
            stop = shorts.bisect_left((mark_ticks + 1, -1))
            out.extend(self._key_of[s] for _, s in shorts.islice(0, stop))
        return out

    def crossed_all(self, mark_ticks_by_index: Iterable[int]) -> list[Key]:
        out: list[Key] = []
        for i, mark in enumerate(mark_ticks_by_index):
            out.extend(self.crossed(i, int(mark)))
        return out


def is_isolated_liquidatable_at(inst: Instrument, size_lots: int, cost: int, margin: int,
                                mark_ticks: int, entry_notional: int | None = None) -> bool:
    """The exact per-position check: ``margin + upl ≤ MM + fee`` at a mark (MM at
    ``entry_notional`` for an entry-valued instrument, see
    :func:`backstop.engine.queries.mm_entry_notional`)."""
    equity = margin + calculate_upl(inst, size_lots, cost, mark_ticks)
    return is_liquidatable(equity, calculate_mm_plus_fee(inst, size_lots, mark_ticks, entry_notional))


def _searched_trigger(liq: Callable[[int], bool], long: bool) -> int:
    """The trigger by bisection on the exact check, which is monotonic in the mark (a long is
    liquidatable at and below its trigger, a short at and above); same return convention as
    :func:`calculate_trigger_ticks`."""
    if liq(1):
        if not long:
            return 0
    elif long:
        return 0
    hi = 2
    while liq(hi) == long:
        if hi >= INF_TICKS:
            return INF_TICKS
        hi = min(hi * 2, INF_TICKS)
    lo = 1  # liq(lo) == long, liq(hi) != long
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if liq(mid) == long else (lo, mid)
    return lo if long else hi


def calculate_trigger_ticks(inst: Instrument, size_lots: int, cost: int, margin: int,
                            entry_notional: int | None = None) -> int:
    """Exact trigger of an isolated position: for a long the largest mark (ticks) at which it is
    liquidatable (0: never; :data:`INF_TICKS`: always), for a short the smallest (0: always;
    :data:`INF_TICKS`: never). Marks beyond it are never liquidatable.

    Works from ``calculate_liquidation_px``'s real-valued formula ``f``: the exact
    ``g = equity − (MM+fee)`` satisfies ``f − 2 < g ≤ f`` (ceilings; inverse value rewritten
    through ``N = ceil(size·k/P)`` or ``q = floor(size·k/P)``), so only a window of a few
    ticks (or values of N, q) needs the exact check. Tier MMR is fixed by the size. If a
    degenerate instrument makes the window wider than 4096 ticks, the window's far end is
    returned (still never misses, no longer the extreme). An entry-valued MM
    (``entry_notional`` given) and tiers with MM deductions are searched on the exact check.
    """
    tier = find_tier(inst.tiers, size_lots) or inst.tiers[-1]
    mmr = tier.mmr_ppm
    r, s_k, b = mmr + inst.liq_fee_ppm, abs(size_lots) * inst.value_k, margin - cost
    long = size_lots > 0

    def liq(px: int) -> bool:
        return is_isolated_liquidatable_at(inst, size_lots, cost, margin, px, entry_notional)

    if tier.mm_deduction_units or entry_notional is not None:  # max of lines (cum), or MM at entry
        return _searched_trigger(liq, long)

    def mmf(notional: int) -> int:
        return calculate_rate_amount(notional, r)

    if inst.is_linear and long:  # f = b + S·P·(1 − r); largest P with g ≤ 0
        d = PPM - r
        if d <= 0:
            return INF_TICKS
        hi, lo = div_ceil((2 - b) * PPM, s_k * d) - 1, div_floor(-b * PPM, s_k * d)
        if hi - lo > _WINDOW_CAP:
            return hi
        for px in range(hi, max(lo, 0), -1):
            if liq(px):
                return px
        return max(lo, 0)
    if inst.is_linear:  # short: f = b − S·P·(1 + r); smallest P with g ≤ 0
        d = PPM + r
        lo, hi = div_floor((b - 2) * PPM, s_k * d) + 1, max(div_ceil(b * PPM, s_k * d), 1)
        if hi - lo > _WINDOW_CAP:
            return max(lo, 1)
        for px in range(max(lo, 1), hi + 1):
            if liq(px):
                return px
        return hi
    if long:  # inverse long: g(N) = b − N − mmf(N), non-increasing in N = ceil(S/P)
        lo, hi = div_floor((b - 2) * PPM, PPM + r) + 1, max(div_ceil(b * PPM, PPM + r), 1)
        n_star = next(n for n in range(max(lo, 1), hi + 1) if b - n - mmf(n) <= 0 or n == hi)
        return INF_TICKS if n_star <= 1 else (s_k - 1) // (n_star - 1)
    d = PPM - r  # inverse short: g = b + q − mmf(N), q = floor(S/P), N ∈ {q, q + 1}
    if d <= 0:
        return 0
    q_top = min(div_ceil(2 * PPM + r - b * PPM, d) - 1, s_k)
    q_bot = div_floor(-b * PPM, d)  # q ≤ q_bot: always liquidatable
    for q in range(q_top, max(q_bot, -1), -1):
        lo, hi = (s_k // (q + 1) + 1, s_k // q) if q > 0 else (s_k + 1, s_k + 1)
        if lo > hi:
            continue
        if liq(lo):
            return lo
        if hi != lo and liq(hi):
            return hi
    return INF_TICKS if q_bot < 0 else s_k // (q_bot + 1) + 1
