"""Auto-deleveraging: close ranked, profitable opposite positions against a bankrupt one.

ADL runs only while the instrument's fund is in a recorded ADL state (the liquidation
waterfall records the trigger first). Trades are matched directly (not through the book), with
no fees, and never for more lots than the liquidated slice needs, so open interest falls by
exactly the lots closed.

ADL haircuts profit, never principal. The liquidation picks a base price between the mark and
the liquidated position's own bankruptcy price on that instrument
(:func:`backstop.engine.liquidation.adl_base_price`); each winner then closes at that price
clamped so that it never passes the winner's own entry price, so it realizes no loss on the
slice and never gives up margin or cash. Only positions profitable at the mark take part
(for any other no such price exists). What the winners' profits do not cover stays with the
liquidated unit's deficit and goes down the waterfall.
"""

from __future__ import annotations

import heapq

from backstop.engine.config import AdlHaircut, AdlRanking, EngineConfig, WaterfallStep
from backstop.engine.haircut import deleverage_by_haircut
from backstop.engine.queries import (
    CrossFigures,
    cross_figures,
    isolated_margin,
    lever_cents,
    mm_entry_notional,
)
from backstop.engine.settlement import apply_direct_trade
from backstop.math.adl import AdlCandidate, adl_rank_key, allocate_pro_rata, rank_candidates
from backstop.math.margin import calculate_initial_margin, calculate_maintenance_margin
from backstop.math.values import (
    calculate_avg_px_ticks_num_den,
    calculate_fill_value,
    calculate_notional,
    calculate_removed_cost,
    calculate_upl,
)
from backstop.model.enums import MarginMode
from backstop.model.events import AutoDeleveraged, Event
from backstop.model.instrument import Instrument
from backstop.numeric import div_ceil, div_floor
from backstop.state.exchange_state import ExchangeState
from backstop.state.positions import Position

FiguresCache = dict[tuple[int, str], CrossFigures]
"""Cross figures by ``(uid, ccy)``, valid while the state does not change."""


def build_candidates(state: ExchangeState, inst: Instrument, side_sign: int,
                     exclude_uid: int | None = None,
                     figures: FiguresCache | None = None) -> list[AdlCandidate]:
    """Every open position in ``inst`` whose size has the sign ``side_sign``."""
    mark = state.mark_ticks[inst.inst_id]
    figures = {} if figures is None else figures  # one cross computation per account
    out = []
    for pos in state.positions.values():
        if pos.inst_id != inst.inst_id or pos.size_lots * side_sign <= 0 or pos.uid == exclude_uid:
            continue
        out.append(position_candidate(state, inst, pos, mark, figures))
    return out


def position_candidate(state: ExchangeState, inst: Instrument, pos: Position, mark: int,
                       cross_cache: FiguresCache) -> AdlCandidate:
    """``pos`` as an ADL candidate at ``mark``: the ranking inputs, exact (money units)."""
    upl = calculate_upl(inst, pos.size_lots, pos.cost, mark)
    notional = calculate_notional(inst, pos.size_lots, mark)
    if pos.is_isolated:
        margin = wallet = isolated_margin(state, pos, inst)
        equity = margin + upl
    else:
        figures = cached_cross_figures(state, cross_cache, pos.uid, inst.settle_ccy)
        margin = calculate_initial_margin(notional, lever_cents(state, pos.uid, inst, pos.mgn_mode))
        wallet, equity = figures.cash, figures.equity
    entry_num, entry_den = calculate_avg_px_ticks_num_den(inst, pos.size_lots, pos.cost)
    return AdlCandidate(pos.uid, pos.inst_id, pos.mgn_mode.value, pos.size_lots, upl, margin, equity,
                        notional, calculate_maintenance_margin(inst, pos.size_lots, mark,
                                                               mm_entry_notional(inst, pos)), wallet,
                        mark, abs(entry_num), abs(entry_den) or 1, pos.cost)


def cached_cross_figures(state: ExchangeState, cache: FiguresCache, uid: int,
                         ccy: str) -> CrossFigures:
    figures = cache.get((uid, ccy))
    if figures is None:
        figures = cache[(uid, ccy)] = cross_figures(state, uid, ccy)
    return figures


