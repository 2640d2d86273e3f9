"""The default catalogue (seed coins, OKX specs and ladders) and ``load_catalogue`` from TOML."""

from __future__ import annotations

import itertools
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

import pytest

from backstop.model.catalogue import load_catalogue
from backstop.model.enums import ContractType

D = Decimal

# the seed page's ticker (shared/reference/seed-market.md), non-stable coins only
SEED = {
    "BTC": "106754.6083", "ETH": "2625.8249", "XRP": "2.1891", "BNB": "654.5220",
    "SOL": "156.9428", "DOGE": "0.1780", "TRX": "0.2706", "ADA": "0.6470", "HYPE": "44.6467",
    "SUI": "3.1128", "BCH": "455.7646", "LINK": "13.6858", "AVAX": "19.7433", "XLM": "0.2616",
    "TON": "3.0222", "SHIB": "0.00001220", "HBAR": "0.1580", "LTC": "87.4964", "DOT": "3.8958",
    "XMR": "317.2263", "PEPE": "0.00001140", "UNI": "7.6065", "AAVE": "289.6343",
}
LEFT_OUT = ["USDT", "USDC", "USDE", "DAI", "LEO", "BGB", "PI"]


def _cut(imr: Decimal) -> Decimal:
    return (1 / imr).quantize(D("0.01"), rounding=ROUND_DOWN)


def test_default_lists_the_23_seed_coins_and_two_inverse_swaps(catalogue):
    ids = [i.inst_id for i in catalogue]
    assert len(SEED) == 23
    assert sorted(ids) == sorted([f"{c}-USDT-SWAP" for c in SEED] + ["BTC-USD-SWAP", "ETH-USD-SWAP"])
    assert len(ids) == len(set(ids)) == 25
    for coin in LEFT_OUT:
        assert not any(i.upper().startswith(f"{coin}-") for i in ids), coin
    for coin in SEED:
        inst = catalogue.get(f"{coin}-USDT-SWAP")
        assert inst.ct_type is ContractType.LINEAR
        assert (inst.settle_ccy, inst.ct_val_ccy, inst.inst_family) == ("USDT", coin, f"{coin}-USDT")
    for coin in ("BTC", "ETH"):
        inst = catalogue.get(f"{coin}-USD-SWAP")
        assert inst.ct_type is ContractType.INVERSE
        assert (inst.settle_ccy, inst.ct_val_ccy, inst.inst_family) == (coin, "USD", f"{coin}-USD")


@pytest.mark.parametrize("coin", sorted(SEED))
def test_index_price_is_the_seed_price_rounded_to_the_tick(catalogue, coin):
    inst = catalogue.get(f"{coin}-USDT-SWAP")
    expected = D(SEED[coin]).quantize(inst.tick_sz, rounding=ROUND_HALF_EVEN)
    assert inst.index_px == expected
    assert inst.px_to_ticks(inst.index_px) * inst.tick_sz == expected   # on the tick grid


@pytest.mark.parametrize(("inst_id", "px"), [
    ("BTC-USDT-SWAP", "106754.6"),   # tick 0.1: .6083 -> .6
    ("ETH-USDT-SWAP", "2625.82"),    # tick 0.01: .8249 -> .82
    ("LTC-USDT-SWAP", "87.50"),      # tick 0.01: .4964 -> .50
    ("DOT-USDT-SWAP", "3.896"),      # tick 0.001: 3.8958 -> 3.896
    ("BTC-USD-SWAP", "106754.6"),
    ("ETH-USD-SWAP", "2625.82"),
])
def test_index_price_worked_roundings(catalogue, inst_id, px):
    assert catalogue.get(inst_id).index_px == D(px)


def test_recorded_contract_specs(catalogue):
    btc, eth = catalogue.get("BTC-USDT-SWAP"), catalogue.get("ETH-USDT-SWAP")
    assert (btc.ct_val, btc.tick_sz, btc.lot_sz, btc.min_sz, btc.max_lever) == (
        D("0.01"), D("0.1"), D("0.01"), D("0.01"), D("100"))
    assert (eth.ct_val, eth.tick_sz, eth.lot_sz) == (D("0.1"), D("0.01"), D("0.01"))
    t1 = btc.tiers[0]
    assert (t1.max_sz, t1.mmr, t1.imr, t1.max_lever) == (D("1000"), D("0.004"), D("0.01"), D("100"))
    t1 = eth.tiers[0]
    assert (t1.max_sz, t1.mmr, t1.imr) == (D("5000"), D("0.004"), D("0.01"))
    inv = catalogue.get("BTC-USD-SWAP")
    assert (inv.ct_val, inv.tick_sz, inv.lot_sz, inv.min_sz) == (D("100"), D("0.1"), D("0.1"), D("0.1"))
    assert not inv.tiers_reconstructed
    published = ("ADA", "AAVE", "SUI", "PEPE")
    assert all(catalogue.get(f"{c}-USDT-SWAP").tiers_reconstructed for c in SEED if c not in published)
    assert not any(catalogue.get(f"{c}-USDT-SWAP").tiers_reconstructed for c in published)


