"""The engine's surface: every command's fields checked before anything runs.

Numbers become exact ticks, lots, money units or leverage hundredths, or an OKX refusal.
Nothing here raises on bad input: a command with a field of the wrong type, out of range, or
naming an unknown account or currency gets a :class:`Rejection` (51000 unless a more specific
51xxx applies), which the exchange turns into a ``Rejected`` event.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from backstop.model import commands as c
from backstop.model import errors
from backstop.model.enums import MarginMode, OrderType, SelfTradeMode, Side
from backstop.model.errors import Rejection
from backstop.model.instrument import Instrument
from backstop.numeric import NumericError, to_units

MAX_INT64 = 2**63 - 1
MAX_CONTRACTS = Decimal(10) ** 12
"""Largest ``sz`` accepted, in contracts (tier limits refuse far less)."""
MAX_PRICE = Decimal(10) ** 12
"""Largest ``px`` accepted, in quote units."""
MAX_MONEY = Decimal(10) ** 15
"""Largest money amount accepted in one command, in currency units."""
MAX_CL_ORD_ID = 32
"""OKX: ``clOrdId`` is at most 32 characters."""

_ZERO = Decimal(0)
_UID_COMMANDS = (c.Deposit, c.Withdraw, c.PlaceOrder, c.CancelOrder, c.SetLeverage, c.AdjustMargin)


def _bad(field: str) -> Rejection:
    return errors.reject(errors.BAD_PARAMETER, f"Parameter {field} error")


def is_plain_int(value: object, low: int = 0, high: int = MAX_INT64) -> bool:
    """An ``int`` (not a ``bool``) within ``[low, high]``."""
    return type(value) is int and low <= value <= high


def is_finite_decimal(value: object) -> bool:
    """A finite ``Decimal`` (``NaN``, ``sNaN`` and infinities are not; nor are floats)."""
    return isinstance(value, Decimal) and value.is_finite()


def check_command_surface(cmd: object, settle_currencies: frozenset[str]) -> Rejection | None:
    """The fields every handler relies on: timestamps, uids, ids, enums and currencies.

    Uids are ≥ 1 (0 is the backstop vault's); a deposit or withdrawal names a settlement
    currency of the catalogue. Numbers are left to the ``parse_*`` functions. Orders and
    cancels, the commands that come by the thousand, have checks of their own, in the same
    order as the general ones.
    """
    checker = _ORDER_CHECKS.get(type(cmd))
    if checker is not None:
        return checker(cmd)
    if not is_plain_int(getattr(cmd, "ts", None)):
        return _bad("ts")
    if isinstance(cmd, _UID_COMMANDS) and not is_plain_int(cmd.uid, 1):
        return _bad("uid")
    for name in ("inst_id", "inst_family", "ccy", "inst_type"):
        if hasattr(cmd, name) and not isinstance(getattr(cmd, name), str):
            return _bad(name)
    if isinstance(cmd, c.Deposit | c.Withdraw) and cmd.ccy not in settle_currencies:
        return errors.reject(errors.BAD_PARAMETER, f"Currency {cmd.ccy[:16]!r} is not supported")
    if isinstance(cmd, c.SetLeverage) and not isinstance(cmd.mgn_mode, MarginMode):
        return _bad("mgnMode")
    return None


def _check_order_ids(cmd: c.PlaceOrder | c.CancelOrder) -> Rejection | None:
    """``ts``, ``uid`` and ``inst_id`` of an order or a cancel."""
    if not is_plain_int(cmd.ts):
        return _bad("ts")
    if not is_plain_int(cmd.uid, 1):
        return _bad("uid")
    if not isinstance(cmd.inst_id, str):
        return _bad("inst_id")
    return None


def _check_place_order(cmd: c.PlaceOrder) -> Rejection | None:
    refusal = _check_order_ids(cmd)
    if refusal is not None:
        return refusal
    if not isinstance(cmd.side, Side):
        return _bad("side")
    if not isinstance(cmd.ord_type, OrderType):
        return _bad("ordType")
    if not isinstance(cmd.td_mode, MarginMode):
        return _bad("tdMode")
    if not isinstance(cmd.stp_mode, SelfTradeMode):
        return _bad("stpMode")
    if type(cmd.reduce_only) is not bool:
        return _bad("reduceOnly")
    if not _is_cl_ord_id(cmd.cl_ord_id):
        return _bad("clOrdId")
    return None


def _check_cancel_order(cmd: c.CancelOrder) -> Rejection | None:
    refusal = _check_order_ids(cmd)
    if refusal is None and not is_plain_int(cmd.ord_id):  # 0: no such order (51400)
        return _bad("ordId")
    return refusal


_ORDER_CHECKS = {c.PlaceOrder: _check_place_order, c.CancelOrder: _check_cancel_order}


def _is_cl_ord_id(value: object) -> bool:
    """Empty, or up to 32 ASCII letters and digits (OKX)."""
    return isinstance(value, str) and (value == "" or (
        len(value) <= MAX_CL_ORD_ID and value.isascii() and value.isalnum()))


def parse_lots(inst: Instrument, sz: object) -> int | Rejection:
    """Size in contracts → lots: 51000 when not a positive decimal up to
    :data:`MAX_CONTRACTS`, 51121 off the lot grid, 51020 below the minimum."""
    if not is_finite_decimal(sz) or not _ZERO < sz <= MAX_CONTRACTS:  # type: ignore[operator]
        return _bad("sz")
    try:
        lots = to_units(sz, inst.lot_sz)  # type: ignore[arg-type]
    except NumericError:
        return errors.reject(errors.NOT_LOT_MULTIPLE,
                             f"Order quantity must be a multiple of the lot size {inst.lot_sz}")
    if lots < inst.min_lots:
        return errors.reject(errors.BELOW_MIN_SIZE,
                             f"Order amount should be greater than the min available amount {inst.min_sz}")
    return lots


def parse_ticks(inst: Instrument, px: object) -> int | Rejection:
    """Price → ticks: 51000 when missing, not positive, above :data:`MAX_PRICE`, or off the
    tick grid."""
    if not is_finite_decimal(px) or not _ZERO < px <= MAX_PRICE:  # type: ignore[operator]
        return _bad("px")
    try:
        return to_units(px, inst.tick_sz)  # type: ignore[arg-type]
    except NumericError:
        return errors.reject(errors.BAD_PARAMETER,
                             f"Parameter px error: not a multiple of tickSz {inst.tick_sz}")


def parse_index_ticks(inst: Instrument, px: object) -> int | Rejection:
    """An index price → ticks, rounded half-even to the instrument's tick (an index is not
    on any grid); 51000 when not positive, above :data:`MAX_PRICE`, or under one tick."""
    if not is_finite_decimal(px) or not _ZERO < px <= MAX_PRICE:  # type: ignore[operator]
        return _bad("px")
    ticks = int((px / inst.tick_sz).to_integral_value(rounding=ROUND_HALF_EVEN))  # type: ignore[operator]
    if ticks <= 0:
        return errors.reject(errors.BAD_PARAMETER, "Parameter px error: below one tick")
    return ticks


def parse_money(amount: object) -> int | Rejection:
    """A positive money amount with at most 8 decimals, up to :data:`MAX_MONEY` → units; 51000
    otherwise."""
    if not is_finite_decimal(amount) or not _ZERO < amount <= MAX_MONEY:  # type: ignore[operator]
        return _bad("amt")
    try:
        return to_units(amount, Decimal("0.00000001"))  # type: ignore[arg-type]
    except NumericError:
        return errors.reject(errors.BAD_PARAMETER, "Parameter amt error: more than 8 decimals")


def parse_signed_money(amount: object) -> int | Rejection:
    """A non-zero money amount of either sign (a margin adjustment) → signed units."""
    if not is_finite_decimal(amount):
        return _bad("amt")
    units = parse_money(abs(amount))  # type: ignore[arg-type]
    if isinstance(units, Rejection):
        return units
    return units if amount > 0 else -units  # type: ignore[operator]


def parse_lever(inst: Instrument, lever: object) -> int | Rejection:
    """Leverage → hundredths: 51000 outside [1, max lever] or with more than 2 decimals."""
    if not is_finite_decimal(lever) or lever < 1:  # type: ignore[operator]
        return _bad("lever")
    if lever > inst.max_lever:  # type: ignore[operator]
        return errors.reject(errors.BAD_PARAMETER, f"Leverage exceeds the maximum {inst.max_lever}")
    try:
        return to_units(lever, Decimal("0.01"))  # type: ignore[arg-type]
    except NumericError:
        return _bad("lever")