def deleverage(state: ExchangeState, config: EngineConfig, inst: Instrument, liquidated: Position,
               lots: int, base_ticks: int, ts: int) -> tuple[int, list[Event]]:
    """Close up to ``lots`` of ``liquidated`` against ranked winners at ``base_ticks``, each
    clamped to its own entry price.

    Returns the lots closed (less than ``lots`` only when profitable winners run out) and the
    events.
    """
    fund = state.funds[state.fund_of[inst.inst_id]]
    assert fund.adl_state, f"Invariant: ADL on {inst.inst_id} without a recorded ADL state"
    if config.adl.haircut != AdlHaircut.NONE:  # winners keep their positions, pay from profit
        return deleverage_by_haircut(state, config, inst, liquidated, lots, base_ticks, ts)
    close_side = -1 if liquidated.size_lots > 0 else 1
    queue = _ranked_queue(state, config, inst, close_side)
    front = queue.skip_closed(state, WaterfallStep.VAULT not in config.waterfall.order)
    if config.adl.ranking == AdlRanking.PRO_RATA:
        ranked = [c for c in queue[front:] if _is_closable(state, c, liquidated.uid)]
        sizes = [_live_lots(state, c) for c in ranked]
        wanted = min(lots, sum(sizes))
        takes = allocate_pro_rata(wanted, sizes)
    else:
        ranked, takes = _front_of_queue(state, queue, front, liquidated.uid, lots)
        wanted = sum(takes)
    events: list[Event] = []
    for cand, take in zip(ranked, takes, strict=True):
        if take:
            events.extend(_adl_trade(state, inst, liquidated.uid, liquidated.mgn_mode, close_side,
                                     cand, take, base_ticks, ts))
    return wanted, events


def _is_closable(state: ExchangeState, cand: AdlCandidate, exclude_uid: int) -> bool:
    """A live position of another account, profitable at the mark now."""
    if cand.uid == exclude_uid:
        return False
    pos = state.positions.get((cand.uid, cand.inst_id, MarginMode(cand.mgn_mode)))
    if pos is None or pos.size_lots * cand.size_lots <= 0:
        return False
    inst = state.catalogue.instruments[cand.inst_id]  # type: ignore[index]
    return calculate_upl(inst, pos.size_lots, pos.cost, state.mark_ticks[cand.inst_id]) > 0


def _front_of_queue(state: ExchangeState, queue: RankedQueue, front: int, exclude_uid: int,
                    lots: int) -> tuple[list[AdlCandidate], list[int]]:
    """Walk the queue from ``front`` (no entry before it is live), taking closable live lots
    until ``lots`` are covered."""
    ranked, takes, left, i = [], [], lots, front
    while left and queue.reach(i):
        cand = queue[i]
        if _is_closable(state, cand, exclude_uid):
            take = min(_live_lots(state, cand), left)
            ranked.append(cand)
            takes.append(take)
            left -= take
        i += 1
    return ranked, takes


class RankedQueue(list[AdlCandidate]):
    """One instrument side's ranked candidates, first to be deleveraged first, with the index
    ``front`` before which every entry's position is closed or turned over (``_live_lots`` 0),
    valid while no book trade has happened since ``trade_id`` (``state.next_trade_id``).

    Within a risk pass only a fill can reopen a position on the queue's side: ADL trades only
    reduce the winners and the liquidated unit, and every book fill takes a trade id; a vault
    takeover adds exposure on the liquidated side, which can reopen the vault's own position on
    the other side's queue without one, so with a vault step the front is found from the start
    each time. Later entries are checked live each slice as before (positions that changed, the
    liquidated account's own), so the order and the takes are the queue's exactly.

    A scored ranking is kept as a heap of :func:`~backstop.math.adl.adl_rank_key` and ranked
    only as far as the slices read (:meth:`reach`): the same order as the full sort, since the
    key is total, at O(log n) per entry read instead of a sort of the whole side."""

    __slots__ = ("_pending", "front", "trade_id")

    def __init__(self, ranked: list[AdlCandidate],
                 pending: list[tuple[tuple, AdlCandidate]] | None = None) -> None:
        super().__init__(ranked)
        self._pending = pending or []
        heapq.heapify(self._pending)
        self.front = 0
        self.trade_id = 0

    def reach(self, i: int) -> bool:
        """Whether the queue has an entry at index ``i``, ranking pending candidates up to it."""
        pending = self._pending
        while len(self) <= i and pending:
            self.append(heapq.heappop(pending)[1])
        return i < len(self)

    def skip_closed(self, state: ExchangeState, keep_front: bool) -> int:
        """Advance ``front`` past closed entries (from the start again after a book trade, or
        when not ``keep_front``) and return it; amortised O(1) per closed winner."""
        if not keep_front or self.trade_id != state.next_trade_id:
            self.front = 0
        front = self.front
        while self.reach(front) and _live_lots(state, self[front]) == 0:
            front += 1
        self.front, self.trade_id = front, state.next_trade_id
        return front


