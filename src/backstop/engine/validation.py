"""Turning a command's decimals into exact ticks and lots, or an OKX error."""

from __future__ import annotations

from decimal import Decimal

from backstop.model import errors
from backstop.model.errors import Rejection
from backstop.model.instrument import Instrument
from backstop.numeric import NumericError, to_units


def parse_lots(inst: Instrument, sz: Decimal) -> int | Rejection:
    """Size in contracts → lots: 51000 when not positive, 51121 off the lot grid, 51020 below
    the minimum."""
    if not isinstance(sz, Decimal) or not sz.is_finite() or sz <= 0:
        return errors.reject(errors.BAD_PARAMETER, "Parameter sz error")
    try:
        lots = to_units(sz, inst.lot_sz)
    except NumericError:
        return errors.reject(errors.NOT_LOT_MULTIPLE,
                             f"Order quantity must be a multiple of the lot size {inst.lot_sz}")
    if lots < inst.min_lots:
        return errors.reject(errors.BELOW_MIN_SIZE,
                             f"Order amount should be greater than the min available amount {inst.min_sz}")
    return lots


def parse_ticks(inst: Instrument, px: Decimal | None) -> int | Rejection:
    """Price → ticks: 51000 when missing, not positive, or off the tick grid."""
    if not isinstance(px, Decimal) or not px.is_finite() or px <= 0:
        return errors.reject(errors.BAD_PARAMETER, "Parameter px error")
    try:
        return to_units(px, inst.tick_sz)
    except NumericError:
        return errors.reject(errors.BAD_PARAMETER,
                             f"Parameter px error: not a multiple of tickSz {inst.tick_sz}")


def parse_money(amount: Decimal) -> int | Rejection:
    """A positive money amount with at most 8 decimals → units; 51000 otherwise."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        return errors.reject(errors.BAD_PARAMETER, "Parameter amt error")
    try:
        return to_units(amount, Decimal("0.00000001"))
    except NumericError:
        return errors.reject(errors.BAD_PARAMETER, "Parameter amt error: more than 8 decimals")


def parse_lever(inst: Instrument, lever: Decimal) -> int | Rejection:
    """Leverage → hundredths: 51000 outside [0.01, max lever] or with more than 2 decimals."""
    if not isinstance(lever, Decimal) or not lever.is_finite() or lever < 1:
        return errors.reject(errors.BAD_PARAMETER, "Parameter lever error")
    try:
        cents = to_units(lever, Decimal("0.01"))
    except NumericError:
        return errors.reject(errors.BAD_PARAMETER, "Parameter lever error")
    if lever > inst.max_lever:
        return errors.reject(errors.BAD_PARAMETER,
                             f"Leverage exceeds the maximum {inst.max_lever}")
    return cents
