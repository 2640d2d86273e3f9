"""Exact number types and helpers. Imports nothing of ours.

Representation:
- prices are integer *ticks* of an instrument's ``tickSz``;
- sizes are integer *lots* of an instrument's ``lotSz`` (``contracts = lots * lotSz``);
- money is an integer count of :data:`MONEY_UNIT` (1e-8) of its currency.

Every division in the project goes through :func:`div_floor` or :func:`div_ceil`, so its
rounding direction is written at the call site.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation

MONEY_DECIMALS = 8
MONEY_UNIT = Decimal(1).scaleb(-MONEY_DECIMALS)
MONEY_SCALE = 10**MONEY_DECIMALS


class NumericError(ValueError):
    """A value cannot be represented exactly where exactness is required."""


def div_floor(numerator: int, denominator: int) -> int:
    """Integer division rounded toward minus infinity."""
    return numerator // denominator


def div_ceil(numerator: int, denominator: int) -> int:
    """Integer division rounded toward plus infinity."""
    return -((-numerator) // denominator)


def parse_decimal(text: str | int | Decimal) -> Decimal:
    """Parse a finite decimal from a string or int. Floats are refused: they are not exact."""
    if isinstance(text, float):
        raise NumericError("floats are not accepted where money or size is exact")
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise NumericError(f"not a decimal number: {text!r}") from exc
    if not value.is_finite():
        raise NumericError(f"not a finite number: {text!r}")
    return value


def to_units(value: Decimal, step: Decimal) -> int:
    """``value / step`` as an exact integer; raises :class:`NumericError` if not a multiple."""
    try:
        units, remainder = divmod(value, step)
    except InvalidOperation as exc:  # the quotient has more digits than the context holds
        raise NumericError(f"{value} is out of range for a step of {step}") from exc
    if remainder != 0:
        raise NumericError(f"{value} is not a multiple of {step}")
    return int(units)


def to_units_floor(value: Decimal, step: Decimal) -> int:
    """``value / step`` rounded toward minus infinity."""
    return int((value / step).to_integral_value(rounding=ROUND_FLOOR))


def to_units_ceil(value: Decimal, step: Decimal) -> int:
    """``value / step`` rounded toward plus infinity."""
    return int((value / step).to_integral_value(rounding=ROUND_CEILING))


def round_to(value: Decimal, step: Decimal) -> Decimal:
    """``value`` to a multiple of ``step``, half to even, whatever the ambient decimal context
    (a library such as ccxt may set it to half-up for the whole thread)."""
    return value.quantize(step, rounding=ROUND_HALF_EVEN)


def money_from_decimal(value: Decimal | str | int) -> int:
    """Exact money units from a decimal amount; refuses more than 8 decimal places."""
    return to_units(parse_decimal(value), MONEY_UNIT)


def money_to_decimal(units: int) -> Decimal:
    """Money units back to a decimal amount (exact)."""
    return Decimal(units).scaleb(-MONEY_DECIMALS)


def money_str(units: int) -> str:
    """Money units as a plain decimal string without exponent, trailing zeros trimmed."""
    return fmt_decimal(money_to_decimal(units))


def fmt_decimal(value: Decimal) -> str:
    """A decimal as a plain string (no exponent), trailing zeros trimmed."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def ratio_to_ppm(value: Decimal) -> int:
    """A rate such as an MMR or a fee (0.0005) as integer parts per million (500); exact."""
    return to_units(value, Decimal("0.000001"))


PPM = 1_000_000
