"""Positions (net mode): one per account, instrument and margin mode.

``size_lots`` is signed (+ long, − short); ``cost`` is the signed cost basis in money units
(see :mod:`backstop.math.values`). An isolated position's margin lives in the ledger under
its ``isolated`` key, not here.
"""

from __future__ import annotations

from backstop.model.enums import MarginMode

PositionKey = tuple[int, str, MarginMode]
"""``(uid, inst_id, mgn_mode)``."""


class Position:
    """Mutable position state; only the engine's settlement code changes it."""

    __slots__ = (
        "cost",
        "fees_paid",
        "funding_paid",
        "inst_id",
        "liq_penalty",
        "mgn_mode",
        "open_ts",
        "realized_pnl",
        "size_lots",
        "uid",
    )

    def __init__(self, uid: int, inst_id: str, mgn_mode: MarginMode) -> None:
        self.uid = uid
        self.inst_id = inst_id
        self.mgn_mode = mgn_mode
        self.size_lots = 0
        self.cost = 0
        self.realized_pnl = 0
        self.fees_paid = 0
        self.funding_paid = 0
        self.liq_penalty = 0
        self.open_ts = 0

    @property
    def key(self) -> PositionKey:
        return (self.uid, self.inst_id, self.mgn_mode)

    @property
    def is_isolated(self) -> bool:
        return self.mgn_mode is MarginMode.ISOLATED

    def as_tuple(self) -> tuple[int, str, str, int, int, int, int, int, int]:
        """Canonical form for the state hash."""
        return (self.uid, self.inst_id, self.mgn_mode.value, self.size_lots, self.cost,
                self.realized_pnl, self.fees_paid, self.funding_paid, self.liq_penalty)