def _ranked_queue(state: ExchangeState, config: EngineConfig, inst: Instrument,
                  close_side: int) -> RankedQueue:
    """The ranked queue of one instrument's side, built once per risk pass (the mark is fixed
    within it, as OKX's queue is published per interval) and cleared by the pass."""
    key = (inst.inst_id, close_side)
    queue = state.adl_queues.get(key)
    if queue is None:
        ranking, candidates = config.adl.ranking, build_candidates(state, inst, close_side)
        if ranking in (AdlRanking.RANDOM, AdlRanking.PRO_RATA):  # read whole: ranked whole
            queue = RankedQueue(rank_candidates(ranking, candidates, state.adl_rng))
        else:
            queue = RankedQueue([], [(adl_rank_key(ranking, c), c) for c in candidates])
        state.adl_queues[key] = queue
    return queue  # type: ignore[return-value]  # the pass stores only RankedQueue here


def _live_lots(state: ExchangeState, cand: AdlCandidate) -> int:
    """What is left of a queued position now (earlier slices of the pass may have closed
    part of it); 0 when it is gone or turned over."""
    pos = state.positions.get((cand.uid, cand.inst_id, MarginMode(cand.mgn_mode)))
    if pos is None or pos.size_lots * cand.size_lots <= 0:
        return 0
    return abs(pos.size_lots)


def calculate_winner_ticks(inst: Instrument, winner: Position, lots: int, base_ticks: int,
                           mark_ticks: int) -> int:
    """The price a winner closes ``lots`` at: ``base_ticks``, but never past its entry, so
    the slice realizes no loss (a short buys back at most at its entry, rounded down; a long
    sells at least at its entry, rounded up). If a value's rounding would still leave a loss
    of one unit, the price steps toward the mark, where the winner is in profit."""
    entry_num, entry_den = calculate_avg_px_ticks_num_den(inst, winner.size_lots, winner.cost)
    long = winner.size_lots > 0
    if long:
        px = max(base_ticks, div_ceil(entry_num, entry_den))
    else:
        px = min(base_ticks, div_floor(entry_num, entry_den))
    removed = calculate_removed_cost(winner.cost, winner.size_lots, lots)
    sign = 1 if long else -1  # the winner's realized PnL is sign·value(lots, px) − removed cost
    while px != mark_ticks and sign * calculate_fill_value(inst, lots, px) - removed < 0:
        px += sign
    return px


def _adl_trade(state: ExchangeState, inst: Instrument, uid: int, mode: MarginMode, close_side: int,
               cand: AdlCandidate, take: int, base_ticks: int, ts: int) -> list[Event]:
    winner = state.positions[(cand.uid, cand.inst_id, MarginMode(cand.mgn_mode))]
    mark = state.mark_ticks[inst.inst_id]
    px_ticks = calculate_winner_ticks(inst, winner, take, base_ticks, mark)
    # the winner's profit given up against closing at the mark: it trades in ``-close_side``;
    # negative when the ADL price is better for it than the mark
    fill_value = calculate_fill_value(inst, take, px_ticks)
    mark_value = calculate_fill_value(inst, take, mark)
    upl_taken = close_side * (mark_value - fill_value)
    first, second = apply_direct_trade(state, inst, (uid, mode), close_side,
                                       (cand.uid, MarginMode(cand.mgn_mode)), take, px_ticks, ts)
    assert second.realized_pnl >= 0, \
        f"Invariant: ADL made {cand.uid} realize a loss of {-second.realized_pnl} on {inst.inst_id}"
    return [first, second, AutoDeleveraged(ts, cand.uid, inst.inst_id, cand.mgn_mode, take, px_ticks,
                                           uid, upl_taken)]
