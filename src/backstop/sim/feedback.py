"""The cascade feedback rule: forced flow moves the price, makers withdraw depth as volatility rises.

This module is the one place the rule lives; the Monte Carlo fast path
(:mod:`backstop.sim.montecarlo`) and the exact engine's cascade both call its scalar functions.
Everything here is a float simulation model: prices it produces are *inputs* to the engine,
nothing settles on them.

Model, per instrument, in continuous time with steps of ``dt_s`` seconds:

1. **Realized volatility** ``σ_t`` (annualised, a fraction per √year) is an exponentially
   weighted mean of squared log returns of the *observed* mark (exogenous move plus impact)::

       v_t = λ·v_{t-1} + (1 - λ)·r_t²·(SECONDS_PER_YEAR / dt_s),   λ = decay_factor(dt_s, VOL_HALF_LIFE_S)
       σ_t = √v_t

2. **Depth withdrawal.** The depth resting within 1 % of mid on each side is ``D·s_t`` USD, with
   ``D = depth_usd`` the calm depth and the share (:func:`depth_share`)::

       s_t = clip((vol_ref / σ_t)^withdrawal_elasticity, min_depth_share, 1)

   so makers keep the whole book while ``σ_t <= vol_ref`` and pull it as a power of the excess.

3. **Outstanding forced flow** ``Q_t`` (USD, signed: buys > 0, sells < 0) is liquidation and ADL
   flow not yet absorbed by refilled depth; it decays with the depth-recovery half-life::

       Q_t = decay_factor(dt_s, half_life_s)·Q_{t-1} + q_t

4. **Impact** (:func:`impact_log_return`) is a power law in the flow measured in units of the
   resting depth, calibrated so that a flow equal to the 1 % depth moves the price by 1 %::

       I_t = sign(Q_t)·min(IMPACT_AT_DEPTH·(|Q_t| / (D·s_t))^impact_exponent, MAX_IMPACT_LOG)
       log mark_t = log exogenous_t + I_t

   Impact is a function of the *outstanding* flow, not a sum over orders, so splitting an order
   changes nothing and impact decays with the same half-life as the consumed depth refills.

Fitting (:func:`fit_feedback`, run by ``backstop calibrate``): ``depth_usd`` is the day-median
notional within 1 % (both sides pooled) of a Binance ``bookDepth`` file; ``impact_exponent`` is the
least-squares slope of log band (1..5 %) on log cumulative notional / 1 % notional, through the
1 % point, on the day-median curve; ``half_life_s`` comes from the AR(1) coefficient of the log
thinner-side 1 % depth on the 30 s snapshots before the book first falls below
:data:`WITHDRAWN_SHARE` of calm (the calm regime's mean reversion); ``vol_ref``,
``withdrawal_elasticity`` and ``min_depth_share`` minimise the squared error of log depth share of
the thinner side against the rule of step 2, with ``σ_t`` from 1-minute klines of the same day
(``min_depth_share`` = the lowest share observed). A snapshot whose thinner-side 1 % notional
equals the previous one's exactly is a stale reading (on 2025-10-10 two bid values repeat 952
times after 15:30 UTC) and is left out of the withdrawal fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numba
import numpy as np

from backstop.sim.impact import BAND_FRACTIONS, DepthBook
from backstop.sim.liquidity import REFERENCE_OPEN_INTEREST_BTC
from backstop.sim.paths import SHIPPED_UNIVERSE, Ohlc

SECONDS_PER_YEAR = 365.0 * 24.0 * 3600.0
IMPACT_AT_DEPTH = 0.01
"""Log displacement of a flow equal to the 1 % depth (the definition of ``depth_usd``)."""
MAX_IMPACT_LOG = math.log(10.0)
"""Cap on ``|I|``: impact moves a price at most tenfold either way. The fit says nothing beyond
5 % of mid; the deepest altcoin falls of 2025-10-10 were about 90 % on some venues, which is
``-log(10)``, and past it a market is dead either way; the cap keeps prices and losses finite."""
VOL_HALF_LIFE_S = 600.0
"""Half-life (s) of the realized-volatility EWMA; a modelling choice (10 minutes)."""
WITHDRAWN_SHARE = 0.1
"""Share of calm depth below which the book counts as withdrawn (ends the half-life fit window)."""
PARAMETERS = ("depth_usd", "impact_exponent", "half_life_s", "vol_ref", "withdrawal_elasticity",
              "min_depth_share", "open_interest_usd")


@dataclass(frozen=True)
class FeedbackParams:
    """Feedback parameters of one instrument (units in the module docstring).

    ``depth_usd``: calm resting notional per side within 1 % of mid (USD). ``impact_exponent``:
    the power of :func:`impact_log_return`. ``half_life_s``: impact decay / depth recovery (s).
    ``vol_ref``: annualised realized vol above which makers withdraw. ``withdrawal_elasticity``:
    the power of the withdrawal. ``min_depth_share``: the floor of the share still resting.
    ``open_interest_usd``: the whole market's open interest the depth stands against (USD), which
    scales the depth to a synthetic population (:meth:`depth_for_population`). ``sources``:
    parameter name -> where its value came from (a file and window, or an assumption).
    """

    inst_id: str
    depth_usd: float
    impact_exponent: float
    half_life_s: float
    vol_ref: float
    withdrawal_elasticity: float
    min_depth_share: float
    open_interest_usd: float
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        checks = {"depth_usd": self.depth_usd > 0, "impact_exponent": self.impact_exponent > 0,
                  "half_life_s": self.half_life_s >= 0, "vol_ref": self.vol_ref > 0,
                  "withdrawal_elasticity": self.withdrawal_elasticity >= 0,
                  "min_depth_share": 0 < self.min_depth_share <= 1,
                  "open_interest_usd": self.open_interest_usd > 0}
        for name, ok in checks.items():
            if not (ok and math.isfinite(getattr(self, name))):
                raise ValueError(f"feedback {self.inst_id}: bad {name} {getattr(self, name)!r}")
        missing = [p for p in PARAMETERS if p not in self.sources]
        if missing:
            raise ValueError(f"feedback {self.inst_id}: no source stated for {', '.join(missing)}")

    @classmethod
    def shipped(cls, inst_id: str = "BTC-USDT") -> FeedbackParams:
        """The shipped constants for ``inst_id`` (see :data:`SHIPPED_FEEDBACK`)."""
        if inst_id not in SHIPPED_FEEDBACK:
            raise ValueError(f"no shipped feedback parameters for {inst_id} "
                             f"(have {', '.join(SHIPPED_FEEDBACK)})")
        return SHIPPED_FEEDBACK[inst_id]

    @classmethod
    def from_calibration(cls, values: Mapping[str, object], inst_id: str = "BTC-USDT") -> FeedbackParams:
        """From a ``[feedback]`` table written by ``backstop calibrate --out`` (or any mapping with
        the :data:`PARAMETERS` keys plus ``source``/``data``, and optionally ``sources``: name ->
        source); missing keys keep the shipped value and its source."""
        base = cls.shipped(inst_id) if inst_id in SHIPPED_FEEDBACK else None
        where = f"{values.get('source', 'calibration')} {values.get('data', '')}".strip()
        named = values.get("sources", {})
        chosen: dict[str, float] = {}
        sources: dict[str, str] = {}
        for name in PARAMETERS:
            if name in values:
                source = named.get(name, where) if isinstance(named, Mapping) else where
                chosen[name], sources[name] = float(values[name]), str(source)  # type: ignore[arg-type]
            elif base is not None:
                chosen[name], sources[name] = getattr(base, name), base.sources[name]
            else:
                raise ValueError(f"feedback calibration for {inst_id}: missing {name}")
        return cls(inst_id, sources=sources, **chosen)

    def depth_for_population(self, gross_notional_usd: float) -> float:
        """Calm 1 % depth (USD) scaled to a population: ``depth_usd·gross / open_interest_usd``, so
        the book stands to the population as the real book stood to the whole market."""
        return self.depth_usd * gross_notional_usd / self.open_interest_usd

    def scaled_depth(self, factor: float, reason: str) -> FeedbackParams:
        """The same instrument with ``depth_usd`` times ``factor`` (e.g. a liquidity what-if)."""
        sources = {**self.sources, "depth_usd": f"{self.sources['depth_usd']} × {factor:g} ({reason})"}
        return replace(self, depth_usd=self.depth_usd * factor, sources=sources)


@numba.njit(cache=True)
def depth_share(realized_vol: float, vol_ref: float, elasticity: float, min_share: float) -> float:
    """Fraction of calm depth still resting: ``clip((vol_ref/σ)^elasticity, min_share, 1)``.

    ``realized_vol`` and ``vol_ref`` are annualised volatilities (same units); 1 at ``σ <= vol_ref``.
    """
    if realized_vol <= vol_ref:
        return 1.0
    share = (vol_ref / realized_vol) ** elasticity
    return share if share > min_share else min_share


@numba.njit(cache=True)
def impact_log_return(flow_usd: float, depth_usd: float, exponent: float) -> float:
    """Signed log-price displacement of outstanding forced flow ``flow_usd`` (buys > 0, sells < 0)
    against ``depth_usd`` resting within 1 % (USD): ``sign·0.01·(|flow|/depth)^exponent``, capped at
    :data:`MAX_IMPACT_LOG` in size."""
    if flow_usd == 0.0:
        return 0.0
    size = abs(flow_usd) / depth_usd
    move = min(IMPACT_AT_DEPTH * size**exponent, MAX_IMPACT_LOG)
    return move if flow_usd > 0.0 else -move


@numba.njit(cache=True)
def decay_factor(dt_s: float, half_life_s: float) -> float:
    """Share of impact (or consumed depth) left after ``dt_s`` seconds: ``2^(-dt/half_life)``;
    0 for a zero half-life (instant recovery)."""
    if half_life_s <= 0.0:
        return 0.0
    return 0.5 ** (dt_s / half_life_s)


@numba.njit(cache=True)
def ewma_variance(variance: float, log_return: float, dt_s: float) -> float:
    """Next annualised realized variance after a step of ``dt_s`` s with ``log_return`` (step 1 of
    the model, half-life :data:`VOL_HALF_LIFE_S`)."""
    lam = decay_factor(dt_s, VOL_HALF_LIFE_S)
    return lam * variance + (1.0 - lam) * log_return * log_return * (SECONDS_PER_YEAR / dt_s)



# Fitting


def realized_vol_series(closes: np.ndarray, dt_s: float) -> np.ndarray:
    """Annualised EWMA realized vol after each return of ``closes`` (n - 1 values); the EWMA starts
    at the mean squared return of the first 60 steps."""
    returns = np.diff(np.log(closes))
    variance = float(np.mean(returns[:60] ** 2) * SECONDS_PER_YEAR / dt_s) if returns.size else 0.0
    out = np.empty(returns.size)
    for i, r in enumerate(returns):
        variance = ewma_variance(variance, float(r), dt_s)
        out[i] = variance
    return np.sqrt(out)


def fit_impact_exponent(band_usdt: np.ndarray) -> float:
    """Least-squares slope of ``log(band/1 %)`` on ``log(cum notional / notional at 1 %)`` through
    the 1 % point; ``band_usdt`` (k, 5) stacks cumulative notional curves (one row per side)."""
    x = np.log(np.maximum.accumulate(band_usdt, axis=1) / band_usdt[:, :1])[:, 1:].ravel()
    y = np.broadcast_to(np.log(BAND_FRACTIONS[1:] / BAND_FRACTIONS[0]), (band_usdt.shape[0], 4)).ravel()
    keep = x > 0
    return float(np.sum(x[keep] * y[keep]) / np.sum(x[keep] ** 2))


def fit_half_life(log_depth: np.ndarray, dt_s: float) -> float:
    """Half-life (s) of an AR(1) fitted to demeaned ``log_depth`` sampled every ``dt_s`` s."""
    y = log_depth - log_depth.mean()
    phi = float(np.sum(y[1:] * y[:-1]) / np.sum(y[:-1] ** 2))
    if not 0.0 < phi < 1.0:
        raise ValueError(f"depth shows no mean reversion (AR(1) coefficient {phi:.3f})")
    return -dt_s * math.log(2.0) / math.log(phi)


def fit_withdrawal(vol: np.ndarray, share: np.ndarray) -> tuple[float, float, float]:
    """``(vol_ref, elasticity, min_share)`` of step 2 fitted to paired (σ, share) samples.

    ``min_share`` is the lowest share seen; for each candidate ``vol_ref`` (the 5..95th percentiles
    of σ) the elasticity is the least-squares slope of ``-log share`` on ``log(σ/vol_ref)⁺`` over
    the samples above the floor, and the pair with the least squared error in log share over all
    samples (floor applied) wins.
    """
    min_share = float(np.clip(share.min(), 1e-6, 1.0))
    log_share = np.log(np.clip(share, min_share, 1.0))
    above_floor = share > min_share
    best = (math.inf, 0.0, 0.0)
    for vol_ref in np.percentile(vol, np.arange(5, 96)):
        excess = np.log(np.maximum(vol / vol_ref, 1.0))
        used = above_floor & (excess > 0)
        if not np.any(used):
            continue
        elasticity = max(0.0, float(-np.sum(excess[used] * log_share[used]) / np.sum(excess[used] ** 2)))
        predicted = np.maximum(-elasticity * excess, math.log(min_share))
        error = float(np.sum((log_share - predicted) ** 2))
        best = min(best, (error, float(vol_ref), elasticity))
    return best[1], best[2], min_share


def fit_feedback(book: DepthBook, ohlc: Ohlc, inst_id: str = "BTC-USDT", label: str = "") -> FeedbackParams:
    """All parameters of one instrument from a ``bookDepth`` file and 1-minute klines of the same
    day (see the module docstring); ``label`` names the files in ``sources``."""
    calm_usd = float(np.median(np.r_[book.bid_usdt[:, 0], book.ask_usdt[:, 0]]))
    thin_usd = np.minimum(book.bid_usdt[:, 0], book.ask_usdt[:, 0])
    thin_share = thin_usd / calm_usd
    live = np.r_[True, thin_usd[1:] != thin_usd[:-1]]
    exponent = fit_impact_exponent(np.vstack([np.median(book.bid_usdt, axis=0),
                                              np.median(book.ask_usdt, axis=0)]))
    withdrawn = np.flatnonzero(thin_share < WITHDRAWN_SHARE)
    calm_end = int(withdrawn[0]) if withdrawn.size else thin_share.size
    snapshot_s = float(np.median(np.diff(book.time_ms))) / 1000.0
    half_life = fit_half_life(np.log(thin_share[:calm_end]), snapshot_s)
    minute_s = float(np.median(np.diff(ohlc.time_ms))) / 1000.0
    vol = realized_vol_series(ohlc.close, minute_s)
    known_at = ohlc.time_ms[1:] + int(minute_s * 1000)  # a return is known when its bar closes
    index = np.searchsorted(known_at, book.time_ms, side="right") - 1
    paired = (index >= 0) & live
    if paired.sum() < 30:
        raise ValueError("depth snapshots and klines overlap in fewer than 30 live snapshots")
    vol_ref, elasticity, min_share = fit_withdrawal(vol[index[paired]], thin_share[paired])
    src = label or "bookDepth + 1m klines"
    sources = {
        "depth_usd": f"{src}: median notional within 1 %, both sides",
        "impact_exponent": f"{src}: log-log slope of the day-median depth curve, 1..5 %",
        "half_life_s": f"{src}: AR(1) of log thinner-side 1 % depth, {calm_end} calm snapshots",
        "vol_ref": f"{src}: withdrawal fit on {int(paired.sum())} live snapshots, EWMA vol "
                   f"(half-life {VOL_HALF_LIFE_S:g} s) of 1m closes",
        "withdrawal_elasticity": f"{src}: withdrawal fit, log thinner-side share vs log vol",
        "min_depth_share": f"{src}: lowest thinner-side 1 % share of the day",
    }
    base = SHIPPED_FEEDBACK.get(inst_id)
    if base is None:
        raise ValueError(f"no open interest known for {inst_id}: add it to SHIPPED_FEEDBACK")
    sources["open_interest_usd"] = base.sources["open_interest_usd"]
    return FeedbackParams(inst_id, calm_usd, exponent, half_life, vol_ref, elasticity, min_share,
                          base.open_interest_usd, sources)
_BTC_FILES = "btcusdt-perp-bookdepth-2025-10-10.csv + btcusdt-perp-1m-2025-10-10.csv"
# Fitted 2026-11-29 by fit_feedback from the two shared/data files of 2025-10-10 (backstop calibrate).
BTC_FEEDBACK = FeedbackParams(
    "BTC-USDT", depth_usd=2.424e8, impact_exponent=1.062, half_life_s=286.1, vol_ref=0.4462,
    withdrawal_elasticity=2.720, min_depth_share=0.00884,
    open_interest_usd=REFERENCE_OPEN_INTEREST_BTC * 121_500.0,
    sources={
        "depth_usd": f"{_BTC_FILES}: median notional within 1 %, both sides, 2025-10-10",
        "impact_exponent": f"{_BTC_FILES}: log-log slope of the day-median depth curve, 1..5 %",
        "half_life_s": f"{_BTC_FILES}: AR(1) of log thinner-side 1 % depth, 00:00-15:26 UTC",
        "vol_ref": f"{_BTC_FILES}: withdrawal fit, 514 live snapshots 12:00-24:00 UTC",
        "withdrawal_elasticity": f"{_BTC_FILES}: withdrawal fit, 514 live snapshots 12:00-24:00 UTC",
        "min_depth_share": f"{_BTC_FILES}: lowest thinner-side 1 % share of the day",
        "open_interest_usd": "liquidity.REFERENCE_OPEN_INTEREST_BTC (assumed 90,000 BTC) × 121,500 "
                             "USDT (2025-10-10 open)",
    },
)

ALT_DEPTH_RATIO: dict[str, float] = {"ETH-USDT": 1 / 3, "SOL-USDT": 1 / 15, "XRP-USDT": 1 / 20,
                                     "DOGE-USDT": 1 / 30}
"""Per altcoin, 1 % depth / BTC's. An assumption, not a fit: no altcoin book data is in
``shared/data``. Order of magnitude of Binance perpetual books in 2025 (ETH's 1 % depth about a
third of BTC's, the large altcoins' 1/15 to 1/30). Their ``vol_ref`` is BTC's times the calm
volatility ratio of :data:`backstop.sim.paths.SHIPPED_UNIVERSE`."""
ALT_OPEN_INTEREST_USD: dict[str, float] = {"ETH-USDT": 5.0e9, "SOL-USDT": 1.5e9, "XRP-USDT": 1.1e9,
                                           "DOGE-USDT": 0.8e9}
"""Per altcoin, the whole market's open interest (USD) its depth stands against: an assumption,
order of magnitude of Binance perpetual open interest in October 2025, which puts the altcoins'
calm 1 % depth at 1.0-1.6 % of their open interest against BTC's 2.2 % (thinner relative to the
positions that can be forced out, not only in dollars)."""


def _alt_feedback(inst_id: str) -> FeedbackParams:
    """An altcoin's parameters: BTC's, with depth, ``vol_ref`` and open interest as assumed."""
    assumed = "assumption: BTC's fitted value"
    ratio = ALT_DEPTH_RATIO[inst_id]
    vol_ratio = float(SHIPPED_UNIVERSE.vol_ratio[SHIPPED_UNIVERSE.inst_ids.index(inst_id)])
    return FeedbackParams(
        inst_id, depth_usd=BTC_FEEDBACK.depth_usd * ratio,
        impact_exponent=BTC_FEEDBACK.impact_exponent, half_life_s=BTC_FEEDBACK.half_life_s,
        vol_ref=BTC_FEEDBACK.vol_ref * vol_ratio,
        withdrawal_elasticity=BTC_FEEDBACK.withdrawal_elasticity,
        min_depth_share=BTC_FEEDBACK.min_depth_share,
        open_interest_usd=ALT_OPEN_INTEREST_USD[inst_id],
        sources={name: assumed for name in PARAMETERS} | {
            "depth_usd": f"{assumed} × {ratio:.4g} (ALT_DEPTH_RATIO: altcoin books far thinner)",
            "vol_ref": f"{assumed} × {vol_ratio:g} (SHIPPED_UNIVERSE.vol_ratio)",
            "open_interest_usd": "assumption (ALT_OPEN_INTEREST_USD)"},
    )


SHIPPED_FEEDBACK: dict[str, FeedbackParams] = {"BTC-USDT": BTC_FEEDBACK} | {
    inst: _alt_feedback(inst) for inst in ALT_DEPTH_RATIO}
"""Shipped parameters per instrument: BTC fitted, the altcoins assumed."""
