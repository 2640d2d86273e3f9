"""OKX's ``adl`` indicator per position (``state.adl_rank``), refreshed by each risk pass for
the instruments whose mark moved.

0 when the position is not profitable (it is never deleveraged), else 1–5 by quintile of the
ranking score among its instrument and side's profitable positions (5 is the front), scores
compared as floats (a display figure; the ADL queue itself ranks exact fractions), ties in
the order the positions were opened. Random and pro-rata policies show the OKX score.

Two ways, with the same indicators (the lockstep tests compare them): the exact scan builds
every position's candidate; the screened refresh ranks the screen's float scores, each with
an error bound, and builds exact candidates only for positions whose profitability or rank
at a quintile boundary the bound leaves open. It writes only the indicators that change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backstop.engine.adl import FiguresCache, build_candidates, position_candidate
from backstop.engine.config import AdlRanking, EngineConfig
from backstop.engine.screen import EPS_REL, RiskScreen
from backstop.engine.screen_pool import SlotPool
from backstop.engine.unit_finder import OpeningOrder, UnitFinder
from backstop.math.adl import calculate_adl_score, calculate_quintiles
from backstop.math.values import calculate_upl
from backstop.model.enums import MarginMode
from backstop.model.instrument import Instrument
from backstop.state.exchange_state import ExchangeState
from backstop.state.positions import PositionKey


def display_ranking(config: EngineConfig) -> AdlRanking:
    """The ranking the indicator shows: the configured one, or OKX's for queue-only
    policies."""
    queue_only = (AdlRanking.RANDOM, AdlRanking.PRO_RATA)
    return AdlRanking.OKX if config.adl.ranking in queue_only else config.adl.ranking


def refresh_adl_indicators(state: ExchangeState, config: EngineConfig, finder: UnitFinder,
                           moved: set[str] | None) -> None:
    """Refresh the indicators of every instrument in ``moved`` (every one when ``None``)
    that has open positions: from the screen when the pass used one and the score is OKX's
    (vectorised, exact only where the float bound leaves a rank open), else by the exact
    scan."""
    ranking = display_ranking(config)
    screen = finder.screen_after_pass(state)
    if screen is not None and ranking == AdlRanking.OKX:
        for inst in state.catalogue:
            if moved is None or inst.inst_id in moved:
                _refresh_screened(state, ranking, screen, inst, finder.opening_order)
        return
    held = {p.inst_id for p in state.positions.values()}
    figures: FiguresCache = {}
    for inst in state.catalogue:
        if inst.inst_id in held and (moved is None or inst.inst_id in moved):
            refresh_instrument(state, config, inst, figures)


def refresh_instrument(state: ExchangeState, config: EngineConfig, inst: Instrument,
                       figures: FiguresCache | None = None) -> None:
    """The exact scan for one instrument: both sides, every position."""
    ranking = display_ranking(config)
    for side in (1, -1):
        everyone = build_candidates(state, inst, side, figures=figures)
        candidates = [c for c in everyone if c.upl > 0]
        for c in everyone:
            if c.upl <= 0:
                state.adl_rank[(c.uid, c.inst_id, MarginMode(c.mgn_mode))] = 0
        scores = [float(calculate_adl_score(ranking, c)) for c in candidates]
        for c, quintile in zip(candidates, calculate_quintiles(scores), strict=True):
            state.adl_rank[(c.uid, c.inst_id, MarginMode(c.mgn_mode))] = quintile


# ---- the screened refresh ---------------------------------------------------------------------
_U = 2.0**-50
"""Relative error allowed per float operation on a figure (a few ulps, generously)."""
_WIDE = 0.01
"""A score whose float error bound passes this share is not bounded: it is ranked exactly."""


@dataclass(slots=True)
class _Side:
    """One instrument side's open positions from the screen (isolated slots, then cross): the
    indicator shown now and their float figures (money units)."""

    screen: RiskScreen
    pools: list[tuple[SlotPool, np.ndarray]]
    shown: np.ndarray
    upl: np.ndarray
    upl_err: np.ndarray
    score: np.ndarray
    score_err: np.ndarray

    def __len__(self) -> int:
        return len(self.shown)

    def locate(self, i: int) -> tuple[SlotPool, int]:
        pool, slots = self.pools[0]
        if i >= len(slots):
            i -= len(slots)
            pool, slots = self.pools[1]
        return pool, int(slots[i])

    def key(self, i: int) -> PositionKey:
        return self.screen.key_of_slot(*self.locate(i))  # type: ignore[return-value]


def _refresh_screened(state: ExchangeState, ranking: AdlRanking, screen: RiskScreen,
                      inst: Instrument, opening: OpeningOrder) -> None:
    """One instrument, both sides, from the screen's arrays: float scores with an error bound
    each; exact figures only where the bound leaves the answer open; ``state.adl_rank``
    written only where the indicator changes."""
    mark = state.mark_ticks[inst.inst_id]
    iso_slots, cross_slots = screen.slots_of_instrument(inst.inst_id)
    cache: FiguresCache = {}
    for sign in (1, -1):
        side = _side(screen, inst, mark, sign, iso_slots, cross_slots)
        if not len(side):
            continue
        exact = _Exact(state, ranking, inst, mark, side, cache)
        quintiles = _side_quintiles(state, side, exact, opening)
        changed = np.flatnonzero(quintiles != side.shown)
        n_iso = len(side.pools[0][1])
        for part, (pool, slots) in enumerate(side.pools):
            mine = changed[changed < n_iso] if part == 0 else changed[changed >= n_iso]
            if len(mine):
                where = slots[mine - (0 if part == 0 else n_iso)]
                pool.shown[where] = quintiles[mine]
                state.adl_rank.update(zip(screen.keys_of_slots(pool, where), quintiles[mine].tolist(),
                                          strict=True))


class _Exact:
    """Exact ``(upl, float score)`` of a side's positions, as :func:`refresh_instrument` gets
    them, memoised; isolated positions with the same lots, cost and margin score alike, so
    they share one computation."""

    def __init__(self, state: ExchangeState, ranking: AdlRanking, inst: Instrument, mark: int,
                 side: _Side, cache: FiguresCache) -> None:
        self.state, self.ranking, self.inst, self.mark = state, ranking, inst, mark
        self.side, self.cache = side, cache
        self.scores: dict[int, float] = {}
        self._alike: dict[tuple[int, int, int], tuple[int, float]] = {}

    def upl(self, i: int) -> int:
        """The exact upl alone (cheap: no account figures)."""
        pool, slot = self.side.locate(i)
        return calculate_upl(self.inst, int(pool.lots[slot]), int(pool.cost[slot]), self.mark)

    def __call__(self, i: int) -> tuple[int, float]:
        pool, slot = self.side.locate(i)
        alike = None
        if pool is self.side.screen.iso:
            alike = (int(pool.lots[slot]), int(pool.cost[slot]), int(pool.margin[slot]))
            found = self._alike.get(alike)
            if found is not None:
                self.scores[i] = found[1]
                return found
        cand = position_candidate(self.state, self.inst, self.state.positions[self.side.key(i)], self.mark,
                          self.cache)
        result = (cand.upl, float(calculate_adl_score(self.ranking, cand)))
        if alike is not None:
            self._alike[alike] = result
        self.scores[i] = result[1]
        return result


def _side_quintiles(state: ExchangeState, side: _Side, exact: _Exact,
                    opening: OpeningOrder) -> np.ndarray:
    """Each position's indicator: 0 unless profitable, else its quintile by (score, order
    opened), as :func:`refresh_instrument` gives it."""
    profitable = side.upl - side.upl_err > 0
    for i in np.flatnonzero(~profitable & (side.upl + side.upl_err > 0)).tolist():
        profitable[i] = exact.upl(i) > 0
    members = np.flatnonzero(profitable)
    lo, hi = side.score[members] - side.score_err[members], side.score[members] + side.score_err[members]
    if exact.scores:
        known = np.array([i for i in exact.scores if profitable[i]], dtype=np.int64)
        at = np.searchsorted(members, known)
        lo[at] = hi[at] = [exact.scores[i] for i in known.tolist()]
    n = len(members)
    sorted_lo, sorted_hi = np.sort(lo), np.sort(hi)
    could_precede = np.searchsorted(sorted_lo, hi, side="right") - 1  # others possibly ≤ it
    surely_precede = np.searchsorted(sorted_hi, lo, side="left")  # others surely < it
    passed = np.zeros(n, dtype=np.int64)  # quintile boundaries b_j = ⌊j·n/5⌋ with rank ≥ b_j
    for j in range(1, 5):
        b = j * n // 5
        sure_in, sure_out = could_precede < b, surely_precede >= b
        passed += sure_out
        open_ = np.flatnonzero(~sure_in & ~sure_out)
        if len(open_):
            passed[open_] += _exact_behind(state, side, members[open_], b - int(sure_in.sum()),
                                           exact, opening)
    out = np.zeros(len(side), dtype=np.int64)
    out[members] = 1 + passed  # = ⌈(rank + 1)·5/n⌉
    return out


def _exact_behind(state: ExchangeState, side: _Side, open_: np.ndarray, places: int, exact: _Exact,
                  opening: OpeningOrder) -> np.ndarray:
    """Of the undecided positions ``open_``, which are not among the first ``places`` by exact
    (score, order opened): 1 for those behind the boundary."""
    scores = [exact.scores[i] if i in exact.scores else exact(i)[1] for i in open_.tolist()]
    keys = [side.key(i) for i in open_.tolist()]
    order_opened = opening.of(state, keys) if len(set(scores)) < len(scores) else {}
    ranked = sorted(range(len(open_)), key=lambda j: (scores[j], order_opened.get(keys[j], 0)))
    behind = np.ones(len(open_), dtype=np.int64)
    behind[ranked[:places]] = 0
    return behind


def _side(screen: RiskScreen, inst: Instrument, mark: int, sign: int, iso_slots: np.ndarray,
          cross_slots: np.ndarray) -> _Side:
    """OKX score ``upl/max(margin, 1) · notional/max(equity, 1)`` in floats, each with an
    absolute error bound (``inf`` where it is not bounded)."""
    pools, parts = [], []
    for pool, slots in ((screen.iso, iso_slots), (screen.cross, cross_slots)):
        slots = slots[np.sign(pool.lots[slots]) == sign]
        pools.append((pool, slots))
        sk, cost = pool.sk[slots], pool.cost[slots].astype(np.float64)
        value = sk * float(mark) if inst.is_linear else -sk / float(mark)
        upl = value - cost
        upl_err = _U * (np.abs(value) + np.abs(cost)) + 2.0
        notional = np.abs(value)
        notional_err = _U * notional + 1.0
        if pool is screen.iso:
            margin = pool.margin[slots].astype(np.float64)
            margin_err = _U * margin
            equity, equity_err = margin + upl, upl_err + _U * margin
        else:
            margin = notional * 100.0 / pool.lever[slots]
            margin_err = _U * margin + 1.0
            books = pool.acct[slots]
            equity = screen.book_equity[books]
            equity_err = EPS_REL * screen.book_scale[books] + 2.0 * screen.cross_count(books)
        parts.append((upl, upl_err, notional, notional_err, margin, margin_err, equity, equity_err))
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    upl, upl_err, notional, notional_err, margin, margin_err, equity, equity_err = cols
    score = upl / np.maximum(margin, 1.0) * (notional / np.maximum(equity, 1.0))
    rel = (_relative(upl, upl_err, 0.0) + _relative(margin, margin_err, 1.0)
           + _relative(notional, notional_err, 0.0) + _relative(equity, equity_err, 1.0) + 8 * _U)
    score_err = np.where(rel < _WIDE, np.abs(score) * np.minimum(rel, _WIDE) * 1.25, np.inf)
    shown = np.concatenate([pool.shown[slots] for pool, slots in pools]).astype(np.int64)
    return _Side(screen, pools, shown, upl, upl_err, score, score_err)


def _relative(x: np.ndarray, err: np.ndarray, floor: float) -> np.ndarray:
    """Relative error bound of ``max(x, floor)`` (or of ``x`` when ``floor`` is 0): ``inf``
    unless ``x − err`` is surely above ``floor``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x - err > floor, err / (x - err), np.inf)
