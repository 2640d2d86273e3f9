"""Instrument specs of the venue profiles: each venue's published BTC and ETH perpetual margin
tables, fees and liquidation-fee rule, on backstop's default instruments.

A venue's catalogue is the default catalogue (:mod:`backstop.model.default_specs`) with
BTC-USDT-SWAP and ETH-USDT-SWAP (at Bybit also BTC-USD-SWAP and ETH-USD-SWAP) given the
venue's margin table, and every instrument given the venue's fees and the fee rate its
liquidation trigger counts (``liqFeeRate``). Contract sizes and ticks stay OKX's, so one
population trades the same contracts under each venue. Other instruments keep OKX's tiers.

Binance, Bybit and Hyperliquid publish their tables in notional brackets (USDT; coin for
inverse contracts); backstop's tiers are in contracts, so each bracket is mapped to contracts
at the instrument's reference price (``indexPx``), rounded down to the lot. That mapping is
reconstructed: away from the reference price a position's tier is chosen by size, not by
notional. The maintenance deduction (Binance ``cum``) is the venue's published amount, so
MM = notional × mmr − cum is the venue's figure inside the bracket.
"""

from __future__ import annotations

from copy import deepcopy
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from typing import Any

from backstop.model.default_specs import DEFAULT_SPECS

D = Decimal
Bracket = tuple[str, str, str, str]
"""``(notional cap in USDT, mmr, max leverage, maintenance deduction in USDT)``."""

# Binance USDⓈ-M BTCUSDT and ETHUSDT leverage & margin brackets (cap, mmr, max lever, cum),
# https://www.binance.com/en/futures/trading-rules/perpetual/leverage-margin (table as the site
# served it 2021–2023); cum follows Binance's FAQ "How to Calculate Liquidation Price of
# USDⓈ-M Futures Contracts" (https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93).
BINANCE_BTC: tuple[Bracket, ...] = (
    ("50000", "0.004", "125", "0"), ("250000", "0.005", "100", "50"),
    ("1000000", "0.01", "50", "1300"), ("10000000", "0.025", "20", "16300"),
    ("20000000", "0.05", "10", "266300"), ("50000000", "0.1", "5", "1266300"),
    ("100000000", "0.125", "4", "2516300"), ("200000000", "0.15", "3", "5016300"),
    ("300000000", "0.25", "2", "25016300"), ("500000000", "0.5", "1", "100016300"),
)
BINANCE_ETH: tuple[Bracket, ...] = (
    ("10000", "0.005", "100", "0"), ("100000", "0.0065", "75", "15"),
    ("500000", "0.01", "50", "365"), ("1000000", "0.02", "25", "5365"),
    ("2000000", "0.05", "10", "35365"), ("5000000", "0.1", "5", "135365"),
    ("10000000", "0.125", "4", "260365"), ("20000000", "0.15", "3", "510365"),
    ("50000000", "0.25", "2", "2510365"),
)

# Hyperliquid margin tiers, https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers:
# BTC 40× up to 150M of notional then 20×, ETH 25× up to 100M then 15×. Maintenance margin is
# half the initial margin at max leverage (mmr = 1/(2·max lever), "maintenance leverage"),
# https://hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations; the deduction keeps it
# continuous at the bound. The last cap (1,000M) is a bound backstop needs, not Hyperliquid's.
HYPERLIQUID_BTC: tuple[tuple[str, str], ...] = (("150000000", "40"), ("1000000000", "20"))
HYPERLIQUID_ETH: tuple[tuple[str, str], ...] = (("100000000", "25"), ("1000000000", "15"))

