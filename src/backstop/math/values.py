"""Contract values in money units (1e-8 of the settlement currency).

Sign convention: a position has signed lots ``size_lots`` (+ long, − short) and a signed cost
basis ``cost`` in money units, the sum of :func:`calculate_fill_value` over the fills that
opened it. For both contract types a long gains when the price rises, and
``upl = value_at(size, mark) − cost``.
"""

from __future__ import annotations

from backstop.model.instrument import Instrument
from backstop.numeric import div_ceil, div_floor


def calculate_fill_value(inst: Instrument, signed_lots: int, px_ticks: int) -> int:
    """Signed value of a fill, shared by both parties (buyer +v, seller −v).

    Linear: ``lots · ticks · k`` (exact). Inverse: ``−lots · k / ticks``, rounded toward minus
    infinity; the one rounded figure is used by both sides, so the pair sums to zero exactly.
    """
    if inst.is_linear:
        return signed_lots * px_ticks * inst.value_k
    return div_floor(-signed_lots * inst.value_k, px_ticks)


def calculate_fill_shortfall(inst: Instrument, fills: list[tuple[int, int]], position_sign: int,
                            ref_ticks: int) -> int:
    """How much less the closing ``fills`` (``(lots, ticks)``) of a position of sign
    ``position_sign`` bring than closing the same lots at ``ref_ticks``: a long sells, so
    ``Σ value(lots, ref) − value(lots, px)``; a short buys back, so the reverse. Exact (each
    fill value as :func:`backstop.math.values.calculate_fill_value` rounds it); 0 when the
    fills are no worse."""
    gap = sum(calculate_fill_value(inst, lots, ref_ticks) - calculate_fill_value(inst, lots, px)
              for lots, px in fills)
    return max(0, gap if position_sign > 0 else -gap)


def calculate_value_at(inst: Instrument, signed_lots: int, px_ticks: int) -> int:
    """Signed value of a position at a price, for its unrealized PnL.

    Inverse rounds toward minus infinity, which is against the holder: their PnL never reads
    higher than exact.
    """
    return calculate_fill_value(inst, signed_lots, px_ticks)


def calculate_notional(inst: Instrument, lots: int, px_ticks: int) -> int:
    """Absolute notional of ``|lots|`` at a price, in money units; inverse rounds up
    (requirements computed on it are never understated)."""
    lots = abs(lots)
    if inst.is_linear:
        return lots * px_ticks * inst.value_k
    return div_ceil(lots * inst.value_k, px_ticks)


def calculate_upl(inst: Instrument, size_lots: int, cost: int, mark_ticks: int) -> int:
    """Unrealized PnL in money units: ``value_at(size, mark) − cost``."""
    if size_lots == 0:
        return 0
    return calculate_value_at(inst, size_lots, mark_ticks) - cost


def calculate_removed_cost(cost: int, size_lots: int, closed_lots: int) -> int:
    """Share of the cost basis taken out when ``closed_lots`` (0 < closed ≤ |size|) close.

    Rounds toward minus infinity on the signed figure; the remainder stays in the basis, so the
    basis is emptied exactly when the position is.
    """
    if closed_lots == abs(size_lots):
        return cost
    return div_floor(cost * closed_lots, abs(size_lots))


def calculate_avg_px_ticks_num_den(inst: Instrument, size_lots: int, cost: int) -> tuple[int, int]:
    """Average open price as an exact fraction ``(numerator, denominator)`` in ticks.

    Linear: cost / (size · k). Inverse: −size · k / cost.
    """
    if inst.is_linear:
        return cost, size_lots * inst.value_k
    return -size_lots * inst.value_k, cost
