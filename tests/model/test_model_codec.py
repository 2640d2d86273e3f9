"""JSON codec for commands and events: canonical text, exact round trip."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from backstop.model import codec
from backstop.model.commands import (
    AdjustMargin,
    CancelOrder,
    Deposit,
    PlaceOrder,
    SetIndexPrice,
    SetLeverage,
    Withdraw,
)
from backstop.model.enums import MarginMode, OrderType, SelfTradeMode, Side
from backstop.model.events import (
    Filled,
    InsuranceFundChanged,
    OrderCancelled,
    PositionChanged,
    Rejected,
)

OBJECTS = [
    Deposit(1, 7, "USDT", D("100.12345678")),
    Withdraw(2, 7, "BTC", D("0.00000001")),
    PlaceOrder(3, 7, "BTC-USDT-SWAP", Side.SELL, OrderType.POST_ONLY, D("1.25"), D("100000.1"),
               MarginMode.ISOLATED, True, "cid", SelfTradeMode.CANCEL_BOTH),
    PlaceOrder(4, 8, "BTC-USD-SWAP", Side.BUY, OrderType.MARKET, D("3")),   # px None
    CancelOrder(5, 7, "BTC-USDT-SWAP", 42),
    SetLeverage(6, 7, "BTC-USDT-SWAP", MarginMode.CROSS, D("66.66")),
    AdjustMargin(7, 7, "BTC-USDT-SWAP", D("-5.5")),
    SetIndexPrice(8, "BTC-USDT", D("99999.9")),
    Rejected(9, 7, "PlaceOrder", "51008", "Insufficient margin", "cid"),
    Filled(10, 1, "BTC-USDT-SWAP", 1_000_000, 100, "buy", 3, 8, 2, 7, 50_000_000, 20_000_000),
    OrderCancelled(11, 2, 7, "BTC-USDT-SWAP", 10, "self_trade"),
    PositionChanged(12, 7, "BTC-USDT-SWAP", "isolated", -100, -10**11, 10**10, -5),
]


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: type(o).__name__)
def test_round_trip(obj):
    text = codec.dumps(obj)
    back = codec.loads(text)
    assert back == obj
    assert type(back) is type(obj)
    assert codec.dumps(back) == text


def test_canonical_text():
    text = codec.dumps(Deposit(1, 7, "USDT", D("100.5")))
    data = json.loads(text)
    # sorted keys, no spaces, decimals as strings, tagged with the class name
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert {k: v for k, v in data.items() if v != "Deposit"} == {
        "amount": "100.5", "ccy": "USDT", "ts": 1, "uid": 7}
    assert list(data.values()).count("Deposit") == 1
    data = json.loads(codec.dumps(OBJECTS[2]))
    assert data["side"] == "sell" and data["td_mode"] == "isolated" and data["px"] == "100000.1"
    assert list(data) == sorted(data)


def test_enums_and_decimals_come_back_typed():
    back = codec.loads(codec.dumps(OBJECTS[2]))
    assert back.side is Side.SELL and back.ord_type is OrderType.POST_ONLY
    assert back.stp_mode is SelfTradeMode.CANCEL_BOTH and back.td_mode is MarginMode.ISOLATED
    assert isinstance(back.sz, D) and back.sz == D("1.25")
    assert codec.loads(codec.dumps(OBJECTS[3])).px is None


def test_round_trip_of_an_event_with_a_type_field():
    # regression: the class tag once was the key 'type', which InsuranceFundChanged's own 'type'
    # field overwrote
    event = InsuranceFundChanged(13, "SWAP:BTC-USDT", "USDT", "liquidation_balance_deposit", 947, 947,
                                 947, 13, "")
    assert codec.loads(codec.dumps(event)) == event
