"""Small closed vocabularies, spelled as OKX spells them on the wire."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buy, −1 for sell."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    POST_ONLY = "post_only"
    IOC = "ioc"
    FOK = "fok"


class MarginMode(StrEnum):
    CROSS = "cross"
    ISOLATED = "isolated"


class ContractType(StrEnum):
    LINEAR = "linear"
    INVERSE = "inverse"


class SelfTradeMode(StrEnum):
    """OKX ``stpMode``: which side of a would-be self trade is cancelled."""

    CANCEL_MAKER = "cancel_maker"
    CANCEL_TAKER = "cancel_taker"
    CANCEL_BOTH = "cancel_both"


class OrderState(StrEnum):
    LIVE = "live"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"


class OrderCategory(StrEnum):
    NORMAL = "normal"
    PARTIAL_LIQUIDATION = "partial_liquidation"
    FULL_LIQUIDATION = "full_liquidation"
    ADL = "adl"