@pytest.mark.parametrize(("coin", "rows", "step"), [
    # OKX, "OKX to adjust position tiers of perpetual swaps" (effective 2023-05-19 and 2023-08-07)
    # and "... of PEPEUSDT, AIDOGEUSDT and SUIUSDT perpetual" (2023-05-05): tiers 1-3 as printed
    ("ADA", [("1500", "0.005", "0.0133"), ("3000", "0.0075", "0.02"), ("6000", "0.01", "0.025")], 6000),
    ("AAVE", [("3500", "0.0065", "0.02"), ("7000", "0.01", "0.025"), ("15000", "0.015", "0.05")], 15000),
    ("SUI", [("15000", "0.0065", "0.0133"), ("30000", "0.01", "0.02"), ("60000", "0.012", "0.025")], 60000),
    ("PEPE", [("500", "0.0065", "0.0133"), ("2000", "0.01", "0.02"), ("4000", "0.012", "0.025")], 4000),
])
def test_published_okx_ladders(catalogue, coin, rows, step):
    tiers = catalogue.get(f"{coin}-USDT-SWAP").tiers
    assert [(t.max_sz, t.mmr, t.imr) for t in tiers[:3]] == [tuple(D(x) for x in r) for r in rows]
    fourth = tiers[3]   # "+N contracts, +0.5% mmr and imr from the previous tier"
    assert fourth.max_sz == D(rows[2][0]) + step
    assert (fourth.mmr, fourth.imr) == (D(rows[2][1]) + D("0.005"), D(rows[2][2]) + D("0.005"))


def test_fees_are_okx_lv1(catalogue):
    for inst in catalogue:
        assert (inst.maker_fee, inst.taker_fee) == (D("0.0002"), D("0.0005"))
        assert (inst.maker_fee_ppm, inst.taker_fee_ppm) == (200, 500)


def test_tiers_are_contiguous_with_rising_rates(catalogue):
    for inst in catalogue:
        tiers = inst.tiers
        assert tiers[0].min_sz == 0 and tiers[0].tier == 1
        for n, (lo, hi) in enumerate(itertools.pairwise(tiers), start=2):
            assert hi.tier == n
            assert hi.min_sz == lo.max_sz, inst.inst_id
            assert hi.mmr >= lo.mmr and hi.imr >= lo.imr
        for t in tiers:
            assert 0 < t.mmr < t.imr <= 1
            assert t.max_sz > t.min_sz
            assert t.max_lever == _cut(t.imr), (inst.inst_id, t)
            # integer fields agree with the decimals
            assert t.max_lots * inst.lot_sz == t.max_sz and t.min_lots * inst.lot_sz == t.min_sz
            assert t.mmr_ppm == t.mmr * 1_000_000 and t.imr_ppm == t.imr * 1_000_000


def test_btc_usd_ladder_matches_okx_2023_06_15(catalogue):
    rows = [(t.tier, t.max_sz, t.mmr, t.imr, t.max_lever) for t in catalogue.get("BTC-USD-SWAP").tiers]
    assert rows[:3] == [
        (1, D("2000"), D("0.004"), D("0.008"), D("125")),
        (2, D("5000"), D("0.005"), D("0.01"), D("100")),
        (3, D("20000"), D("0.0075"), D("0.015"), D("66.66")),
    ]
    # tier 4 and up: +20,000 contracts and +0.5% mmr and imr per tier; lever 1/imr cut to 2dp
    for tier, max_sz, mmr, imr, lever in rows[3:]:
        k = tier - 3
        assert max_sz == 20000 + 20000 * k
        assert mmr == D("0.0075") + D("0.005") * k
        assert imr == D("0.015") + D("0.005") * k
        assert lever == _cut(imr)
    assert rows[3][1:] == (D("40000"), D("0.0125"), D("0.020"), D("50"))     # tier 4 by hand
    assert rows[4][1:] == (D("60000"), D("0.0175"), D("0.025"), D("40"))     # tier 5 by hand


def test_families_and_subset(catalogue):
    families = catalogue.families()
    assert [i.inst_id for i in families["BTC-USD"]] == ["BTC-USD-SWAP"]
    assert len(families) == 25
    sub = catalogue.subset(["BTC-USD-SWAP", "ETH-USDT-SWAP"])
    assert [i.inst_id for i in sub] == ["BTC-USD-SWAP", "ETH-USDT-SWAP"]
    with pytest.raises(KeyError):
        catalogue.subset(["NOPE-USDT-SWAP"])
    assert catalogue.get("NOPE") is None


# ------------------------------------------------------------------------ load_catalogue

