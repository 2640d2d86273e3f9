"""Order sizing figures for ``account/max-size``, ``max-avail-size`` and ``max-withdrawal``.

The engine's order check (:mod:`backstop.engine.orders`) refuses an order when the IM of
the exposure it opens plus its taker fee exceeds the account's available equity; a close
needs nothing. So the largest buy closes the whole short, then opens what the available
equity pays for at the price and leverage (IM and fee each rounded up, the size rounded
down: an order of this size passes the check).

This is the one api module that imports :mod:`backstop.math` (``calculate_max_open_lots``),
until the engine's query module offers the figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from backstop.engine.exchange import Exchange
from backstop.engine.queries import cross_figures, lever_cents
from backstop.math.margin import calculate_max_open_lots
from backstop.model.enums import MarginMode
from backstop.model.instrument import Instrument

BUY, SELL = 1, -1


@dataclass(frozen=True, slots=True)
class MaxSize:
    """Lots per side."""

    buy: int
    sell: int


def reference_ticks(exchange: Exchange, inst: Instrument, side: int) -> int:
    """The price a market order of ``side`` meets first: the best opposite level, else the
    mark."""
    levels = exchange.state.books[inst.inst_id].depth(-side, 1)
    return levels[0][0] if levels else exchange.state.mark_ticks[inst.inst_id]


def available(exchange: Exchange, uid: int, inst: Instrument) -> int:
    """The equity new exposure can use (money units): OKX ``availEq`` of the currency."""
    return max(0, cross_figures(exchange.state, uid, inst.settle_ccy).available)


def max_size(exchange: Exchange, uid: int, inst: Instrument, mode: MarginMode, px_ticks: int | None,
             lever: int | None, position_lots: int) -> MaxSize:
    """Largest buy and sell (lots) at ``px_ticks`` (else the price each would meet) and
    ``lever`` (cents; else the account's)."""
    cents = lever if lever is not None else lever_cents(exchange.state, uid, inst, mode)
    money = available(exchange, uid, inst)

    def side_max(side: int) -> int:
        px = px_ticks if px_ticks is not None else reference_ticks(exchange, inst, side)
        closing = abs(position_lots) if position_lots * side < 0 else 0
        return closing + calculate_max_open_lots(inst, money, px, cents, inst.taker_fee_ppm)

    return MaxSize(side_max(BUY), side_max(SELL))


def max_withdrawal(exchange: Exchange, uid: int, ccy: str) -> int:
    """Cash that can leave the account now (money units)."""
    return cross_figures(exchange.state, uid, ccy).max_withdrawal
