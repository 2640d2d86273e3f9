"""OKX's ``adl`` indicator per position (``state.adl_rank``), refreshed by each risk pass for
the instruments whose mark moved.

0 when the position is not profitable (it is never deleveraged), else 1–5 by quintile of the
ranking score among its instrument and side's profitable positions (5 is the front), scores
compared as floats (a display figure; the ADL queue itself ranks exact fractions), ties in
the order the positions were opened. Random and pro-rata policies show the OKX score.
"""

from __future__ import annotations

from backstop.engine.adl import FiguresCache, build_candidates
from backstop.engine.config import AdlRanking, EngineConfig
from backstop.engine.unit_finder import UnitFinder
from backstop.math.adl import calculate_adl_score, calculate_quintiles
from backstop.model.enums import MarginMode
from backstop.model.instrument import Instrument
from backstop.state.exchange_state import ExchangeState


def display_ranking(config: EngineConfig) -> AdlRanking:
    """The ranking the indicator shows: the configured one, or OKX's for queue-only
    policies."""
    queue_only = (AdlRanking.RANDOM, AdlRanking.PRO_RATA)
    return AdlRanking.OKX if config.adl.ranking in queue_only else config.adl.ranking


def refresh_adl_indicators(state: ExchangeState, config: EngineConfig, finder: UnitFinder,
                           moved: set[str] | None) -> None:
    """Refresh the indicators of every instrument in ``moved`` (every one when ``None``)
    that has open positions."""
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
