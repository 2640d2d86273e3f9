"""Vectorised risk screen (float, conservative) with an exact integer confirmation.

Units: prices are integer ticks, sizes signed integer lots, money integer units of 1e-8 of
the settlement currency (:mod:`backstop.numeric`). Floats appear only inside
:meth:`RiskScreen.screen` (kernels in :mod:`backstop.engine.screen_kernels`); the engine acts
only on what an exact check confirms (:meth:`RiskScreen.confirm`, or the engine's queries).

Keeping it up to date (the engine's side, :mod:`backstop.engine.unit_finder`):

- a position's size, cost basis, isolated margin or leverage changed → :meth:`RiskScreen.upsert`;
- a position went flat → :meth:`RiskScreen.remove`;
- an account's cash in a settlement currency changed → :meth:`RiskScreen.set_cash`;
- a mark update → :meth:`RiskScreen.screen`, then exact checks of its candidates. For
  isolated positions alone, ``track_triggers=True`` also keeps an
  :class:`~backstop.engine.trigger_index.IsolatedTriggerIndex`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from backstop.engine.screen_kernels import (
    KERNELS,
    LIQ,
    WARN,
    cross_codes_numpy,
    iso_codes_numpy,
    numba,
)
from backstop.engine.screen_pool import SlotPool
from backstop.engine.trigger_index import IsolatedTriggerIndex, calculate_trigger_ticks
from backstop.math.margin import calculate_mm_plus_fee, find_tier, is_liquidatable
from backstop.math.values import calculate_upl
from backstop.model.instrument import Instrument, MmValuation
from backstop.numeric import PPM

EPS_REL = 2.0**-30
"""Relative slack of the float screen (≈ 9.3e-10), applied to each position's
``|value| + |margin − cost| + MM+fee`` and to ``|cash|``; see :meth:`RiskScreen.screen`."""
ABS_SLACK_UNITS = 16.0
"""Absolute slack per position in money units, for the integer roundings of the exact
formulas (inverse value floors: −1; two ceilings and the inverse notional ceiling in MM+fee:
< 2 + rate ≤ 4)."""

Key = Hashable
AccountKey = tuple[int, str]
"""``(uid, settlement currency)``: one cross book."""


@dataclass(frozen=True, slots=True)
class Candidates:
    """Isolated position keys and cross books ``(uid, ccy)`` at or near margin ratio 100%;
    ``warn_isolated``/``warn_cross``: those whose warning state may differ from their flag
    (:meth:`RiskScreen.set_warned`), changed or near the warning threshold."""

    isolated: list[Key] = field(default_factory=list)
    cross: list[AccountKey] = field(default_factory=list)
    warn_isolated: list[Key] = field(default_factory=list)
    warn_cross: list[AccountKey] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.isolated) + len(self.cross)


class RiskScreen:
    """A float64 structure-of-arrays copy of every open position, for one screen per mark update.

    Two pools (:class:`~backstop.engine.screen_pool.SlotPool`): isolated positions, and cross
    positions with their book's slot (``(uid, ccy)`` → 1, 2, ...). Per slot: a class index
    (instrument × tier, which fixes the rate ``(mmr + liq fee)/1e6``, or for an entry-valued
    instrument the fee on the mark value and the mmr on the entry notional), ``size·value_k``,
    ``margin − cost`` (isolated) or ``−cost`` (cross) and the entry notional (entry-valued
    instruments) as floats, and the exact int64 lots, cost, margin and entry notional. Exact
    figures beyond int64 raise ``OverflowError`` on ``upsert``.
    """

    def __init__(self, instruments: Sequence[Instrument], capacity: int = 1024,
                 backend: str = "auto", track_triggers: bool = True, parallel: bool = False) -> None:
        self.parallel = parallel
        self.instruments = list(instruments)
        self.inst_index = {inst.inst_id: i for i, inst in enumerate(self.instruments)}
        self._linear = np.array([inst.is_linear for inst in self.instruments], dtype=bool)
        self._entry_valued = [inst.mm_valuation is MmValuation.ENTRY for inst in self.instruments]
        # per class (instrument × tier): the MM rate, its lower line (tier 1's where tiers carry
        # a deduction), whether it applies to the entry notional, and the liquidation fee rate
        classes = [(i, t.mmr_ppm, inst.tiers[0].mmr_ppm if t.mm_deduction_units else t.mmr_ppm,
                    self._entry_valued[i], inst.liq_fee_ppm)
                   for i, inst in enumerate(self.instruments) for t in inst.tiers]
        self._cls = {(i, mmr): c for c, (i, mmr, *_) in enumerate(classes)}
        self._inst_of_cls = np.array([c[0] for c in classes], dtype=np.int64)
        self._rate_of_cls = np.array([(fee + (0 if entry else mmr)) / PPM
                                      for _, mmr, _, entry, fee in classes])
        self._rate_lo_of_cls = np.array([(fee + (0 if entry else lo)) / PPM
                                         for _, _, lo, entry, fee in classes])
        self._erate_of_cls = np.array([(mmr if entry else 0) / PPM for _, mmr, _, entry, _ in classes])
        self._erate_lo_of_cls = np.array([(lo if entry else 0) / PPM for _, _, lo, entry, _ in classes])
        self.backend = ("numba" if numba is not None else "numpy") if backend == "auto" else backend
        self.iso, self.cross = SlotPool(max(capacity // 2, 16)), SlotPool(max(capacity // 2, 16))
        self._pid: dict[Key, int] = {}
        self._key_of_pid: list[Key | None] = []
        self._pid_free: list[int] = []
        self._slot_of_pid = np.zeros(max(capacity, 16), dtype=np.int64)
        self._acct_slot: dict[AccountKey, int] = {}
        self._acct_keys: list[AccountKey | None] = [None]
        self._acct_members: list[set[Key]] = [set()]
        self._cash = np.zeros(16, dtype=np.int64)
        self._cash_f = np.zeros(16, dtype=np.float64)
        self._cross_count = np.zeros(16, dtype=np.int64)
        self._book_warn = np.zeros(16, dtype=np.int8)
        self.book_equity = np.zeros(16, dtype=np.float64)
        """Each cross book's float equity (cash + Σ upl) at the last screen's marks."""
        self.book_scale = np.zeros(16, dtype=np.float64)
        """Each book's ``|cash| + Σ(|value| + |cost|)``: its float equity is within
        ``EPS_REL·scale + 2·positions`` money units of the exact one."""
        self._work = np.zeros((0, 0, 4))
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
                for name in ("_cash", "_cash_f", "_cross_count", "_book_warn", "book_equity",
                             "book_scale"):
                    arr = getattr(self, name)
                    setattr(self, name, np.concatenate([arr, np.zeros_like(arr)]))
        return slot

    def book_slot(self, uid: int, ccy: str) -> int | None:
        """The slot of a cross book, or ``None`` if the screen has never seen it."""
        return self._acct_slot.get((uid, ccy))

    def set_cash(self, uid: int, ccy: str, cash: int) -> None:
        """The account's cash in ``ccy`` (money units) changed: O(1)."""
        slot = self._account(uid, ccy)
        self._cash[slot] = cash
        self._cash_f[slot] = float(cash)

    def set_warned(self, key: Key, warned: bool) -> None:
        """Flag an isolated position as warned (its key is in ``state.warned``); unknown or
        cross keys are ignored."""
        found = self._locate(key)
        if found is not None and found[0] is self.iso:
            self.iso.warn[found[1]] = warned

    def set_book_warned(self, uid: int, ccy: str, warned: bool) -> None:
        """Flag a cross book as warned; a book the screen has never seen is ignored."""
        slot = self._acct_slot.get((uid, ccy))
        if slot is not None:
            self._book_warn[slot] = warned

    def _locate(self, key: Key) -> tuple[SlotPool, int] | None:
        pid = self._pid.get(key)
        if pid is None:
            return None
        slot = int(self._slot_of_pid[pid])
        in_iso = slot < self.iso.used and int(self.iso.pid[slot]) == pid
        return (self.iso if in_iso else self.cross), slot

    def upsert(self, key: Key, inst_id: str, uid: int, isolated: bool, size_lots: int, cost: int,
               margin: int = 0, lever_cents: int = 0, shown: int = 0,
               entry_notional: int | None = None) -> None:
        """Add or replace a position (``margin``: isolated margin, money units; ``lever_cents``:
        its leverage, and ``shown``: its ADL indicator now, both for the indicator's refresh;
        ``entry_notional``: what an entry-valued instrument's MM is taken on,
        :func:`backstop.engine.queries.mm_entry_notional`, required for those and ignored for
        others); O(1) amortised plus, with triggers tracked, the index's O(log n). Size 0
        removes it. A new isolated slot starts unflagged."""
        if size_lots == 0:
            self.remove(key)
            return
        i_inst = self.inst_index[inst_id]
        inst = self.instruments[i_inst]
        if not self._entry_valued[i_inst]:
            entry_notional = None
        elif entry_notional is None:
            raise ValueError(f"{inst_id} values MM at entry: upsert needs its entry notional")
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
            pool.warn[slot] = 0
            if not isolated:
                self._acct_members[acct].add(key)
                self._cross_count[acct] += 1
        else:
            slot = found[1]
        mmr = (find_tier(inst.tiers, size_lots) or inst.tiers[-1]).mmr_ppm
        margin = margin if isolated else 0
        pool.cls[slot], pool.acct[slot], pool.lever[slot] = self._cls[(i_inst, mmr)], acct, lever_cents
        pool.shown[slot], pool.inst[slot] = shown, i_inst
        pool.lots[slot], pool.cost[slot], pool.margin[slot] = size_lots, cost, margin
        pool.sk[slot] = float(size_lots * inst.value_k)
        pool.base[slot] = float(margin - cost)
        pool.entry[slot] = entry_notional or 0
        pool.en[slot] = float(entry_notional or 0)
        if isolated and self.triggers is not None:
            trigger = calculate_trigger_ticks(inst, size_lots, cost, margin, entry_notional)
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

    def slots_of_instrument(self, inst_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The live isolated and cross slots holding ``inst_id``: O(positions) in numpy."""
        i = self.inst_index[inst_id]
        return np.flatnonzero(self.iso.inst[:self.iso.used] == i), \
            np.flatnonzero(self.cross.inst[:self.cross.used] == i)

    def cross_count(self, books: np.ndarray) -> np.ndarray:
        """Open positions in each of these cross book slots."""
        return self._cross_count[books]

    def keys_of_slots(self, pool: SlotPool, slots: np.ndarray) -> list[Key]:
        keys = self._key_of_pid
        return [keys[pid] for pid in pool.pid[slots].tolist()]  # type: ignore[misc]

    def key_of_slot(self, pool: SlotPool, slot: int) -> Key:
        return self._key_of_pid[int(pool.pid[slot])]  # type: ignore[return-value]

    def set_book_equity(self, uid: int, ccy: str, equity: int) -> None:
        """A book's exact equity (money units), after a change since the last screen."""
        slot = self._acct_slot.get((uid, ccy))
        if slot is not None:
            self.book_equity[slot], self.book_scale[slot] = float(equity), 0.0

    def cross_keys(self, uid: int, ccy: str) -> set[Key]:
        """Keys of the cross positions in one cross book."""
        slot = self._acct_slot.get((uid, ccy))
        return set() if slot is None else set(self._acct_members[slot])

    # ---- screening -------------------------------------------------------------------------
    def mark_array(self, marks: Mapping[str, int] | Sequence[int] | np.ndarray) -> np.ndarray:
        """Marks in ticks, one per instrument in the screen's order."""
        if isinstance(marks, Mapping):
            return np.array([marks[inst.inst_id] for inst in self.instruments], dtype=np.int64)
        return np.asarray(marks, dtype=np.int64)

    def price_factors(self, marks: Mapping[str, int] | Sequence[int] | np.ndarray) -> np.ndarray:
        """Per class: the float value of one unit of ``size·value_k`` at the mark (``mark`` for
        linear, ``−1/mark`` for inverse)."""
        m = self.mark_array(marks).astype(np.float64)
        return np.where(self._linear, m, -1.0 / m)[self._inst_of_cls]

    def screen(self, mark_ticks_by_instrument: Mapping[str, int] | Sequence[int] | np.ndarray,
               warning_ratio: float = 0.0) -> Candidates:
        """Liquidation candidates whose float equity ≤ float (MM + fee) plus a slack (never
        misses one), and the units whose warning state (equity < ``warning_ratio``·(MM + fee))
        may differ from their flag (never misses a change).

        Per position, in float64: ``v = size·k·mark`` (linear) or ``−size·k/mark`` (inverse),
        ``m = |v|·(mmr + liq fee)/1e6`` (entry-valued: ``|v|·fee/1e6 + entry·mmr/1e6``) and
        ``t = v + base − m − ε(|v| + |base| + m) − A``, with
        ``base = margin − cost`` (isolated) or ``−cost`` (cross), ε = :data:`EPS_REL`,
        A = :data:`ABS_SLACK_UNITS`. An isolated position is a candidate when ``t ≤ 0``; a cross
        book when ``cash − ε|cash| + Σ t ≤ 0`` (summed per book). The warning test is the same
        with ``w·m`` for ``m`` and a two-sided slack (:mod:`backstop.engine.screen_kernels`).

        Bound: every float figure comes from at most ~10 roundings of magnitude ≤ |v| + |base|
        + m (u = 2⁻⁵³ each; ints up to 1e18 are off by up to 64 units once converted), and a
        sum of n terms adds ≤ n·u·Σ|terms|, so the float equity − MM+fee is within
        (10 + n)·u·(Σ(|v| + |base| + m) + |cash|) of the real-valued one; ε ≈ 9.3e-10 covers
        that ~10⁶-fold for n ≤ 1e4 positions per book (still for n ≤ 8e6). The exact formulas
        differ from the real-valued ones by integer rounding only: inverse value floors (≥ −1),
        MM and fee ceil (< +1 each) on a notional that inverse rounds up (< +rate); A = 16 per
        position covers ≤ 5 (times ``w`` for the warning requirement). Hence exact equity ≤
        exact MM+fee implies ``t ≤ 0`` (isolated) or the book's sum ≤ 0 (cross), and a sure
        float answer on the warning test is the exact one. Extra candidates cost only an
        exact re-check. A tier's fixed MM deduction (Binance ``cum``) is left out of ``m``: it
        only lowers the exact requirement, so leaving it out adds liquidation candidates and
        never misses one; the warning test's "surely below" uses tier 1's line instead.
        """
        pm = self.price_factors(mark_ticks_by_instrument)
        rates = (self._rate_of_cls, self._rate_lo_of_cls, self._erate_of_cls, self._erate_lo_of_cls)
        w = float(warning_ratio)
        n_acct = len(self._acct_keys)
        iso, cross = self.iso, self.cross
        cash, count, warn = self._cash_f[:n_acct], self._cross_count[:n_acct], self._book_warn[:n_acct]
        equity, scale = self.book_equity[:n_acct], self.book_scale[:n_acct]
        i_args = (iso.cls[:iso.used], iso.sk[:iso.used], iso.base[:iso.used], iso.en[:iso.used],
                  iso.warn[:iso.used], pm, *rates)
        c_args = (cross.cls[:cross.used], cross.acct[:cross.used], cross.sk[:cross.used],
                  cross.base[:cross.used], cross.en[:cross.used], pm, *rates)
        if self.backend == "numba":
            n_chunks = numba.get_num_threads() if self.parallel else 1
            if self._work.shape != (n_chunks, n_acct, 4):
                self._work = np.zeros((n_chunks, n_acct, 4))
            iso_kernel, cross_kernel = KERNELS[self.parallel]
            hits, codes = iso_kernel(*i_args, w, EPS_REL, ABS_SLACK_UNITS)
            books, book_codes = cross_kernel(*c_args, cash, count, warn, w, EPS_REL, ABS_SLACK_UNITS,
                                             equity, scale, self._work)
        else:
            hits, codes = iso_codes_numpy(*i_args, w, EPS_REL, ABS_SLACK_UNITS)
            books, book_codes = cross_codes_numpy(*c_args, cash, count, warn, w, EPS_REL,
                                                  ABS_SLACK_UNITS, equity, scale)
        keys, pids, akeys = self._key_of_pid, iso.pid, self._acct_keys
        return Candidates(
            [keys[pids[i]] for i in hits[(codes & LIQ) != 0].tolist()],
            [akeys[a] for a in books[(book_codes & LIQ) != 0].tolist()],  # type: ignore[misc]
            [keys[pids[i]] for i in hits[(codes & WARN) != 0].tolist()],
            [akeys[a] for a in books[(book_codes & WARN) != 0].tolist()])  # type: ignore[misc]

    def confirm(self, candidates: Candidates,
                mark_ticks_by_instrument: Mapping[str, int] | Sequence[int] | np.ndarray) -> Candidates:
        """The liquidation candidates that are liquidatable exactly (Python ints through
        ``backstop.math``): isolated ``margin + upl ≤ MM + fee``; cross ``cash + Σ upl ≤
        Σ (MM + fee)``."""
        marks = self.mark_array(mark_ticks_by_instrument).tolist()
        isolated = []
        for key in candidates.isolated:
            found = self._locate(key)
            if found is None or found[0] is not self.iso:
                continue
            inst, lots, cost, mark, entry = self._exact(self.iso, found[1], marks)
            equity = int(self.iso.margin[found[1]]) + calculate_upl(inst, lots, cost, mark)
            if is_liquidatable(equity, calculate_mm_plus_fee(inst, lots, mark, entry)):
                isolated.append(key)
        cross = []
        for akey in candidates.cross:
            acct = self._acct_slot.get(akey)
            if acct is None or not self._acct_members[acct]:
                continue
            equity, mmf = int(self._cash[acct]), 0
            for key in self._acct_members[acct]:
                slot = int(self._slot_of_pid[self._pid[key]])
                inst, lots, cost, mark, entry = self._exact(self.cross, slot, marks)
                equity += calculate_upl(inst, lots, cost, mark)
                mmf += calculate_mm_plus_fee(inst, lots, mark, entry)
            if is_liquidatable(equity, mmf):
                cross.append(akey)
        return Candidates(isolated, cross)

    def _exact(self, pool: SlotPool, slot: int,
               marks: list[int]) -> tuple[Instrument, int, int, int, int | None]:
        """``(instrument, lots, cost, mark, entry notional or None)`` of a slot, exact."""
        i_inst = int(self._inst_of_cls[pool.cls[slot]])
        entry = int(pool.entry[slot]) if self._entry_valued[i_inst] else None
        return (self.instruments[i_inst], int(pool.lots[slot]), int(pool.cost[slot]), marks[i_inst],
                entry)
