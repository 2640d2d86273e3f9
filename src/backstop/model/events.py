"""Events: immutable facts the engine emits. Money is integer units of 1e-8 of ``ccy`` (or of
the instrument's settlement currency); prices are ticks; sizes are lots.

Each event type is a :class:`typing.NamedTuple` made a value by :func:`_event`: immutable (a
tuple), with named fields (``_fields``), and equal only to an event of the same type with equal
fields, never to a plain tuple or another type's event, and unordered, as the frozen
dataclasses they replace were. A tuple is built in a fraction of the time a frozen dataclass
takes (its ``__init__`` sets each field through ``object.__setattr__``), and the order path
builds several events per order (``bench/matching.py``).
"""

from __future__ import annotations

from typing import NamedTuple, TypeVar

_E = TypeVar("_E", bound=tuple)


def _same_type_eq(self: tuple, other: object) -> bool:
    return type(other) is type(self) and tuple.__eq__(self, other)  # type: ignore[operator]


def _same_type_ne(self: tuple, other: object) -> bool:
    return not _same_type_eq(self, other)


def _unordered(self: tuple, other: object) -> bool:
    return NotImplemented


def _event(cls: type[_E]) -> type[_E]:
    """Give a NamedTuple event type value semantics: equality and inequality only within its
    own type, the tuple's hash, and no ordering."""
    cls.__eq__ = _same_type_eq  # type: ignore[method-assign, assignment]
    cls.__ne__ = _same_type_ne  # type: ignore[method-assign, assignment]
    cls.__hash__ = tuple.__hash__  # type: ignore[method-assign, assignment]
    for name in ("__lt__", "__le__", "__gt__", "__ge__"):
        setattr(cls, name, _unordered)
    return cls


@_event
class Deposited(NamedTuple):
    ts: int
    uid: int
    ccy: str
    amount: int


@_event
class Withdrawn(NamedTuple):
    ts: int
    uid: int
    ccy: str
    amount: int


@_event
class Rejected(NamedTuple):
    """A command refused with OKX's error code; nothing changed."""

    ts: int
    uid: int
    command: str
    code: str
    msg: str
    cl_ord_id: str = ""


@_event
class OrderPlaced(NamedTuple):
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


@_event
class OrderCancelled(NamedTuple):
    """An order left the book unfilled or partly filled. ``reason``: ``user``, ``ioc``,
    ``self_trade``, ``liquidation``, ``reduce_only``."""

    ts: int
    ord_id: int
    uid: int
    inst_id: str
    remaining_lots: int
    reason: str


@_event
class Filled(NamedTuple):
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
    category: str = "normal"


@_event
class PositionChanged(NamedTuple):
    """A position's new size, cost basis and isolated margin after a fill or adjustment."""

    ts: int
    uid: int
    inst_id: str
    mgn_mode: str
    size_lots: int
    cost: int
    margin: int
    realized_pnl: int


@_event
class LeverageSet(NamedTuple):
    ts: int
    uid: int
    inst_id: str
    mgn_mode: str
    lever_cents: int


@_event
class MarginAdjusted(NamedTuple):
    ts: int
    uid: int
    inst_id: str
    amount: int


@_event
class MarkPriceUpdated(NamedTuple):
    ts: int
    inst_id: str
    index_ticks: int
    mark_ticks: int


@_event
class LiquidationWarning(NamedTuple):
    """Margin ratio under the warning threshold (OKX ``liquidation-warning``).
    ``inst_id`` is empty for a cross account; ``mgn_ratio`` is a decimal string."""

    ts: int
    uid: int
    inst_id: str
    mgn_mode: str
    ccy: str
    mgn_ratio: str


@_event
class LiquidationStarted(NamedTuple):
    """The engine takes ``lots`` of a position into liquidation; ``category`` is
    ``partial_liquidation`` or ``full_liquidation``; ``route`` is ``book``, ``adl``,
    ``vault``."""

    ts: int
    uid: int
    inst_id: str
    mgn_mode: str
    lots: int
    bankruptcy_ticks: int
    mark_ticks: int
    category: str
    route: str


@_event
class LiquidationSettled(NamedTuple):
    """The slice's money after it closed: ``to_fund`` (surplus + fee, ≥ 0) or ``from_fund``
    (bankruptcy loss paid, ≥ 0); ``socialized`` the loss spread when the fund ran short."""

    ts: int
    uid: int
    inst_id: str
    mgn_mode: str
    lots: int
    fee: int
    to_fund: int
    from_fund: int
    socialized: int


@_event
class InsuranceFundChanged(NamedTuple):
    """A fund movement (OKX ``public/insurance-fund`` ``details[]`` row)."""

    ts: int
    fund_id: str
    ccy: str
    type: str
    amt: int
    balance: int
    max_bal: int
    max_bal_ts: int
    adl_type: str


@_event
class AdlStateChanged(NamedTuple):
    """``adl_type``: ``rate_adl_start``, ``bal_adl_start``, ``pos_adl_start`` or ``adl_end``."""

    ts: int
    fund_id: str
    adl_type: str
    balance: int


@_event
class AutoDeleveraged(NamedTuple):
    """``uid``'s position was closed by ``lots`` at ``px_ticks`` against the bankrupt
    ``liquidated_uid``; ``upl_taken`` is the profit it gave up against closing at the mark
    (negative when the ADL price was better for it than the mark)."""

    ts: int
    uid: int
    inst_id: str
    mgn_mode: str
    lots: int
    px_ticks: int
    liquidated_uid: int
    upl_taken: int


@_event
class ProfitHaircut(NamedTuple):
    """ADL by profit haircut (``adl.haircut``): ``amount`` of the ``profit`` (upl at the mark,
    the most that could be taken) of ``uid``'s position went to cover the bankrupt
    ``liquidated_uid``; the position stays open, its cost basis raised by ``amount``."""

    ts: int
    uid: int
    inst_id: str
    mgn_mode: str
    amount: int
    profit: int
    liquidated_uid: int


@_event
class DeficitCovered(NamedTuple):
    """A hole a command left in an account closed before it returned: ``settled_from_upl``
    of negative cross cash paid from the account's own unrealized profit, then
    ``from_fund`` paid by the insurance fund and ``socialized`` spread over the
    instrument's open positions. ``inst_id`` is empty for a cross deficit; money in 1e-8
    units of ``ccy``."""

    ts: int
    uid: int
    inst_id: str
    mgn_mode: str
    ccy: str
    settled_from_upl: int
    from_fund: int
    socialized: int


@_event
class FundingPaid(NamedTuple):
    """``amount`` > 0 received, < 0 paid, at ``rate_e8`` (1e-8 units)."""

    ts: int
    uid: int
    inst_id: str
    mgn_mode: str
    amount: int
    rate_e8: int


@_event
class FundingRateSet(NamedTuple):
    ts: int
    inst_id: str
    rate_e8: int


Event = (Deposited | Withdrawn | Rejected | OrderPlaced | OrderCancelled | Filled
         | PositionChanged | LeverageSet | MarginAdjusted | MarkPriceUpdated | LiquidationWarning
         | LiquidationStarted | LiquidationSettled | InsuranceFundChanged | AdlStateChanged
         | AutoDeleveraged | ProfitHaircut | DeficitCovered | FundingPaid | FundingRateSet)
