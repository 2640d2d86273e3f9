"""Funding: rate from the premium, and each position's payment. Exact where it settles.

rate = clamp(mean premium + clamp(interest − mean premium, ±0.05%), −cap, +cap), the premium
being (impact mid − index) / index per sample (OKX and Binance publish this shape). Rates are
kept as integer parts per 1e8 (``rate_e8``): 0.0001 is 10_000.
"""

from __future__ import annotations

from backstop.numeric import div_ceil, div_floor

RATE_SCALE = 100_000_000
INTEREST_CLAMP_E8 = 50_000  # ±0.05%


def calculate_premium_e8(mid_ticks: int, index_ticks: int) -> int:
    """(mid − index) / index in 1e-8, rounded toward zero."""
    num = (mid_ticks - index_ticks) * RATE_SCALE
    return div_floor(num, index_ticks) if num >= 0 else -div_floor(-num, index_ticks)


def calculate_funding_rate_e8(premiums_e8: list[int], interest_e8: int, cap_e8: int) -> int:
    """Clamped funding rate from premium samples (mean rounded toward zero)."""
    if premiums_e8:
        total = sum(premiums_e8)
        mean = div_floor(abs(total), len(premiums_e8)) * (1 if total >= 0 else -1)
    else:
        mean = 0
    adjust = max(-INTEREST_CLAMP_E8, min(INTEREST_CLAMP_E8, interest_e8 - mean))
    return max(-cap_e8, min(cap_e8, mean + adjust))


def calculate_funding_payment(notional: int, rate_e8: int, pays: bool) -> int:
    """The amount one position moves: payers round up, receivers round down, so the
    receivers never get more than the payers pay (the dust goes to the insurance fund)."""
    gross = notional * abs(rate_e8)
    return div_ceil(gross, RATE_SCALE) if pays else div_floor(gross, RATE_SCALE)
