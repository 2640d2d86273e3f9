"""Order, cancel and account commands refused with OKX's codes; a refusal changes nothing."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from backstop.engine.exchange import Exchange
from backstop.model.catalogue import catalogue_from_specs
from backstop.model.commands import CancelOrder, Deposit, PlaceOrder, SetIndexPrice, SetLeverage
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import OrderPlaced, Rejected

BTC = "BTC-USDT-SWAP"
CROSS, ISO = MarginMode.CROSS, MarginMode.ISOLATED


def order(uid, side, sz, px=None, ord_type=OrderType.LIMIT, inst=BTC, **kw):
    return PlaceOrder(0, uid, inst, side, ord_type, D(sz), None if px is None else D(px), **kw)


@pytest.fixture
def ex(catalogue):
    ex = Exchange(catalogue, check_invariants=True)
    ex.execute(SetIndexPrice(0, "BTC-USDT", D("100000")))
    ex.execute(Deposit(0, 1, "USDT", D("100000")))
    ex.execute(Deposit(0, 2, "USDT", D("100000")))
    return ex


def _rejected(ex, cmd, code):
    """The command is refused with ``code`` and leaves the state unchanged."""
    before = ex.state_hash()
    events = ex.execute(cmd)
    assert len(events) == 1 and isinstance(events[0], Rejected), events
    assert events[0].code == code, events[0]
    assert events[0].command == type(cmd).__name__
    assert ex.state_hash() == before
    return events[0]


def test_unknown_instrument_51001(ex):
    _rejected(ex, order(1, Side.BUY, "1", "100000", inst="NOPE-USDT-SWAP"), "51001")


@pytest.mark.parametrize(("sz", "px", "ord_type"), [
    ("0", "100000", OrderType.LIMIT),          # size must be positive
    ("-1", "100000", OrderType.LIMIT),         # negative size
    ("1", None, OrderType.LIMIT),              # a limit order needs a price
    ("1", "0", OrderType.LIMIT),               # price must be positive
    ("1", "-100", OrderType.IOC),
    ("1", "100000.05", OrderType.LIMIT),       # off the 0.1 tick grid
    ("1", "NaN", OrderType.POST_ONLY),         # not finite
])
def test_bad_size_or_price_51000(ex, sz, px, ord_type):
    _rejected(ex, order(1, Side.BUY, sz, px, ord_type), "51000")


def test_not_a_lot_multiple_51121(ex):
    # BTC-USDT-SWAP lotSz is 0.01 contract
    rej = _rejected(ex, order(1, Side.BUY, "0.005", "100000"), "51121")
    assert "0.01" in rej.msg
    _rejected(ex, order(1, Side.BUY, "1.001", "100000"), "51121")


def test_below_min_size_51020():
    spec = {
        "instId": "TEST-USDT-SWAP", "instFamily": "TEST-USDT", "ctType": "linear", "ctVal": "1",
        "ctValCcy": "TEST", "settleCcy": "USDT", "tickSz": "0.01", "lotSz": "1", "minSz": "5",
        "lever": "20", "indexPx": "10",
        "tiers": [{"tier": 1, "minSz": "0", "maxSz": "100000", "mmr": "0.01", "imr": "0.05",
                   "maxLever": "20"}],
    }
    ex = Exchange(catalogue_from_specs([spec]), check_invariants=True)
    ex.execute(Deposit(0, 1, "USDT", D("1000")))
    _rejected(ex, order(1, Side.BUY, "4", "10", inst="TEST-USDT-SWAP"), "51020")   # 4 < minSz 5
    events = ex.execute(order(1, Side.BUY, "5", "10", inst="TEST-USDT-SWAP"))      # exactly minSz
    assert isinstance(events[0], OrderPlaced)


def test_insufficient_margin_51008(ex):
    # a resting order freezes its IM plus the maker fee it pays when filled (0.02%).
    # With $100,000 at 10x, each contract at 100,000 ($1,000) needs $100 + $0.20:
    # 998 contracts need $99,999.60 — accepted, all of it frozen; 999 need $100,099.80: refused
    _rejected(ex, order(1, Side.BUY, "999", "100000"), "51008")
    assert isinstance(ex.execute(order(1, Side.BUY, "998", "100000"))[0], OrderPlaced)
    assert ex.state.reserved(1, "USDT") == 99_999_60 * 1_000_000
    # $0.40 left is not enough for one more lot at 90,000 ($9 IM + fee)
    _rejected(ex, order(1, Side.BUY, "0.01", "90000"), "51008")
    ex.execute(Deposit(0, 3, "USDT", D("50")))
    # 1 contract = $1,000 at 10x needs $100 IM; $50 is not enough
    _rejected(ex, order(3, Side.BUY, "1", "100000"), "51008")


def test_max_size_passes_and_one_more_lot_fails(ex):
    # account 3: $1,000. A lot (0.0001 BTC = $10 at 100,000) costs $1 IM + $0.005 taker fee,
    # so 1,000/1.005 -> 995 lots = 9.95 contracts is the most a market buy can take
    ex.execute(Deposit(0, 3, "USDT", D("1000")))
    ex.execute(order(1, Side.SELL, "20", "100000"))
    _rejected(ex, order(3, Side.BUY, "9.96", ord_type=OrderType.MARKET), "51008")
    events = ex.execute(order(3, Side.BUY, "9.95", ord_type=OrderType.MARKET))
    assert [type(e).__name__ for e in events] == ["OrderPlaced", "Filled", "PositionChanged",
                                                   "PositionChanged"]
    assert events[1].lots == 995


def test_leverage_over_the_tier_51004(ex):
    # BTC-USDT tier 1 (<= 1,000 contracts) allows 100x, tier 2 (<= 2,000) allows 80x
    ex.execute(Deposit(0, 1, "USDT", D("10000000")))
    assert ex.execute(SetLeverage(0, 1, BTC, CROSS, D("100")))[0].lever_cents == 10_000
    # 1,000.01 contracts at 100x would reach tier 2
    _rejected(ex, order(1, Side.BUY, "1000.01", "90000"), "51004")
    # exactly 1,000 contracts is tier 1: accepted
    assert isinstance(ex.execute(order(1, Side.BUY, "1000", "90000"))[0], OrderPlaced)
    # above the last tier (18,000 contracts) no leverage is allowed at all
    ex.execute(SetLeverage(0, 2, BTC, CROSS, D("1")))
    _rejected(ex, order(2, Side.BUY, "18000.01", "90000"), "51004")


def test_cancel_unknown_or_foreign_order_51400(ex):
    placed = ex.execute(order(1, Side.BUY, "1", "99000"))[0]
    _rejected(ex, CancelOrder(0, 1, BTC, 424242), "51400")               # never existed
    _rejected(ex, CancelOrder(0, 2, BTC, placed.ord_id), "51400")        # someone else's
    _rejected(ex, CancelOrder(0, 1, "ETH-USDT-SWAP", placed.ord_id), "51400")   # wrong instrument
    assert ex.execute(CancelOrder(0, 1, BTC, placed.ord_id))[0].reason == "user"
    _rejected(ex, CancelOrder(0, 1, BTC, placed.ord_id), "51400")        # already cancelled


def test_cancel_of_a_filled_order_51400(ex):
    placed = ex.execute(order(1, Side.SELL, "1", "100000"))[0]
    ex.execute(order(2, Side.BUY, "1", ord_type=OrderType.MARKET))
    _rejected(ex, CancelOrder(0, 1, BTC, placed.ord_id), "51400")


def test_reduce_only_violations_51169(ex):
    # no position: nothing to reduce
    _rejected(ex, order(1, Side.SELL, "1", "100000", reduce_only=True), "51169")
    ex.execute(order(1, Side.SELL, "2", "100000"))
    ex.execute(order(2, Side.BUY, "2", ord_type=OrderType.MARKET))          # account 2 long 2
    # same direction as the position
    _rejected(ex, order(2, Side.BUY, "1", "99000", reduce_only=True), "51169")
    # larger than the position
    _rejected(ex, order(2, Side.SELL, "2.01", "101000", reduce_only=True), "51169")
    # the isolated book has no position even though the cross one has
    _rejected(ex, order(2, Side.SELL, "1", "101000", reduce_only=True, td_mode=ISO), "51169")
    # a valid reduce-only order is placed
    events = ex.execute(order(2, Side.SELL, "2", "101000", reduce_only=True))
    assert isinstance(events[0], OrderPlaced) and events[0].reduce_only


def test_closing_orders_are_never_refused_for_margin(ex):
    # account 3: $101 buys 1 contract at 100,000 ($100 IM at 10x + $0.50 taker fee)
    ex.execute(Deposit(0, 3, "USDT", D("101")))
    ex.execute(order(1, Side.SELL, "1", "100000"))
    ex.execute(order(3, Side.BUY, "1", ord_type=OrderType.MARKET))
    # mark −0.5%: upl −$5, IM $99.50; available = 100.50 − 5 − 99.50 = −$4
    ex.execute(SetIndexPrice(0, "BTC-USDT", D("99500")))
    ex.execute(order(1, Side.BUY, "2", "99500"))
    _rejected(ex, order(3, Side.SELL, "1.01", ord_type=OrderType.MARKET), "51008")  # opens 0.01
    events = ex.execute(order(3, Side.SELL, "1", ord_type=OrderType.MARKET))          # closes only
    assert events[1].lots == 100
    assert ex.state.existing_position(3, BTC, CROSS) is None


@pytest.mark.parametrize(("lever", "code"), [
    ("0.5", "51000"),      # below 1x
    ("101", "51000"),      # above BTC-USDT-SWAP's max 100x
    ("10.001", "51000"),   # more than 2 decimals
])
def test_bad_leverage(ex, lever, code):
    _rejected(ex, SetLeverage(0, 1, BTC, CROSS, D(lever)), code)


def test_leverage_on_unknown_instrument(ex):
    _rejected(ex, SetLeverage(0, 1, "NOPE-USDT-SWAP", CROSS, D("10")), "51001")


def test_set_leverage_over_the_tier_of_resting_orders_51004(ex):
    ex.execute(Deposit(0, 1, "USDT", D("1000000")))
    # a resting buy of 1,500 contracts (tier 2 exposure) at the default 10x
    ex.execute(order(1, Side.BUY, "1500", "90000"))
    _rejected(ex, SetLeverage(0, 1, BTC, CROSS, D("100")), "51004")    # tier 2 allows 80x
    assert ex.execute(SetLeverage(0, 1, BTC, CROSS, D("80")))[0].lever_cents == 8000


def test_deposit_and_withdraw_amounts_51000(ex):
    for amount in ("0", "-1", "0.000000001"):   # zero, negative, 9 decimals
        _rejected(ex, Deposit(0, 1, "USDT", D(amount)), "51000")
    _rejected(ex, SetIndexPrice(0, "NOPE-USDT", D("1")), "51001")
    _rejected(ex, SetIndexPrice(0, "BTC-USDT", D("0")), "51000")
    _rejected(ex, SetIndexPrice(0, "BTC-USDT", D("0.04")), "51000")    # rounds to 0 ticks
