"""Positions (net mode): one per account, instrument and margin mode.

``size_lots`` is signed (+ long, − short); ``cost`` is the signed cost basis in money units
(see :mod:`backstop.math.values`). An isolated position's margin lives in the ledger under
its ``isolated`` key, not here.
"""

from __future__ import annotations

from math import gcd

from backstop.model.enums import MarginMode

PositionKey = tuple[int, str, MarginMode]
"""``(uid, inst_id, mgn_mode)``."""


class Position:
    """Mutable position state. Its fields change only through the ``apply_*`` methods below,
    which the engine's settlement, funding, liquidation and loss-sharing code call."""

    __slots__ = (
        "cost",
        "entry_den",
        "entry_value",
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
        # The exact (unrounded) value of the open fills, entry_value / entry_den money units,
        # for ``avgPx`` only: ``cost`` floors each inverse fill value to 1e-8, this keeps the
        # fill prices exact. Two ints (kept reduced), not a Fraction: fills are the hot path.
        self.entry_value = 0
        self.entry_den = 1
        self.realized_pnl = 0
        self.fees_paid = 0
        self.funding_paid = 0
        self.liq_penalty = 0
        self.open_ts = 0

    def apply_open(self, signed_lots: int, signed_value: int, ts: int,
                   exact: tuple[int, int] | None = None) -> None:
        """Add exposure in the position's direction (or from flat) at ``signed_value``;
        ``exact`` is the same fill's unrounded value as ``(numerator, denominator > 0)``
        (default: ``signed_value``, exact already)."""
        if self.size_lots == 0:
            self.open_ts = ts
        self.size_lots += signed_lots
        self.cost += signed_value
        num, den = (signed_value, 1) if exact is None else exact
        if den == self.entry_den:
            self._set_entry(self.entry_value + num, den)
        else:
            self._set_entry(self.entry_value * den + num * self.entry_den, self.entry_den * den)

    def apply_close(self, closed_lots: int, removed_cost: int, realized: int) -> None:
        """Take ``closed_lots`` (> 0) off the position with their share of the cost basis;
        the exact entry value keeps its proportion, so the exact average price is unchanged."""
        size = abs(self.size_lots)
        self.cost -= removed_cost
        self.size_lots += closed_lots if self.size_lots < 0 else -closed_lots
        self._set_entry(self.entry_value * (size - closed_lots), self.entry_den * size)
        self.realized_pnl += realized

    def _set_entry(self, num: int, den: int) -> None:
        """The exact entry value ``num / den``, reduced (a flat position's is 0 / 1)."""
        common = gcd(num, den)
        self.entry_value, self.entry_den = (num // common, den // common) if num else (0, 1)

    def apply_fee(self, fee: int) -> None:
        """A trading fee paid (≥ 0)."""
        self.fees_paid += fee

    def apply_funding(self, received: int) -> None:
        """Funding received (> 0) or paid (< 0)."""
        self.funding_paid -= received

    def apply_liquidation_penalty(self, fee: int) -> None:
        """OKX ``liqPenalty``: the liquidation fee taken (≥ 0), kept as a negative figure."""
        self.liq_penalty -= fee

    def apply_cost_shift(self, amount: int) -> None:
        """Raise the cost basis by ``amount``: the position's upl falls by exactly that much.
        Used for a socialized-loss share and for an ADL profit haircut."""
        self.cost += amount

    def apply_settle_profit(self, amount: int) -> None:
        """Realize ``amount`` (> 0) of the position's unrealized profit into cash without
        closing it: the cost basis rises by the amount, so its upl falls by exactly that."""
        self.cost += amount
        self.realized_pnl += amount

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        """Unpickle (snapshots); a position pickled before ``entry_value`` existed takes its
        cost basis as its entry value (its ``avgPx`` is then the cost-basis average)."""
        slots = state[1] if isinstance(state, tuple) else state
        for name, value in slots.items():
            setattr(self, name, value)
        if "entry_value" not in slots:
            self.entry_value, self.entry_den = self.cost, 1

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