TOML_TIERS = '''
[[instrument]]
instId = "BTC-USDT-SWAP"
instFamily = "BTC-USDT"
ctType = "linear"
ctVal = "0.01"
ctValCcy = "BTC"
settleCcy = "USDT"
tickSz = "0.1"
lotSz = "0.01"
minSz = "0.01"
lever = "100"
makerFee = "0.0002"
takerFee = "0.0005"
indexPx = "106754.65"
tiers = [
  { tier = 1, minSz = "0", maxSz = "1000", mmr = "0.004", imr = "0.01", maxLever = "100" },
  { tier = 2, minSz = "1000", maxSz = "2000", mmr = "0.006", imr = "0.0125", maxLever = "80" },
]
'''

TOML_LADDER = '''
[[instrument]]
instId = "ETH-USD-SWAP"
instFamily = "ETH-USD"
ctType = "inverse"
ctVal = "10"
ctValCcy = "USD"
settleCcy = "ETH"
tickSz = "0.01"
lotSz = "1"
minSz = "1"
lever = "100"
indexPx = "2500"
takerFee = "0.0007"
ladder = { explicit = [["100", "0.01", "0.02"], ["300", "0.015", "0.025"]], step = "500", count = 4 }
'''


def _write(tmp_path, text, name="cat.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_catalogue_with_explicit_tiers(tmp_path):
    cat = load_catalogue(_write(tmp_path, TOML_TIERS))
    (inst,) = list(cat)
    assert inst.inst_id == "BTC-USDT-SWAP" and inst.ct_type is ContractType.LINEAR
    assert inst.index_px == D("106754.6")     # 106,754.65 half-even to the 0.1 tick
    assert [(t.tier, t.max_lots, t.mmr_ppm, t.imr_ppm) for t in inst.tiers] == [
        (1, 100_000, 4000, 10_000), (2, 200_000, 6000, 12_500)]
    assert inst.value_k == 1000 and inst.min_lots == 1


def test_load_catalogue_with_a_ladder(tmp_path):
    cat = load_catalogue(str(_write(tmp_path, TOML_LADDER)))
    inst = cat.get("ETH-USD-SWAP")
    assert inst.ct_type is ContractType.INVERSE
    assert inst.value_k == 10**11            # 10 USD · 1 / (0.01 · 1e-8)
    assert (inst.maker_fee, inst.taker_fee) == (D("0.0002"), D("0.0007"))   # maker defaulted
    rows = [(t.tier, t.min_sz, t.max_sz, t.mmr, t.imr, t.max_lever) for t in inst.tiers]
    assert rows == [
        (1, D("0"), D("100"), D("0.01"), D("0.02"), D("50")),
        (2, D("100"), D("300"), D("0.015"), D("0.025"), D("40")),
        (3, D("300"), D("800"), D("0.020"), D("0.030"), D("33.33")),     # +500, +0.5%
        (4, D("800"), D("1300"), D("0.025"), D("0.035"), D("28.57")),
    ]


def test_load_catalogue_missing_file(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_catalogue(tmp_path / "absent.toml")


def test_load_catalogue_bad_toml(tmp_path):
    with pytest.raises(ValueError, match="not valid TOML"):
        load_catalogue(_write(tmp_path, "[[instrument]\ninstId = "))


def test_load_catalogue_without_instruments(tmp_path):
    with pytest.raises(ValueError, match=r"no \[\[instrument\]\]"):
        load_catalogue(_write(tmp_path, "title = 'empty'\n"))


def test_load_catalogue_missing_field(tmp_path):
    text = TOML_TIERS.replace('ctVal = "0.01"\n', "")
    with pytest.raises(ValueError, match=r"BTC-USDT-SWAP: missing field 'ctVal'"):
        load_catalogue(_write(tmp_path, text))


def test_load_catalogue_tick_grid_with_fractional_money(tmp_path):
    # 0.01 BTC · 0.01 lot · 0.000001 tick = 1e-10 USDT per lot·tick: not a whole 1e-8 unit
    text = TOML_TIERS.replace('tickSz = "0.1"', 'tickSz = "0.000001"')
    with pytest.raises(ValueError, match="whole money units"):
        load_catalogue(_write(tmp_path, text))


def test_load_catalogue_duplicate_and_broken_tiers(tmp_path):
    with pytest.raises(ValueError, match="duplicate instrument BTC-USDT-SWAP"):
        load_catalogue(_write(tmp_path, TOML_TIERS + TOML_TIERS))
    gap = TOML_TIERS.replace('{ tier = 2, minSz = "1000"', '{ tier = 2, minSz = "1500"')
    with pytest.raises(ValueError, match="does not start where"):
        load_catalogue(_write(tmp_path, gap, "gap.toml"))
    inverted = TOML_TIERS.replace('mmr = "0.004", imr = "0.01"', 'mmr = "0.02", imr = "0.01"')
    with pytest.raises(ValueError, match="mmr"):
        load_catalogue(_write(tmp_path, inverted, "inv.toml"))
    off_grid = TOML_TIERS.replace('maxSz = "1000"', 'maxSz = "1000.005"').replace(
        'minSz = "1000"', 'minSz = "1000.005"')
    with pytest.raises(ValueError, match="not a multiple"):
        load_catalogue(_write(tmp_path, off_grid, "grid.toml"))
