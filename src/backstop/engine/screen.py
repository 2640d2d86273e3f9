"""Vectorised risk screen (float, conservative) with an exact integer confirmation, and an
incremental index of isolated positions' liquidation trigger prices.

Units: prices are integer ticks, sizes signed integer lots, money integer units of 1e-8 of
the settlement currency (:mod:`backstop.numeric`). Floats appear only inside
:meth:`RiskScreen.screen`; the engine acts only on what :meth:`RiskScreen.confirm` returns,
which is recomputed with Python ints through :mod:`backstop.math`.

Keeping it up to date (the engine's side):

- a position's size, cost basis or isolated margin changed → :meth:`RiskScreen.upsert`;
- a position went flat → :meth:`RiskScreen.remove`;
- an account's cash in a settlement currency changed → :meth:`RiskScreen.set_cash`;
- a mark update → :meth:`RiskScreen.screen` then :meth:`RiskScreen.confirm`; for isolated
  positions alone, :meth:`IsolatedTriggerIndex.crossed` on ``RiskScreen.triggers`` costs
  O(1) per instrument when nothing crosses.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from sortedcontainers import SortedList

from backstop.math.margin import calculate_mm_plus_fee, calculate_rate_amount, find_tier, is_liquidatable
from backstop.math.values import calculate_upl
from backstop.model.instrument import Instrument
from backstop.numeric import PPM, div_ceil, div_floor

try:  # numba is optional: the numpy path gives the same candidates, more slowly
    import numba
except ImportError:  # pragma: no cover
    numba = None

EPS_REL = 2.0**-30
"""Relative slack of the float screen (≈ 9.3e-10), applied to each position's
``|value| + |margin − cost| + MM+fee`` and to ``|cash|``; see :meth:`RiskScreen.screen`."""
ABS_SLACK_UNITS = 16.0
"""Absolute slack per position in money units, for the integer roundings of the exact
formulas (inverse value floors: −1; two ceilings and the inverse notional ceiling in MM+fee:
< 2 + rate ≤ 4)."""
INF_TICKS = 2**62
"""Trigger sentinel: a long with this trigger is always a candidate, a short never."""
_WINDOW_CAP = 4096

Key = Hashable
AccountKey = tuple[int, str]
"""``(uid, settlement currency)``: one cross book."""


@dataclass(frozen=True, slots=True)
class Candidates:
    """Isolated position keys and cross books ``(uid, ccy)`` at or near margin ratio 100%."""

    isolated: list[Key] = field(default_factory=list)
    cross: list[AccountKey] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.isolated) + len(self.cross)


class _Pool:
    """Structure-of-arrays slots for one kind of position (isolated, or cross).

    A removal kills its slot (float figures set so it can never be a candidate; a cross slot
    moves to the dump account 0) and the next insert reuses it. When dead slots plus slots
    written out of account order pass a quarter of the pool, it is compacted and sorted by
    account in one numpy pass (amortised O(1) per change), so the screen's per-account sums
    walk memory in order.
    """

    COMPACT_MIN = 4096
    FIELDS: ClassVar[dict[str, type]] = {
        "cls": np.int16, "acct": np.int32, "sk": np.float64, "base": np.float64,
        "lots": np.int64, "cost": np.int64, "margin": np.int64, "pid": np.int64,
    }

    def __init__(self, capacity: int) -> None:
        self.used = 0
        self.free: list[int] = []
        self.disorder = 0
        for name, dtype in self.FIELDS.items():
            setattr(self, name, np.zeros(capacity, dtype=dtype))

    def add(self) -> int:
        self.disorder += 1
        if self.free:
            return self.free.pop()
        if self.used == len(self.sk):
            for name in self.FIELDS:
                arr = getattr(self, name)
                setattr(self, name, np.concatenate([arr, np.zeros_like(arr)]))
        self.used += 1
        return self.used - 1

    def kill(self, slot: int) -> None:
        self.sk[slot], self.base[slot], self.acct[slot], self.pid[slot] = 0.0, _DEAD_BASE, 0, -1
        self.free.append(slot)

    def maybe_compact(self, slot_of_pid: np.ndarray) -> None:
        if len(self.free) + self.disorder <= max(self.COMPACT_MIN, self.used // 4):
            return
        live = np.flatnonzero(self.pid[:self.used] >= 0)
        order = live[np.argsort(self.acct[live], kind="stable")]
        for name in self.FIELDS:
            arr = getattr(self, name)
            arr[:len(order)] = arr[order]
        self.used, self.free, self.disorder = len(order), [], 0
        slot_of_pid[self.pid[:self.used]] = np.arange(self.used)


class RiskScreen:
    """A float64 structure-of-arrays copy of every open position, for one screen per mark update.

    Two pools (:class:`_Pool`): isolated positions, and cross positions with their book's
    slot (``(uid, ccy)`` → 1, 2, ...). Per slot: a class index (instrument × tier, which fixes
    the rate ``(mmr + taker)/1e6``), ``size·value_k`` and ``margin − cost`` (isolated) or
    ``−cost`` (cross) as floats, and the exact int64 lots, cost and margin. Exact figures
    beyond int64 raise ``OverflowError`` on ``upsert``.
    """

    def __init__(self, instruments: Sequence[Instrument], capacity: int = 1024,
                 backend: str = "auto", track_triggers: bool = True, parallel: bool = False) -> None:
        self.parallel = parallel
        self.instruments = list(instruments)
        self.inst_index = {inst.inst_id: i for i, inst in enumerate(self.instruments)}
        self._linear = np.array([inst.is_linear for inst in self.instruments], dtype=bool)
        classes = [(i, t.mmr_ppm, inst.liq_fee_ppm) for i, inst in enumerate(self.instruments)
                   for t in inst.tiers]
        self._cls = {(i, mmr): c for c, (i, mmr, _) in enumerate(classes)}
        self._inst_of_cls = np.array([c[0] for c in classes], dtype=np.int64)
        self._rate_of_cls = np.array([(c[1] + c[2]) / PPM for c in classes])
        self.backend = ("numba" if numba is not None else "numpy") if backend == "auto" else backend
        self.iso, self.cross = _Pool(max(capacity // 2, 16)), _Pool(max(capacity // 2, 16))
        self._pid: dict[Key, int] = {}
        self._key_of_pid: list[Key | None] = []
        self._pid_free: list[int] = []
        self._slot_of_pid = np.zeros(max(capacity, 16), dtype=np.int64)
        self._acct_slot: dict[AccountKey, int] = {}
        self._acct_keys: list[AccountKey | None] = [None]
        self._acct_members: list[set[Key]] = [set()]
        self._cash = np.zeros(16, dtype=np.int64)
        self._cash_adj = np.zeros(16, dtype=np.float64)
        self._cross_count = np.zeros(16, dtype=np.int64)
        self._work = np.zeros((0, 0))
        self.triggers = IsolatedTriggerIndex(len(self.instruments)) if track_triggers else None

    # ---- storage -------------------------------------------------------------------------
    def _account(self, uid: int, ccy: str) -> int:
        akey = (uid, ccy)
        slot = self._acct_slot.get(akey)
        if slot is None:
            slot = self._acct_slot[akey] = len(self._acct_keys)
            self._acct_keys.append(akey)
            self._acct_members.append(set())
            if slot >= len(self._cash):
                self._cash = np.concatenate([self._cash, np.zeros_like(self._cash)])
                self._cash_adj = np.concatenate([self._cash_adj, np.zeros_like(self._cash_adj)])
                self._cross_count = np.concatenate([self._cross_count, np.zeros_like(self._cross_count)])
        return slot

    def set_cash(self, uid: int, ccy: str, cash: int) -> None:
        """The account's cash in ``ccy`` (money units) changed: O(1)."""
        slot = self._account(uid, ccy)
        self._cash[slot] = cash
        self._cash_adj[slot] = float(cash) - EPS_REL * abs(float(cash))

    def _locate(self, key: Key) -> tuple[_Pool, int] | None:
        pid = self._pid.get(key)
        if pid is None:
            return None
        slot = int(self._slot_of_pid[pid])
        in_iso = slot < self.iso.used and int(self.iso.pid[slot]) == pid
        return (self.iso if in_iso else self.cross), slot

    def upsert(self, key: Key, inst_id: str, uid: int, isolated: bool, size_lots: int, cost: int,
               margin: int = 0) -> None:
        """Add or replace a position (``margin``: isolated margin, money units); O(1) amortised
        plus, for isolated positions, the trigger index's O(log n). Size 0 removes it."""
        if size_lots == 0:
            self.remove(key)
            return
        i_inst = self.inst_index[inst_id]
        inst = self.instruments[i_inst]
        acct = 0 if isolated else self._account(uid, inst.settle_ccy)
        pool = self.iso if isolated else self.cross
        found = self._locate(key)
        if found is not None and (found[0] is not pool or int(pool.acct[found[1]]) != acct):
            self.remove(key)
            found = None
        if found is None:
            pid = self._pid_free.pop() if self._pid_free else len(self._key_of_pid)
            if pid == len(self._key_of_pid):
                self._key_of_pid.append(key)
                if pid == len(self._slot_of_pid):
                    self._slot_of_pid = np.concatenate([self._slot_of_pid, self._slot_of_pid])
            self._key_of_pid[pid] = key
            self._pid[key] = pid
            slot = pool.add()
            self._slot_of_pid[pid] = slot
            pool.pid[slot] = pid
            if not isolated:
                self._acct_members[acct].add(key)
                self._cross_count[acct] += 1
        else:
            slot = found[1]
        mmr = (find_tier(inst.tiers, size_lots) or inst.tiers[-1]).mmr_ppm
        margin = margin if isolated else 0
        pool.cls[slot], pool.acct[slot] = self._cls[(i_inst, mmr)], acct
        pool.lots[slot], pool.cost[slot], pool.margin[slot] = size_lots, cost, margin
        pool.sk[slot] = float(size_lots * inst.value_k)
        pool.base[slot] = float(margin - cost)
        if isolated and self.triggers is not None:
            trigger = calculate_trigger_ticks(inst, size_lots, cost, margin)
            self.triggers.upsert(key, i_inst, size_lots > 0, trigger)

    def remove(self, key: Key) -> None:
        """Forget a position (flat or gone): O(1) amortised; unknown keys are ignored."""
        found = self._locate(key)
        if found is None:
            return
        pool, slot = found
        pid = self._pid.pop(key)
        if pool is self.cross:
            acct = int(pool.acct[slot])
            self._acct_members[acct].discard(key)
            self._cross_count[acct] -= 1
        elif self.triggers is not None:
            self.triggers.remove(key)
        pool.kill(slot)
        self._key_of_pid[pid] = None
        self._pid_free.append(pid)
        pool.maybe_compact(self._slot_of_pid)

    def __len__(self) -> int:
        return len(self._pid)

    def __contains__(self, key: Key) -> bool:
        return key in self._pid

    def cross_keys(self, uid: int, ccy: str) -> set[Key]:
        """Keys of the cross positions in one cross book."""
        slot = self._acct_slot.get((uid, ccy))
        return set() if slot is None else set(self._acct_members[slot])

    # ---- screening -------------------------------------------------------------------------
    def _mark_array(self, marks: Mapping[str, int] | Sequence[int] | np.ndarray) -> np.ndarray:
        if isinstance(marks, Mapping):
            return np.array([marks[inst.inst_id] for inst in self.instruments], dtype=np.int64)
        return np.asarray(marks, dtype=np.int64)

    def screen(self, mark_ticks_by_instrument: Mapping[str, int] | Sequence[int] | np.ndarray
               ) -> Candidates:
        """Candidates whose float equity ≤ float (MM + fee) plus a slack; never misses one.

        Per position, in float64: ``v = size·k·mark`` (linear) or ``−size·k/mark`` (inverse),
        ``m = |v|·(mmr + liq fee)/1e6`` and ``t = v + base − m − ε(|v| + |base| + m) − A``, with
        ``base = margin − cost`` (isolated) or ``−cost`` (cross), ε = :data:`EPS_REL`,
        A = :data:`ABS_SLACK_UNITS`. An isolated position is a candidate when ``t ≤ 0``; a cross
        book when ``cash − ε|cash| + Σ t ≤ 0`` (``np.bincount`` over book slots, or a fused
        numba loop).

        Bound: every float figure comes from at most ~10 roundings of magnitude ≤ |v| + |base|
        + m (u = 2⁻⁵³ each; ints up to 1e18 are off by up to 64 units once converted), and a
        sum of n terms adds ≤ n·u·Σ|terms|, so the float equity − MM+fee is within
        (10 + n)·u·(Σ(|v| + |base| + m) + |cash|) of the real-valued one; ε ≈ 9.3e-10 covers
        that ~10⁶-fold for n ≤ 1e4 positions per book (still for n ≤ 8e6). The exact formulas
        differ from the real-valued ones by integer rounding only: inverse value floors (≥ −1),
        MM and fee ceil (< +1 each) on a notional that inverse rounds up (< +rate); A = 16 per
        position covers ≤ 5. Hence exact equity ≤ exact MM+fee implies ``t ≤ 0`` (isolated)
        or the book's sum ≤ 0 (cross). Extra candidates cost only an exact re-check. A tier's
        fixed MM deduction (Binance ``cum``) is left out of ``m``: it only lowers the exact
        requirement, so leaving it out adds candidates and never misses one.
        """
        marks = self._mark_array(mark_ticks_by_instrument).astype(np.float64)
        pm = np.where(self._linear, marks, -1.0 / marks)[self._inst_of_cls]
        rate = self._rate_of_cls
        n_acct = len(self._acct_keys)
        iso, cross = self.iso, self.cross
        cash_adj, count = self._cash_adj[:n_acct], self._cross_count[:n_acct]
        if self.backend == "numba":
            n_chunks = numba.get_num_threads() if self.parallel else 1
            if self._work.shape != (n_chunks, n_acct):
                self._work = np.zeros((n_chunks, n_acct))
            iso_kernel, cross_kernel = _KERNELS[self.parallel]
            hits = iso_kernel(iso.cls[:iso.used], iso.sk[:iso.used], iso.base[:iso.used], pm, rate,
                               EPS_REL, ABS_SLACK_UNITS)
            accts = cross_kernel(cross.cls[:cross.used], cross.acct[:cross.used], cross.sk[:cross.used],
                                  cross.base[:cross.used], pm, rate, cash_adj, count, EPS_REL,
                                  ABS_SLACK_UNITS, self._work)
        else:
            t = _terms(iso, pm, rate)
            hits = np.flatnonzero(t <= 0.0)
            acc = np.bincount(cross.acct[:cross.used], weights=_terms(cross, pm, rate), minlength=n_acct)
            accts = np.flatnonzero((acc + cash_adj <= 0.0) & (count > 0))
        keys, pids = self._key_of_pid, iso.pid
        return Candidates([keys[pids[i]] for i in hits.tolist()],
                          [self._acct_keys[a] for a in accts.tolist()])  # type: ignore[misc]

    def confirm(self, candidates: Candidates,
                mark_ticks_by_instrument: Mapping[str, int] | Sequence[int] | np.ndarray) -> Candidates:
        """The candidates that are liquidatable exactly (Python ints through ``backstop.math``):
        isolated ``margin + upl ≤ MM + fee``; cross ``cash + Σ upl ≤ Σ (MM + fee)``."""
        marks = self._mark_array(mark_ticks_by_instrument).tolist()
        isolated = []
        for key in candidates.isolated:
            found = self._locate(key)
            if found is None or found[0] is not self.iso:
                continue
            inst, lots, cost, mark = self._exact(self.iso, found[1], marks)
            equity = int(self.iso.margin[found[1]]) + calculate_upl(inst, lots, cost, mark)
            if is_liquidatable(equity, calculate_mm_plus_fee(inst, lots, mark)):
                isolated.append(key)
        cross = []
        for akey in candidates.cross:
            acct = self._acct_slot.get(akey)
            if acct is None or not self._acct_members[acct]:
                continue
            equity, mmf = int(self._cash[acct]), 0
            for key in self._acct_members[acct]:
                slot = int(self._slot_of_pid[self._pid[key]])
                inst, lots, cost, mark = self._exact(self.cross, slot, marks)
                equity += calculate_upl(inst, lots, cost, mark)
                mmf += calculate_mm_plus_fee(inst, lots, mark)
            if is_liquidatable(equity, mmf):
                cross.append(akey)
        return Candidates(isolated, cross)

    def _exact(self, pool: _Pool, slot: int, marks: list[int]) -> tuple[Instrument, int, int, int]:
        i_inst = int(self._inst_of_cls[pool.cls[slot]])
        return self.instruments[i_inst], int(pool.lots[slot]), int(pool.cost[slot]), marks[i_inst]


