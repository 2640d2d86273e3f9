"""Events: immutable facts the engine emits. Money is integer units of 1e-8 of ``ccy`` (or of
the instrument's settlement currency); prices are ticks; sizes are lots."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Deposited:
    ts: int
    uid: int
    ccy: str
    amount: int


@dataclass(frozen=True, slots=True)
class Withdrawn:
    ts: int
    uid: int
    ccy: str
    amount: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """A command refused with OKX's error code; nothing changed."""

    ts: int
    uid: int
    command: str
    code: str
    msg: str
    cl_ord_id: str = ""


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    ts: int
    ord_id: int
    uid: int
    inst_id: str
    side: str
    ord_type: str
    px_ticks: int
    sz_lots: int
    td_mode: str
    reduce_only: bool
    cl_ord_id: str
    category: str = "normal"


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    """An order left the book unfilled or partly filled. ``reason``: ``user``, ``ioc``,
    ``self_trade``, ``liquidation``, ``reduce_only``."""

    ts: int
    ord_id: int
    uid: int
    inst_id: str
    remaining_lots: int
    reason: str


@dataclass(frozen=True, slots=True)
class Filled:
    """One match between a taker and a resting maker. Fees are charged (positive) amounts."""

    ts: int
    trade_id: int
    inst_id: str
    px_ticks: int
    lots: int
    taker_side: str
    taker_ord_id: int
    taker_uid: int
    maker_ord_id: int
    maker_uid: int
    taker_fee: int
    maker_fee: int


@dataclass(frozen=True, slots=True)
class PositionChanged:
    """A position's new size, cost basis and isolated margin after a fill or adjustment."""

    ts: int
    uid: int
    inst_id: str
    mgn_mode: str
    size_lots: int
    cost: int
    margin: int
    realized_pnl: int


@dataclass(frozen=True, slots=True)
class LeverageSet:
    ts: int
    uid: int
    inst_id: str
    mgn_mode: str
    lever_cents: int


@dataclass(frozen=True, slots=True)
class MarginAdjusted:
    ts: int
    uid: int
    inst_id: str
    amount: int


@dataclass(frozen=True, slots=True)
class MarkPriceUpdated:
    ts: int
    inst_id: str
    index_ticks: int
    mark_ticks: int


Event = (Deposited | Withdrawn | Rejected | OrderPlaced | OrderCancelled | Filled
         | PositionChanged | LeverageSet | MarginAdjusted | MarkPriceUpdated)
