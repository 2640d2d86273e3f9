"""Index and mark prices, and funding premium samples.

Mark = index + basis, where basis is an EMA of the book's (mid − index) in ticks, clamped to
``basis_clamp`` of the index (``mark`` policy). With an empty or one-sided book the sample is
0, so the mark drifts back to the index.
"""

from __future__ import annotations

from backstop.engine.config import EngineConfig
from backstop.engine.validation import parse_index_ticks
from backstop.math.funding import calculate_premium_e8
from backstop.model import errors
from backstop.model.commands import SetIndexPrice
from backstop.model.errors import Rejection
from backstop.model.events import Event, MarkPriceUpdated, Rejected
from backstop.model.instrument import Instrument
from backstop.numeric import PPM, div_floor
from backstop.state.exchange_state import ExchangeState


def set_index_price(state: ExchangeState, config: EngineConfig, cmd: SetIndexPrice) -> list[Event]:
    """Set every instrument of the family to the index (rounded half-even to its tick) and
    move its mark."""
    members = [i for i in state.catalogue if i.inst_family == cmd.inst_family]
    if not members:
        return [Rejected(cmd.ts, 0, "SetIndexPrice", errors.NO_SUCH_INSTRUMENT,
                         "Instrument family does not exist")]
    indices = [parse_index_ticks(i, cmd.px) for i in members]
    for index in indices:
        if isinstance(index, Rejection):
            return [Rejected(cmd.ts, 0, "SetIndexPrice", index.code, index.msg)]
    return [_apply_index(state, config, inst, index, cmd.ts) for inst, index in zip(members, indices,
                                                                                    strict=True)]


def _apply_index(state: ExchangeState, config: EngineConfig, inst: Instrument, index: int,
                 ts: int) -> MarkPriceUpdated:
    sample = _basis_sample(state, inst, index)
    weight = int(config.mark.smoothing * PPM)
    basis = state.basis_ticks[inst.inst_id]
    basis += div_floor((sample - basis) * weight, PPM)  # EMA step, rounded toward −∞
    limit = int(index * config.mark.basis_clamp)  # toward zero: the clamp never widens
    basis = max(-limit, min(limit, basis))
    mark = max(1, index + basis)
    state.basis_ticks[inst.inst_id] = basis
    state.index_ticks[inst.inst_id] = index
    state.mark_ticks[inst.inst_id] = mark
    if sample:
        state.premiums_e8[inst.inst_id].append(calculate_premium_e8(index + sample, index))
    return MarkPriceUpdated(ts, inst.inst_id, index, mark)


def _basis_sample(state: ExchangeState, inst: Instrument, index: int) -> int:
    """(best bid + best ask) / 2 − index in ticks (floor), or 0 without a two-sided book."""
    book = state.books[inst.inst_id]
    bid, ask = book.best_bid(), book.best_ask()
    if bid is None or ask is None:
        return 0
    return div_floor(bid + ask, 2) - index