_DEAD_BASE = 1e300  # a dead slot's t is ≈ +1e300: never a candidate, adds to the dump book 0


def _terms(pool: _Pool, pm: np.ndarray, rate: np.ndarray) -> np.ndarray:
    cls = pool.cls[:pool.used]
    v = pool.sk[:pool.used] * pm[cls]
    av = np.abs(v)
    base = pool.base[:pool.used]
    m = av * rate[cls]
    return v + base - m - EPS_REL * (av + np.abs(base) + m) - ABS_SLACK_UNITS


def _term(c, sk, b, pm, rate, eps, slack):  # pragma: no cover
    v = sk * pm[c]
    av = abs(v)
    m = av * rate[c]
    return v + b - m - eps * (av + abs(b) + m) - slack


def _iso_kernel(cls, sk, base, pm, rate, eps, slack):  # pragma: no cover
    """Isolated slots with t ≤ 0: a counting pass per block (vectorises), then a collecting
    pass over the blocks that have any."""
    n = cls.shape[0]
    block = 2048
    nb = (n + block - 1) // block
    counts = np.zeros(nb + 1, dtype=np.int64)
    for b in numba.prange(nb):
        k = 0
        for i in range(b * block, min(n, b * block + block)):
            if _term(cls[i], sk[i], base[i], pm, rate, eps, slack) <= 0.0:
                k += 1
        counts[b + 1] = k
    offsets = np.cumsum(counts)
    hits = np.empty(offsets[nb], dtype=np.int64)
    for b in numba.prange(nb):
        j = offsets[b]
        if counts[b + 1]:
            for i in range(b * block, min(n, b * block + block)):
                if _term(cls[i], sk[i], base[i], pm, rate, eps, slack) <= 0.0:
                    hits[j] = i
                    j += 1
    return hits


