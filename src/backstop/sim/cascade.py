"""Endogenous cascades for the exact engine: the feedback state of one instrument along a path.

The rule is :mod:`backstop.sim.feedback`'s (its docstring has the equations); this module only
keeps its state between the index updates the engine receives and turns it into exact ticks:

- ``flow_usd`` (``Q``): forced flow not yet absorbed, signed (buys > 0), USD. Every liquidation
  fill and every ADL close the engine reports adds to it (:func:`forced_flow_usdt`); it decays
  with ``half_life_s`` between updates (:meth:`Cascade.advance`).
- ``variance``: the annualised EWMA variance of the *observed* index (exogenous × impact), updated
  once per bar with the bar's close-to-close log return (the fit used 1-minute closes); it starts
  at ``vol_ref²``, the edge of a calm book (share 1), as the fast path's does.
- The depth that the flow is measured against is ``depth_usd × depth_share(σ)``; ``depth_usd`` is
  the instrument's calm 1 % depth scaled to the population
  (:meth:`~backstop.sim.feedback.FeedbackParams.depth_for_population`: the population's flow meets
  the book the way the whole market's flow met the real one, as the maker's ladder does), times a
  liquidity multiplier for what-ifs.
- The index the engine gets is ``exogenous × exp(impact)`` on the tick, the impact **rounded
  toward the exogenous price** (:meth:`Cascade.observed_ticks`): an impact smaller than a tick
  moves nothing, and a decayed impact returns exactly to the replayed path.

Floats only: the ticks produced are inputs to the exact engine; nothing settles on a float.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from backstop.model.events import AutoDeleveraged, Event, Filled
from backstop.sim import feedback as fb


@dataclass
class Cascade:
    """The feedback state; ``params`` the instrument's, ``depth_usd`` the scaled calm 1 % depth.

    ``t_ms`` is the time of the last update seen (epoch ms); ``close_log`` the log of the last
    bar's observed close (``None`` before the first bar); ``deepest_impact`` the largest ``|impact|``
    so far (at :data:`~backstop.sim.feedback.MAX_IMPACT_LOG` the cascade ran into the rule's cap)."""

    params: fb.FeedbackParams
    depth_usd: float
    flow_usd: float = 0.0
    variance: float = 0.0
    t_ms: int | None = None
    close_log: float | None = None
    deepest_impact: float = 0.0

    @classmethod
    def for_population(cls, params: fb.FeedbackParams, gross_notional_usd: float,
                       liquidity_multiplier: float = 1.0) -> Cascade:
        """The state at the start of a path, the calm depth scaled to a population of
        ``gross_notional_usd`` and times ``liquidity_multiplier``."""
        return cls(params, params.depth_for_population(gross_notional_usd) * liquidity_multiplier,
                   variance=params.vol_ref ** 2)

    @property
    def realized_vol(self) -> float:
        """Annualised realized volatility of the observed index (EWMA)."""
        return math.sqrt(self.variance)

    @property
    def share(self) -> float:
        """Share of the calm depth still resting (makers withdraw as volatility rises)."""
        p = self.params
        return fb.depth_share(self.realized_vol, p.vol_ref, p.withdrawal_elasticity, p.min_depth_share)

    @property
    def impact(self) -> float:
        """Log displacement of the index by the outstanding flow against the resting depth."""
        return fb.impact_log_return(self.flow_usd, self.depth_usd * self.share, self.params.impact_exponent)

    def advance(self, t_ms: int) -> None:
        """Let the outstanding flow decay from the last update to ``t_ms`` (epoch ms)."""
        if self.t_ms is not None and t_ms > self.t_ms:
            self.flow_usd *= fb.decay_factor((t_ms - self.t_ms) / 1000.0, self.params.half_life_s)
        self.t_ms = t_ms if self.t_ms is None else max(self.t_ms, t_ms)

    def observed_ticks(self, exogenous_ticks: int) -> int:
        """``exogenous × exp(impact)`` in ticks, rounded toward ``exogenous_ticks`` (never below 1)."""
        moved = exogenous_ticks * math.exp(self.impact)
        ticks = math.ceil(moved) if moved < exogenous_ticks else math.floor(moved)
        return max(1, ticks)

    def close_bar(self, observed_px: float, bar_s: float) -> None:
        """A bar closed at ``observed_px`` (any unit) after ``bar_s`` seconds: update the variance."""
        log_px = math.log(observed_px)
        if self.close_log is not None:
            self.variance = fb.ewma_variance(self.variance, log_px - self.close_log, bar_s)
        self.close_log = log_px
        self.deepest_impact = max(self.deepest_impact, abs(self.impact))

    def absorb(self, flow_usd: float) -> None:
        """Add forced flow (USD, buys > 0) the engine just executed."""
        self.flow_usd += flow_usd
        self.deepest_impact = max(self.deepest_impact, abs(self.impact))

    @property
    def hit_cap(self) -> bool:
        """Whether the impact reached the rule's cap (the cascade ran away past the fitted range)."""
        return self.deepest_impact >= fb.MAX_IMPACT_LOG * (1 - 1e-12)

    def flow_for_impact(self, log_return: float) -> float:
        """The outstanding flow (USD, signed) whose impact is ``log_return`` against the resting
        depth: the inverse of :func:`~backstop.sim.feedback.impact_log_return` below its cap,
        ``sign·D·s·(|I|/0.01)^(1/exponent)``. A book that follows the rule holds
        ``flow_for_impact(I0) − flow_for_impact(I)`` between impacts ``I0`` and ``I``."""
        size = (abs(log_return) / fb.IMPACT_AT_DEPTH) ** (1.0 / self.params.impact_exponent)
        return math.copysign(self.depth_usd * self.share * size, log_return)


def drawdown(prices: np.ndarray) -> float:
    """Largest fall from a running peak, as a fraction of the peak (0 for a path that never falls)."""
    prices = np.asarray(prices, dtype=np.float64)
    if prices.size == 0:
        return 0.0
    return float(np.max(1.0 - prices / np.maximum.accumulate(prices)))


def forced_flow_usdt(events: Iterable[Event], inst_id: str, usdt_per_lot_tick: float,
                     side_of: Callable[[int], int]) -> float:
    """Signed USDT of the forced flow in ``events`` on ``inst_id`` (buys > 0, sells < 0).

    - a liquidation fill (``Filled`` with a category other than ``normal``): its taker side;
    - an ADL close (``AutoDeleveraged``): the liquidated position closes against a winner, in the
      direction that closes it, i.e. opposite to ``side_of(liquidated_uid)`` (+1 long, −1 short).
      ADL trades off the book, yet the positions it closes are the ones the market must absorb
      (issue 13 counts liquidation *and* ADL flow), so it moves the price like a fill.

    ``usdt_per_lot_tick``: ``ctVal × lotSz × tickSz`` (a fill's USDT is ``lots × ticks`` of it)."""
    total = 0.0
    for e in events:
        if isinstance(e, Filled) and e.category != "normal" and e.inst_id == inst_id:
            sign = 1.0 if e.taker_side == "buy" else -1.0
            total += sign * e.lots * e.px_ticks * usdt_per_lot_tick
        elif isinstance(e, AutoDeleveraged) and e.inst_id == inst_id:
            total -= side_of(e.liquidated_uid) * e.lots * e.px_ticks * usdt_per_lot_tick
    return total