# Bybit USDT perpetual risk limits (reconstructed): tier 1 as Bybit's liquidation-price help
# page and maintenance-margin page state it (BTC mmr 0.5%, ETH 1%), then Bybit's step pattern
# (each step +0.5% mmr and imr on a fixed notional step), with the MM deduction Bybit defines
# like Binance's cum. https://www.bybit.com/en/help-center/article/Liquidation-Price-USDT-Contract
BYBIT_BTC = ("2000000", "0.005", "0.01", "2000000")   # first cap, mmr, imr, step
BYBIT_ETH = ("1000000", "0.01", "0.02", "1000000")
# Bybit inverse perpetuals (BTCUSD, ETHUSD), caps and steps in coin: tier 1 mmr as Bybit's
# "How to calculate Liquidation Price (Inverse Contract)" states it ("0.5% for BTC and 1% for
# ETH"), imr 1/max leverage (BTCUSD 100×, ETHUSD 50×); the caps (150 BTC, 5,000 ETH) and
# steps are reconstructed on Bybit's risk-limit pattern.
# https://help.bybit.com/hc/en-us/articles/360039261334-How-to-calculate-Liquidation-Price-Inverse-Contract-
BYBIT_BTC_INVERSE = ("150", "0.005", "0.01", "100")
BYBIT_INVERSE_FEE_TO_CLOSE = "0.00075"
"""The inverse page's MM adds the fee to close (``Quantity × 0.075% / Bankruptcy Price``, the
page's taker rate): the inverse instruments' ``liqFeeRate``, taken at the mark like OKX's fee
(at the trigger the mark is near the bankruptcy price: the example's LP moves by 0.0002%)."""
BYBIT_ETH_INVERSE = ("5000", "0.01", "0.02", "5000")

# BitMEX risk limits, https://www.bitmex.com/app/riskLimitsExamples: XBTUSD base maintenance
# 0.50% and initial 1.00%, each step raises both by the base maintenance margin on the whole
# position (no deduction). The base limit 200 XBT and step 100 XBT, and ETH's 1%/2% on 5,000 ETH
# steps, are reconstructed; converted to USDT at the reference price.
BITMEX_BTC = ("200", "100", "0.005", "0.01")   # base limit (coin), step (coin), mmr, imr
BITMEX_ETH = ("5000", "2500", "0.01", "0.02")

TIER_COUNT = 10

VENUE_FEES: dict[str, dict[str, str]] = {
    # maker, taker at the base fee level; liqFeeRate: the fee the venue's trigger counts
    "okx": {},  # the default specs: OKX Lv1, liquidation fee = taker fee (okx.md)
    "binance": {"makerFee": "0.0002", "takerFee": "0.0005", "liqFeeRate": "0"},
    "bybit": {"makerFee": "0.0002", "takerFee": "0.00055", "liqFeeRate": "0"},
    "hyperliquid": {"makerFee": "0.00015", "takerFee": "0.00045", "liqFeeRate": "0"},
    "bitmex": {"makerFee": "0.0002", "takerFee": "0.00075", "liqFeeRate": "0.00075"},
}
"""Fees: Binance https://www.binance.com/en/fee/futureFee, Bybit https://www.bybit.com/en/help-center/article/Trading-Fee-Structure,
Hyperliquid https://hyperliquid.gitbook.io/hyperliquid-docs/trading/fees, BitMEX
https://www.bitmex.com/app/fees (its maintenance margin counts the taker fee to close,
https://www.bitmex.com/app/liquidation). Binance, Bybit and Hyperliquid trigger on MM alone."""