def _cross_kernel(cls, acct, sk, base, pm, rate, cash_adj, count, eps, slack, work):  # pragma: no cover
    """Books with cash − ε|cash| + Σ t ≤ 0: per-chunk sums into ``work`` (zero on entry and
    on exit: the combining pass clears it), slots sorted by book so the adds walk in order."""
    n = cls.shape[0]
    n_chunks, n_acct = work.shape
    step = (n + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        part = work[c]
        for i in range(c * step, min(n, c * step + step)):
            part[acct[i]] += _term(cls[i], sk[i], base[i], pm, rate, eps, slack)
    flag = np.zeros(n_acct, dtype=np.bool_)
    for a in numba.prange(n_acct):
        s = cash_adj[a]
        for c in range(n_chunks):
            s += work[c, a]
            work[c, a] = 0.0
        flag[a] = (s <= 0.0) & (count[a] > 0)
    return np.flatnonzero(flag)


_KERNELS: dict[bool, tuple] = {}
if numba is not None:
    _term = numba.njit(inline="always")(_term)
    # serial by default: on the 2-core VM an OpenMP launch can cost milliseconds (bench notes)
    _KERNELS[True] = (numba.njit(parallel=True)(_iso_kernel), numba.njit(parallel=True)(_cross_kernel))
    _iso_kernel = numba.njit(cache=True)(_iso_kernel)
    _cross_kernel = numba.njit(cache=True)(_cross_kernel)
    _KERNELS[False] = (_iso_kernel, _cross_kernel)


# ---- isolated trigger prices ---------------------------------------------------------------
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
                                mark_ticks: int) -> bool:
    """The exact per-position check: ``margin + upl ≤ MM + fee`` at a mark."""
    equity = margin + calculate_upl(inst, size_lots, cost, mark_ticks)
    return is_liquidatable(equity, calculate_mm_plus_fee(inst, size_lots, mark_ticks))


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


