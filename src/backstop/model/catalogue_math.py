"""Tiny helpers shared by the catalogue and its default specs."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal


def cut_lever(imr: Decimal) -> Decimal:
    """Max leverage = 1/imr, cut (rounded down) to two decimals, as OKX publishes it."""
    cut = (Decimal(1) / imr).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    return cut.quantize(Decimal(1)) if cut == cut.to_integral_value() else cut.normalize()
