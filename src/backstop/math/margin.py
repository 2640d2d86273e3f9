"""Margin requirements, ratios and prices (OKX single-currency margin, ``acctLv`` 2).

All money is integer units of 1e-8 of the settlement currency; rates are integer ppm;
leverage is integer hundredths (``lever_cents``: 10× is 1000, 66.66× is 6666).
Rounding always goes against the account: requirements round up, prices round toward the side
that needs no payment from the insurance fund.
"""

from __future__ import annotations

from decimal import Decimal

from backstop.math.values import calculate_notional
from backstop.model.instrument import Instrument, MmValuation, Tier
from backstop.numeric import PPM, div_ceil, div_floor


def find_tier(tiers: tuple[Tier, ...], lots: int) -> Tier | None:
    """The tier whose ``(min, max]`` band holds ``|lots|`` (tier 1 also holds 0); ``None`` above
    the last tier."""
    lots = abs(lots)
    for tier in tiers:
        if lots <= tier.max_lots:
            return tier
    return None


def calculate_initial_margin(notional: int, lever_cents: int) -> int:
    """IM = notional / leverage, rounded up."""
    return div_ceil(notional * 100, lever_cents)


def calculate_rate_amount(notional: int, rate_ppm: int) -> int:
    """``notional × rate``, rounded up: MM, liquidation fee, trading fee."""
    return div_ceil(notional * rate_ppm, PPM)


def calculate_entry_notional(entry_value: int, entry_den: int) -> int:
    """A position's entry value, the exact fill value ``entry_value / entry_den`` (money
    units), as an absolute amount rounded up: the base of an entry-valued MM
    (:class:`~backstop.model.instrument.MmValuation`)."""
    return div_ceil(abs(entry_value), entry_den)


def calculate_maintenance_margin(inst: Instrument, size_lots: int, mark_ticks: int,
                                 entry_notional: int | None = None) -> int:
    """MM = the tier's MMR (tier by position size) × the notional at the mark, or, for an
    entry-valued instrument, × ``entry_notional`` (:func:`calculate_entry_notional`), rounded
    up; with MM deductions (Binance ``cum``), see :func:`_deducted_requirement`. An
    entry-valued instrument without ``entry_notional`` falls back to the mark (for orderings
    and estimates only: every trigger and displayed figure passes it)."""
    return _requirement(inst, size_lots, mark_ticks, 0, entry_notional)


def _requirement(inst: Instrument, size_lots: int, mark_ticks: int, fee_ppm: int,
                 entry_notional: int | None) -> int:
    """MM plus ``fee_ppm`` of the notional at the mark, the one rule behind
    :func:`calculate_maintenance_margin` and :func:`calculate_mm_plus_fee`.

    Mark-valued: ``notional × (mmr + fee)`` rounded up once, less the deduction. Entry-valued:
    ``entry_notional × mmr`` rounded up, less the deduction (the largest such line over tier 1
    up to the size's tier when tiers carry deductions), plus ``notional × fee`` rounded up."""
    if size_lots == 0:
        return 0
    tier = find_tier(inst.tiers, size_lots) or inst.tiers[-1]
    notional = calculate_notional(inst, size_lots, mark_ticks)
    if entry_notional is not None and inst.mm_valuation is MmValuation.ENTRY:
        lines = inst.tiers[:inst.tiers.index(tier) + 1] if tier.mm_deduction_units else (tier,)
        mm = max(calculate_rate_amount(entry_notional, t.mmr_ppm) - t.mm_deduction_units
                 for t in lines)
        return mm + (calculate_rate_amount(notional, fee_ppm) if fee_ppm else 0)
    if tier.mm_deduction_units:
        return _deducted_requirement(inst, tier, notional, fee_ppm)
    return calculate_rate_amount(notional, tier.mmr_ppm + fee_ppm)


def _deducted_requirement(inst: Instrument, tier: Tier, notional: int, fee_ppm: int) -> int:
    """``notional × (mmr + fee)`` rounded up, less the deduction, for a tier with one.

    Where tiers carry a deduction (Binance ``cum``: MM = notional × mmr − cum) the requirement
    is the largest of that line over tier 1 up to the size's tier. Binance's MM is that max over
    its brackets (the lines are tangent to a convex curve), so a position whose notional has
    fallen into a lower bracket gets that bracket's figure, and the requirement never falls
    below tier 1's (deduction 0): it never vanishes while the position is open. Without
    deductions (OKX) the size's tier alone has the largest line, and callers take it directly."""
    return max(calculate_rate_amount(notional, t.mmr_ppm + fee_ppm) - t.mm_deduction_units
               for t in inst.tiers[:inst.tiers.index(tier) + 1])


def calculate_liquidation_fee(inst: Instrument, size_lots: int, mark_ticks: int) -> int:
    """Liquidation fee = notional at mark × the instrument's liquidation fee rate (OKX: the
    taker fee, okx.md, unconfirmed), rounded up."""
    return calculate_rate_amount(calculate_notional(inst, size_lots, mark_ticks), inst.liq_fee_ppm)


