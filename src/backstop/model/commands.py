"""Commands: what a caller asks the exchange to do. Frozen; numbers are exact decimals.

Every command carries ``ts``, epoch milliseconds, set by the caller's clock: the engine never
reads the wall clock, so the same commands give the same events.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from backstop.model.enums import MarginMode, OrderType, SelfTradeMode, Side


@dataclass(frozen=True, slots=True)
class Deposit:
    ts: int
    uid: int
    ccy: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Withdraw:
    ts: int
    uid: int
    ccy: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """OKX ``trade/order``: ``sz`` in contracts, ``px`` in quote units (absent for market)."""

    ts: int
    uid: int
    inst_id: str
    side: Side
    ord_type: OrderType
    sz: Decimal
    px: Decimal | None = None
    td_mode: MarginMode = MarginMode.CROSS
    reduce_only: bool = False
    cl_ord_id: str = ""
    stp_mode: SelfTradeMode = SelfTradeMode.CANCEL_MAKER


@dataclass(frozen=True, slots=True)
class CancelOrder:
    ts: int
    uid: int
    inst_id: str
    ord_id: int


@dataclass(frozen=True, slots=True)
class SetLeverage:
    """OKX ``account/set-leverage`` for one instrument and margin mode."""

    ts: int
    uid: int
    inst_id: str
    mgn_mode: MarginMode
    lever: Decimal


@dataclass(frozen=True, slots=True)
class AdjustMargin:
    """OKX ``account/position/margin-balance``: add (amount > 0) or reduce (amount < 0) the
    margin of an isolated position."""

    ts: int
    uid: int
    inst_id: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class SetIndexPrice:
    """A new index price for an instrument family; marks follow it."""

    ts: int
    inst_family: str
    px: Decimal




@dataclass(frozen=True, slots=True)
class SettleFunding:
    """Settle funding now for one instrument, or every instrument when ``inst_id`` is empty."""

    ts: int
    inst_id: str = ""


@dataclass(frozen=True, slots=True)
class InjectInsuranceFund:
    """A platform injection into the fund of ``inst_family`` (``platform_revenue``)."""

    ts: int
    inst_family: str
    amount: Decimal
    inst_type: str = "SWAP"


@dataclass(frozen=True, slots=True)
class CheckRisk:
    """Run the risk screen, liquidations and ADL now (a market's clock tick)."""

    ts: int


Command = (Deposit | Withdraw | PlaceOrder | CancelOrder | SetLeverage | AdjustMargin | SetIndexPrice
           | SettleFunding | InjectInsuranceFund | CheckRisk)
