"""OKX error codes used as business results (not exceptions)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rejection:
    """An expected business refusal, carrying OKX's code and message."""

    code: str
    msg: str


def reject(code: str, msg: str) -> Rejection:
    return Rejection(code, msg)


BAD_PARAMETER = "51000"
NO_SUCH_INSTRUMENT = "51001"
OVER_TIER_LIMIT = "51004"
INSUFFICIENT_MARGIN = "51008"
BELOW_MIN_SIZE = "51020"
NOT_LOT_MULTIPLE = "51121"
CANCEL_FAILED = "51400"
DUPLICATE_CL_ORD_ID = "51016"
PRICE_OUT_OF_LIMIT = "51006"
FOK_NOT_FILLED = "51017"
REDUCE_ONLY_INVALID = "51169"
INSUFFICIENT_BALANCE = "58350"
NO_SUCH_ACCOUNT = "51603"
ACCOUNT_FROZEN_LIQUIDATION = "50020"
ACCOUNT_FROZEN_ADL = "50017"
SELF_TRADE_CANCELLED = "51034"