def calculate_mm_plus_fee(inst: Instrument, size_lots: int, mark_ticks: int,
                          entry_notional: int | None = None) -> int:
    """The denominator of OKX's margin ratio: MM (:func:`calculate_maintenance_margin`, at
    the mark or at ``entry_notional``) plus the liquidation fee at the mark; mark-valued, the
    two rates are applied to the notional and rounded up once, less the tier's MM deduction
    (0 at OKX; see :func:`_deducted_requirement`)."""
    return _requirement(inst, size_lots, mark_ticks, inst.liq_fee_ppm, entry_notional)


def calculate_margin_ratio(equity: int, mm_plus_fee: int) -> Decimal | None:
    """OKX ``mgnRatio`` = equity / (MM + liquidation fee), for display; ``None`` without MM."""
    if mm_plus_fee == 0:
        return None
    return Decimal(equity) / Decimal(mm_plus_fee)


def is_liquidatable(equity: int, mm_plus_fee: int) -> bool:
    """Margin ratio at or below 100%, compared exactly: equity ≤ MM + fee (and some exposure)."""
    return mm_plus_fee > 0 and equity <= mm_plus_fee


def calculate_bankruptcy_ticks(inst: Instrument, size_lots: int, cost: int, margin: int) -> int | None:
    """Price (ticks) where ``margin + upl = 0`` for an isolated position.

    Linear: P = (cost − margin) / (size · k). Inverse: P = size · k / (margin − cost).
    A long rounds up and a short rounds down, so a close at the bankruptcy price never needs
    money from the fund. ``None`` when no finite positive price exists (e.g. an inverse short
    at 1× or less, or a linear long whose margin covers the whole cost).
    """
    long = size_lots > 0
    if inst.is_linear:
        num, den = cost - margin, size_lots * inst.value_k
    else:
        num, den = size_lots * inst.value_k, margin - cost
    if den == 0 or (num > 0) != (den > 0) or num == 0:
        return None
    return div_ceil(num, den) if long else div_floor(num, den)


def calculate_liquidation_px(inst: Instrument, size_lots: int, cost: int, margin: int,
                             mmr_ppm: int, mm_deduction: int = 0) -> Decimal | None:
    """Estimated liquidation price (OKX ``liqPx``) for an isolated position, as a decimal.

    With N = ctVal·|pos| and r = mmr + taker fee (okx.md, derived):
    linear long (N·avg − margin)/(N·(1−r)), short (N·avg + margin)/(N·(1+r));
    inverse long N·(1+r)/(margin + N/avg), short N·(1−r)/(N/avg − margin).
    In this module's terms, the price P where ``margin + upl(P) = |value(P)| · r − deduction``
    (r = mmr + the liquidation fee rate; a tier's MM deduction, money units, acts as margin).
    Not used to settle: display only. ``None`` when no positive price satisfies it.
    """
    if size_lots == 0:
        return None
    margin += mm_deduction
    r = Decimal(mmr_ppm + inst.liq_fee_ppm) / PPM
    sign = 1 if size_lots > 0 else -1
    size_k = Decimal(size_lots * inst.value_k)
    if inst.is_linear:
        den = size_k * (1 - sign * r)
        ticks = Decimal(cost - margin) / den if den else None
    else:
        den = Decimal(margin - cost)
        ticks = size_k * (1 + sign * r) / den if den else None
    if ticks is None or ticks <= 0:
        return None
    return ticks * inst.tick_sz


def calculate_max_open_lots(inst: Instrument, available: int, px_ticks: int, lever_cents: int,
                            fee_ppm: int) -> int:
    """Most lots a new order can open with ``available`` money at a price: each lot needs its
    IM plus its fee. Rounded down (an order of this size passes the margin check).
    Linear is exact per lot; inverse notional is not linear in lots after rounding, so the
    estimate is checked and stepped down until it passes."""
    if available <= 0:
        return 0
    # exact rational bound: available / (per-lot value · (1/lever + fee)); rounding up in the
    # real cost only adds, so the bound is stepped down, never up. Inverse per-lot value is
    # k / ticks, kept as a fraction so the bound is not understated.
    rate = 100 * PPM + fee_ppm * lever_cents
    if inst.is_linear:
        guess = div_floor(available * lever_cents * PPM, px_ticks * inst.value_k * rate)
    else:
        guess = div_floor(available * lever_cents * PPM * px_ticks, inst.value_k * rate)
    while guess > 0 and _order_cost(inst, guess, px_ticks, lever_cents, fee_ppm) > available:
        guess -= 1
    return guess


def _order_cost(inst: Instrument, lots: int, px_ticks: int, lever_cents: int, fee_ppm: int) -> int:
    notional = calculate_notional(inst, lots, px_ticks)
    return calculate_initial_margin(notional, lever_cents) + calculate_rate_amount(notional, fee_ppm)
