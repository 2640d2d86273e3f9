"""Order sizing figures for ``account/max-size``, ``max-avail-size`` and ``max-withdrawal``.

The figures are the engine's (:func:`backstop.engine.queries.max_order_lots` mirrors the
engine's own order check); this module picks the price an order would meet and formats
nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from backstop.engine import queries
from backstop.engine.exchange import Exchange
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
    return max(0, queries.cross_figures(exchange.state, uid, inst.settle_ccy).available)


def max_size(exchange: Exchange, uid: int, inst: Instrument, mode: MarginMode, px_ticks: int | None,
             lever: int | None) -> MaxSize:
    """Largest buy and sell (lots) at ``px_ticks`` (else the price each would meet) and
    ``lever`` (cents; else the account's)."""

    def side_max(side: int) -> int:
        px = px_ticks if px_ticks is not None else reference_ticks(exchange, inst, side)
        return queries.max_order_lots(exchange.state, uid, inst, mode, side, px, lever)

    return MaxSize(side_max(BUY), side_max(SELL))


def max_withdrawal(exchange: Exchange, uid: int, ccy: str) -> int:
    """Cash that can leave the account now (money units)."""
    return queries.max_withdrawal(exchange.state, uid, ccy)
