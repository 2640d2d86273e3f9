"""Instruments and position tiers, with OKX's fields and exact integer conversions.

Units: ``*_ticks`` are integer multiples of ``tick_sz``; ``*_lots`` of ``lot_sz``; money is
integer units of 1e-8 of the settlement currency (see :mod:`backstop.numeric`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from backstop.model.enums import ContractType
from backstop.model.ids import Currency, InstrumentFamily, InstrumentId
from backstop.numeric import MONEY_UNIT, NumericError, ratio_to_ppm, to_units


class MmValuation(StrEnum):
    """Which value a position's maintenance margin (MM, not the liquidation fee, not IM) is
    taken on: the notional at the mark (OKX, Binance, Hyperliquid, BitMEX), or the entry value
    (Bybit: "Position Value × MMR", position value = quantity × average entry price, linear, or
    quantity / average entry price, inverse)."""

    MARK = "mark"
    ENTRY = "entry"


@dataclass(frozen=True, slots=True)
class Tier:
    """One row of ``public/position-tiers``: sizes in contracts, rates as decimals.

    ``mm_deduction`` is a fixed amount (settlement currency) taken off the tier's MM:
    MM = notional × mmr − deduction. OKX has none (0); Binance calls it the maintenance
    amount ``cum``, Bybit the "maintenance margin deduction", Hyperliquid the tiers'
    maintenance deduction. It keeps MM continuous where the rate steps up."""

    tier: int
    min_sz: Decimal
    max_sz: Decimal
    mmr: Decimal
    imr: Decimal
    max_lever: Decimal
    min_lots: int = 0
    max_lots: int = 0
    mmr_ppm: int = 0
    imr_ppm: int = 0
    mm_deduction: Decimal = Decimal(0)
    mm_deduction_units: int = 0


@dataclass(frozen=True, slots=True)
class Instrument:
    """A perpetual swap with OKX's fields (``instId``, ``ctVal``, ``tickSz``, ...).

    ``value_k`` is the exact conversion from lots and ticks to money units:
    linear value = ``lots * ticks * value_k``; inverse value = ``lots * value_k / ticks``.
    """

    inst_id: InstrumentId
    inst_family: InstrumentFamily
    ct_type: ContractType
    ct_val: Decimal
    ct_val_ccy: Currency
    settle_ccy: Currency
    tick_sz: Decimal
    lot_sz: Decimal
    min_sz: Decimal
    max_lever: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    tiers: tuple[Tier, ...]
    index_px: Decimal
    funding_cap: Decimal = Decimal("0.00375")
    funding_interval_h: int = 8
    inst_type: str = "SWAP"
    tiers_reconstructed: bool = False
    illiquid: bool = False
    value_k: int = 0
    min_lots: int = 0
    maker_fee_ppm: int = 0
    taker_fee_ppm: int = 0
    uly: str = field(default="")
    is_linear: bool = True
    """``ct_type is LINEAR``, kept as a field: it is read on every fill."""
    default_lever_cents: int = 1000
    """Leverage of an account that never set one: 10×, capped by ``max_lever``."""
    liq_fee_ppm: int = 0
    """The liquidation fee rate (ppm) in the trigger (MM + fee) and charged at liquidation:
    OKX's taker fee (the catalogue's default); 0 where a venue's trigger has no fee term."""
    mm_valuation: MmValuation = MmValuation.MARK
    """What the MM rate is applied to (the liquidation fee is always at the mark)."""

    @property
    def max_position_lots(self) -> int:
        return self.tiers[-1].max_lots

    def px_to_ticks(self, px: Decimal) -> int:
        """Exact ticks of a price; raises :class:`NumericError` when off the tick grid."""
        return to_units(px, self.tick_sz)

    def ticks_to_px(self, ticks: int) -> Decimal:
        return self.tick_sz * ticks

    def sz_to_lots(self, sz: Decimal) -> int:
        """Exact lots of a size in contracts; raises :class:`NumericError` off the lot grid."""
        return to_units(sz, self.lot_sz)

    def lots_to_sz(self, lots: int) -> Decimal:
        return self.lot_sz * lots


def finish_tier(tier: Tier, lot_sz: Decimal) -> Tier:
    """Fill a tier's integer fields. Tier bounds must lie on the lot grid."""
    return Tier(
        tier=tier.tier,
        min_sz=tier.min_sz,
        max_sz=tier.max_sz,
        mmr=tier.mmr,
        imr=tier.imr,
        max_lever=tier.max_lever,
        min_lots=to_units(tier.min_sz, lot_sz),
        max_lots=to_units(tier.max_sz, lot_sz),
        mmr_ppm=ratio_to_ppm(tier.mmr),
        imr_ppm=ratio_to_ppm(tier.imr),
        mm_deduction=tier.mm_deduction,
        mm_deduction_units=to_units(tier.mm_deduction, MONEY_UNIT),
    )


def calculate_value_k(ct_type: ContractType, ct_val: Decimal, lot_sz: Decimal,
                      tick_sz: Decimal) -> int:
    """Money units per (lot × tick) for linear, or per (lot / tick) for inverse; exact.

    Linear: value = ctVal·lotSz·lots · tickSz·ticks, so k = ctVal·lotSz·tickSz / 1e-8.
    Inverse: value = ctVal·lotSz·lots / (tickSz·ticks), so k = ctVal·lotSz / (tickSz·1e-8).
    """
    if ct_type is ContractType.LINEAR:
        raw = ct_val * lot_sz * tick_sz / MONEY_UNIT
    else:
        raw = ct_val * lot_sz / (tick_sz * MONEY_UNIT)
    if raw != raw.to_integral_value() or raw <= 0:
        raise NumericError(f"ctVal·lotSz and tickSz do not give whole money units ({raw})")
    return int(raw)


def ensure_tiers_valid(tiers: tuple[Tier, ...], inst_id: str) -> None:
    """Tiers must be contiguous, start at zero and have rising MMR."""
    if not tiers:
        raise ValueError(f"{inst_id}: no position tiers")
    if tiers[0].min_lots != 0:
        raise ValueError(f"{inst_id}: tier 1 must start at 0")
    for lower, upper in itertools.pairwise(tiers):
        if upper.min_lots != lower.max_lots:
            raise ValueError(f"{inst_id}: tier {upper.tier} does not start where {lower.tier} ends")
        if upper.mmr_ppm < lower.mmr_ppm:
            raise ValueError(f"{inst_id}: tier {upper.tier} has a lower mmr than tier {lower.tier}")
    for tier in tiers:
        if not 0 < tier.mmr < tier.imr <= 1:
            raise ValueError(f"{inst_id}: tier {tier.tier} needs 0 < mmr < imr <= 1")
        if tier.mm_deduction < 0:
            raise ValueError(f"{inst_id}: tier {tier.tier} needs a maintenance deduction >= 0")