def calculate_trigger_ticks(inst: Instrument, size_lots: int, cost: int, margin: int) -> int:
    """Exact trigger of an isolated position: for a long the largest mark (ticks) at which it is
    liquidatable (0: never; :data:`INF_TICKS`: always), for a short the smallest (0: always;
    :data:`INF_TICKS`: never). Marks beyond it are never liquidatable.

    Works from ``calculate_liquidation_px``'s real-valued formula ``f``: the exact
    ``g = equity − (MM+fee)`` satisfies ``f − 2 < g ≤ f`` (ceilings; inverse value rewritten
    through ``N = ceil(size·k/P)`` or ``q = floor(size·k/P)``), so only a window of a few
    ticks (or values of N, q) needs the exact check. Tier MMR is fixed by the size. If a
    degenerate instrument makes the window wider than 4096 ticks, the window's far end is
    returned (still never misses, no longer the extreme).
    """
    tier = find_tier(inst.tiers, size_lots) or inst.tiers[-1]
    mmr = tier.mmr_ppm
    r, s_k, b = mmr + inst.liq_fee_ppm, abs(size_lots) * inst.value_k, margin - cost
    long = size_lots > 0

    def liq(px: int) -> bool:
        return is_isolated_liquidatable_at(inst, size_lots, cost, margin, px)

    if tier.mm_deduction_units:  # MM is a max of lines (Binance cum): search the exact check
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
