"""Index and mark prices. The mark follows the index exactly for now; a smoothed basis is a
later policy."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN

from backstop.model import errors
from backstop.model.commands import SetIndexPrice
from backstop.model.events import Event, MarkPriceUpdated, Rejected
from backstop.state.exchange_state import ExchangeState


def set_index_price(state: ExchangeState, cmd: SetIndexPrice) -> list[Event]:
    """Set every instrument of the family to the index, rounded half-even to its tick."""
    members = [i for i in state.catalogue if i.inst_family == cmd.inst_family]
    if not members:
        return [Rejected(cmd.ts, 0, "SetIndexPrice", errors.NO_SUCH_INSTRUMENT,
                         "Instrument family does not exist")]
    if not cmd.px.is_finite() or cmd.px <= 0:
        return [Rejected(cmd.ts, 0, "SetIndexPrice", errors.BAD_PARAMETER, "Parameter px error")]
    events: list[Event] = []
    for inst in members:
        ticks = int((cmd.px / inst.tick_sz).to_integral_value(rounding=ROUND_HALF_EVEN))
        if ticks <= 0:
            return [Rejected(cmd.ts, 0, "SetIndexPrice", errors.BAD_PARAMETER,
                             "Parameter px error: below one tick")]
        events.append(MarkPriceUpdated(cmd.ts, inst.inst_id, ticks, ticks))
    for event in events:
        state.index_ticks[event.inst_id] = event.index_ticks
        state.mark_ticks[event.inst_id] = event.mark_ticks
    return events
