"""Contract values: notional, fill value, unrealized PnL, cost basis (money units of 1e-8).

BTC-USDT-SWAP (linear): 1 contract = 0.01 BTC = 100 lots; 100,000.0 USD = 1,000,000 ticks;
value = lots·ticks·1000 units. BTC-USD-SWAP (inverse): 1 contract = 100 USD = 10 lots;
value = lots·1e10/ticks units of BTC.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from backstop.math.values import (
    calculate_avg_px_ticks_num_den,
    calculate_fill_value,
    calculate_notional,
    calculate_removed_cost,
    calculate_upl,
    calculate_value_at,
)

UNIT = 100_000_000  # 1 USDT or 1 BTC in money units


@pytest.fixture(scope="module")
def lin(catalogue):
    return catalogue.get("BTC-USDT-SWAP")


@pytest.fixture(scope="module")
def inv(catalogue):
    return catalogue.get("BTC-USD-SWAP")


def test_value_k_of_the_default_btc_contracts(lin, inv):
    # linear: 0.01 BTC/contract · 0.01 contract/lot · 0.1 USD/tick = 1e-5 USDT = 1000 units
    assert lin.value_k == 1000
    # inverse: 100 USD/contract · 0.1 contract/lot / (0.1 USD/tick) = 100 -> 100 / 1e-8 = 1e10
    assert inv.value_k == 10**10


LINEAR_NOTIONAL = [
    # lots, ticks, expected units
    (1000, 1_000_000, 10_000 * UNIT),      # $10,000: 10 contracts (0.1 BTC) at 100,000
    (-1000, 1_000_000, 10_000 * UNIT),     # short of the same size: notional is absolute
    (1, 1_000_001, 1_000_001_000),         # one lot (0.0001 BTC) at 100,000.1 = 10.00001 USDT
    (100_000, 950_000, 950_000 * UNIT),    # 1000 contracts (10 BTC) at 95,000 = 950,000 USDT
    (0, 1_000_000, 0),                     # flat
]


@pytest.mark.parametrize(("lots", "ticks", "expected"), LINEAR_NOTIONAL)
def test_linear_notional(lin, lots, ticks, expected):
    assert calculate_notional(lin, lots, ticks) == expected


INVERSE_NOTIONAL = [
    # lots, ticks, expected units of BTC
    (1000, 1_000_000, 10_000_000),     # $10,000 (100 contracts) at 100,000 = 0.1 BTC exactly
    (-1000, 1_000_000, 10_000_000),    # short: absolute
    (1000, 999_999, 10_000_011),       # at 99,999.9: 1e13/999,999 = 10,000,010.00001 -> up
    (1, 3, 3_333_333_334),             # $10 at 0.3: 33.333... BTC, rounded up (never understated)
    (10, 1_250_000, 80_000),           # $100 at 125,000 = 0.0008 BTC exactly
]


@pytest.mark.parametrize(("lots", "ticks", "expected"), INVERSE_NOTIONAL)
def test_inverse_notional_rounds_up(inv, lots, ticks, expected):
    assert calculate_notional(inv, lots, ticks) == expected
    exact = Fraction(abs(lots) * 10**10, ticks)
    assert exact <= expected < exact + 1


FILL_VALUE = [
    # inst, signed lots, ticks, buyer/seller value
    ("lin", 1000, 1_000_000, 10_000 * UNIT),      # buy $10,000 at 100,000: +10,000 USDT
    ("lin", -1000, 1_000_000, -10_000 * UNIT),    # sell it: −10,000 USDT
    ("inv", 1000, 1_000_000, -10_000_000),        # inverse buy $10,000: −0.1 BTC
    ("inv", -1000, 1_000_000, 10_000_000),        # inverse sell: +0.1 BTC
    ("inv", 1000, 999_999, -10_000_011),          # −10,000,010.00001 rounded toward −inf
    ("inv", -1000, 999_999, 10_000_010),          # +10,000,010.00001 rounded toward −inf
]


@pytest.mark.parametrize(("which", "lots", "ticks", "expected"), FILL_VALUE)
def test_fill_value_sign_and_rounding(lin, inv, which, lots, ticks, expected):
    inst = lin if which == "lin" else inv
    assert calculate_fill_value(inst, lots, ticks) == expected
    assert calculate_value_at(inst, lots, ticks) == expected


@pytest.mark.parametrize("ticks", [1, 7, 999_999, 1_000_000, 1_234_567])
def test_inverse_fill_value_is_shared_so_the_pair_sums_to_zero(inv, ticks):
    # the engine gives the buyer +v and the seller −v of ONE rounded figure
    v = calculate_fill_value(inv, 1000, ticks)
    assert v == -((1000 * 10**10 + ticks - 1) // ticks)  # −ceil(lots·k/ticks) = floor(−lots·k/ticks)
    assert v + (-v) == 0


UPL = [
    # inst, lots, entry ticks, mark ticks, expected upl units
    ("lin", 1000, 1_000_000, 950_000, -500 * UNIT),    # $10,000 long, mark −5%: −$500
    ("lin", -1000, 1_000_000, 950_000, 500 * UNIT),    # $10,000 short, mark −5%: +$500
    ("lin", 1000, 1_000_000, 1_100_000, 1000 * UNIT),  # $10,000 long, mark +10%: +$1,000
    ("lin", -1000, 1_000_000, 1_100_000, -1000 * UNIT),  # $10,000 short, mark +10%: −$1,000
    # $10,000 inverse long at 100,000, mark 95,000: 10,000·(1/100,000 − 1/95,000)
    # = −0.0052631578... BTC -> −526,315.79 units, floored against the holder: −526,316
    ("inv", 1000, 1_000_000, 950_000, -526_316),
    # the short side of it: +526,315.79 floored against the holder: +526,315
    ("inv", -1000, 1_000_000, 950_000, 526_315),
    # $10,000 inverse long, mark 125,000: 10,000·(1/100,000 − 1/125,000) = +0.02 BTC exactly
    ("inv", 1000, 1_000_000, 1_250_000, 2_000_000),
    ("inv", -1000, 1_000_000, 1_250_000, -2_000_000),  # the short loses the same 0.02 BTC
]


@pytest.mark.parametrize(("which", "lots", "entry", "mark", "expected"), UPL)
def test_upl_worked_examples(lin, inv, which, lots, entry, mark, expected):
    inst = lin if which == "lin" else inv
    cost = calculate_fill_value(inst, lots, entry)
    assert calculate_upl(inst, lots, cost, mark) == expected


def test_upl_of_a_flat_position_is_zero_whatever_the_cost(lin):
    assert calculate_upl(lin, 0, 12345, 1_000_000) == 0


def test_inverse_upl_never_reads_higher_than_exact(inv):
    # exact upl = −lots·k/mark − cost; the engine floors it (against the holder)
    for lots, entry, mark in [(1000, 1_000_000, 950_001), (-777, 1_000_003, 1_049_999), (3, 7, 11)]:
        cost = calculate_fill_value(inv, lots, entry)
        exact = Fraction(-lots * inv.value_k, mark) - cost
        got = calculate_upl(inv, lots, cost, mark)
        assert exact - 1 < got <= exact


REMOVED = [
    # cost, size, closed, expected share of the cost removed
    (400, 4, 2, 200),      # half of an even basis
    (1001, 3, 1, 333),     # 1001/3 = 333.67 -> floor 333 (remainder stays in the basis)
    (-1001, 3, 1, -334),   # negative basis (inverse long): floor toward −inf
    (1001, 3, 3, 1001),    # full close empties the basis exactly
    (-1001, -3, 3, -1001),
]


@pytest.mark.parametrize(("cost", "size", "closed", "expected"), REMOVED)
def test_removed_cost(cost, size, closed, expected):
    assert calculate_removed_cost(cost, size, closed) == expected


def test_removed_cost_in_steps_empties_the_basis_exactly():
    cost, size = 1_000_003, 7
    for step in (2, 2, 3):
        removed = calculate_removed_cost(cost, size, step)
        cost -= removed
        size -= step
    assert (cost, size) == (0, 0)


def test_average_price_as_an_exact_fraction(lin, inv):
    # linear: 3 contracts at 100,000 + 1 at 104,000 -> avg 101,000 = 1,010,000 ticks
    cost = calculate_fill_value(lin, 300, 1_000_000) + calculate_fill_value(lin, 100, 1_040_000)
    num, den = calculate_avg_px_ticks_num_den(lin, 400, cost)
    assert Fraction(num, den) == 1_010_000
    # inverse: $10,000 bought at 125,000: cost −0.08 BTC -> avg = 1000·1e10/8e6 = 1,250,000 ticks
    cost = calculate_fill_value(inv, 1000, 1_250_000)
    assert cost == -8_000_000
    num, den = calculate_avg_px_ticks_num_den(inv, 1000, cost)
    assert Fraction(num, den) == 1_250_000
