"""Structure-of-arrays slots for the risk screen: one pool per kind of position.

Units: sizes are signed integer lots, money integer units of 1e-8 of the settlement
currency; ``sk`` and ``base`` are their float64 copies for the screen's kernels.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

DEAD_BASE = 1e300
"""A dead slot's ``base``: its terms are ≈ +1e300, so it is never a candidate, is surely
above any warning threshold, and adds only to the dump book 0."""


class SlotPool:
    """Slots for one kind of position (isolated, or cross).

    A removal kills its slot (float figures set so it can never be a candidate; a cross slot
    moves to the dump account 0) and the next insert reuses it. When dead slots plus slots
    written out of account order pass a quarter of the pool, it is compacted and sorted by
    account in one numpy pass (amortised O(1) per change), so the screen's per-account sums
    walk memory in order.

    Per slot: ``cls`` (instrument × tier class), ``inst`` (instrument index, −1 when dead),
    ``acct`` (cross book slot, 0 for isolated), ``sk`` (size·value_k, float), ``base``
    (margin − cost, float), ``en`` (the entry notional an entry-valued MM is taken on, float;
    0 for a mark-valued instrument), exact ``lots``, ``cost``, ``margin``, ``entry`` (``en``
    exact), ``lever`` (leverage in
    cents, for the ADL indicator), ``pid`` (position id, −1 when dead), ``warn`` (1 when the
    position's warning key is in ``state.warned``; see :mod:`backstop.engine.unit_finder`)
    and ``shown`` (its ADL indicator in ``state.adl_rank``, 0 when absent; see
    :mod:`backstop.engine.adl_indicators`).
    """

    COMPACT_MIN = 4096
    FIELDS: ClassVar[dict[str, type]] = {
        "cls": np.int16, "inst": np.int16, "acct": np.int32, "sk": np.float64, "base": np.float64,
        "en": np.float64, "lots": np.int64, "cost": np.int64, "margin": np.int64, "entry": np.int64,
        "lever": np.int64, "pid": np.int64, "warn": np.int8, "shown": np.int8,
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
        self.sk[slot], self.base[slot], self.acct[slot], self.pid[slot] = 0.0, DEAD_BASE, 0, -1
        self.en[slot] = 0.0
        self.warn[slot] = self.shown[slot] = 0
        self.inst[slot] = -1
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