def venue_specs(venue: str, index_px: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The venue's catalogue specs; ``index_px`` moves instruments' reference (and starting
    index) prices, e.g. to a stress path's start, before brackets are mapped to contracts.
    ``ValueError`` for an unknown venue."""
    if venue not in VENUE_FEES:
        raise ValueError(f"unknown venue {venue!r}; one of {', '.join(VENUE_FEES)}")
    specs = [deepcopy(spec) for spec in DEFAULT_SPECS]
    for spec in specs:
        spec.update(VENUE_FEES[venue])
        spec["indexPx"] = (index_px or {}).get(spec["instId"], spec["indexPx"])
        if venue == "bybit":   # MM = position value (at entry) × MMR, both pages above
            spec["mmValuation"] = "entry"
            if spec["ctType"] != "linear":
                spec["liqFeeRate"] = BYBIT_INVERSE_FEE_TO_CLOSE
        tiers = _venue_tiers(venue, spec)
        if tiers is not None:
            spec.pop("ladder", None)
            spec["tiers"] = tiers
            spec["tiersReconstructed"] = True   # bracket caps mapped to contracts (see above)
            spec["lever"] = tiers[0]["maxLever"]
    return specs


def _venue_tiers(venue: str, spec: dict[str, Any]) -> list[dict[str, str]] | None:
    coin = spec["instId"].split("-")[0]
    if coin not in ("BTC", "ETH"):
        return None
    btc = coin == "BTC"
    if spec["ctType"] != "linear":
        if venue != "bybit":
            return None
        return brackets_to_tiers(stepped_brackets(*(BYBIT_BTC_INVERSE if btc else BYBIT_ETH_INVERSE),
                                                  deduct=True), spec)
    if venue == "binance":
        return brackets_to_tiers(BINANCE_BTC if btc else BINANCE_ETH, spec)
    if venue == "hyperliquid":
        return brackets_to_tiers(hyperliquid_brackets(HYPERLIQUID_BTC if btc else HYPERLIQUID_ETH), spec)
    if venue == "bybit":
        return brackets_to_tiers(stepped_brackets(*(BYBIT_BTC if btc else BYBIT_ETH), deduct=True), spec)
    if venue == "bitmex":
        base, step, mmr, imr = BITMEX_BTC if btc else BITMEX_ETH
        px = D(spec["indexPx"])
        return brackets_to_tiers(stepped_brackets(str(D(base) * px), mmr, imr, str(D(step) * px),
                                                  deduct=False), spec)
    return None


def maintenance_deductions(caps_and_rates: list[tuple[Decimal, Decimal]]) -> list[Decimal]:
    """Binance's maintenance amount per bracket: cum_n = cum_(n−1) + floor_n·(mmr_n − mmr_(n−1)),
    floor_n being the previous bracket's cap (cum_1 = 0); it makes MM continuous in notional."""
    out, floor, prev_rate, cum = [], D(0), D(0), D(0)
    for cap, rate in caps_and_rates:
        cum += floor * (rate - prev_rate) if out else D(0)
        out.append(cum)
        floor, prev_rate = cap, rate
    return out


def hyperliquid_brackets(table: tuple[tuple[str, str], ...]) -> tuple[Bracket, ...]:
    """Hyperliquid's (cap, max lever) rows as brackets: mmr = 1/(2·max lever), rounded up to
    1e-6 (against the account where it is not exact), with the continuity deduction."""
    rates = [(D(cap), (D(1) / (2 * D(lever))).quantize(D("0.000001"), rounding=ROUND_CEILING))
             for cap, lever in table]
    cums = maintenance_deductions(rates)
    return tuple((str(cap), str(rate), lever, str(cum))
                 for (cap, rate), (_, lever), cum in zip(rates, table, cums, strict=True))


def stepped_brackets(first_cap: str, mmr: str, imr: str, step: str, *, deduct: bool) -> tuple[Bracket, ...]:
    """Risk-limit steps: caps first_cap + k·step, mmr and imr each +0.5% per step; max lever
    1/imr cut to 2 decimals; with ``deduct`` the continuity deduction, else none (BitMEX)."""
    caps = [D(first_cap) + k * D(step) for k in range(TIER_COUNT)]
    rates = [D(mmr) + k * D("0.005") for k in range(TIER_COUNT)]
    levers = [(D(1) / (D(imr) + k * D("0.005"))).quantize(D("0.01"), rounding=ROUND_DOWN)
              for k in range(TIER_COUNT)]
    cums = maintenance_deductions(list(zip(caps, rates, strict=True))) if deduct else [D(0)] * TIER_COUNT
    return tuple((str(c), str(r), str(lev), str(cum)) for c, r, lev, cum in zip(caps, rates, levers, cums,
                                                                             strict=True))


def brackets_to_tiers(brackets: tuple[Bracket, ...], spec: dict[str, Any]) -> list[dict[str, str]]:
    """Notional brackets (in the settlement currency: USDT for linear, coin for inverse) as
    ``public/position-tiers`` rows in contracts at ``indexPx``: each cap is cut down to the lot
    (a position at the cap stays in the lower, cheaper tier only if its notional really is below
    the cap at that price); imr = 1/max lever, rounded up to 1e-6."""
    px, ct_val = D(spec["indexPx"]), D(spec["ctVal"])
    contract_value = px * ct_val if spec["ctType"] == "linear" else ct_val / px
    lot = D(spec["lotSz"])
    rows, low = [], D(0)
    for number, (cap, mmr, lever, cum) in enumerate(brackets, start=1):
        high = (D(cap) / contract_value / lot).to_integral_value(rounding=ROUND_DOWN) * lot
        imr = (D(1) / D(lever)).quantize(D("0.000001"), rounding=ROUND_CEILING)
        rows.append({"tier": number, "minSz": f"{low:f}", "maxSz": f"{high:f}", "mmr": mmr, "imr": str(imr),
                     "maxLever": lever, "mmDeduction": cum})
        low = high
    return rows
