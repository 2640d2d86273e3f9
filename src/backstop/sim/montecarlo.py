"""Vectorised Monte Carlo of an insurance fund under a leveraged population.

Statistical model, in floats (the exact engine re-checks anything it reports):

- every account holds one linear BTC-USDT position from ``entry_step`` at that step's
  close; its liquidation price is fixed at entry (isolated, OKX formula, see
  :meth:`Population.liquidation_ratio`), cross accounts count as isolated with a larger margin;
- a long is liquidated at the first step ``k > entry_step`` whose low is ``<=`` its
  liquidation price; a short at the first whose high is ``>=`` it;
- the fill starts at the liquidation price, or at the step's open if the price gapped
  through it (the worse of the two), then moves against the position by the depth
  impact of its size (:mod:`backstop.sim.impact`);
- the fund receives ``qty·(fill - bankruptcy)`` for a long (``qty·(bankruptcy - fill)`` for a
  short): a positive value is the surplus, of which ``min(qty·fill·taker_fee, surplus)``
  is the liquidation fee; a negative value is the deficit the fund pays;
- the fund path is counterfactual: it ignores that ADL would step in, and funding.

:func:`first_passage_steps` finds liquidation steps in O(n_steps + n_accounts·log n_steps)
per path: scanning entry steps backwards, it keeps the record lows (a monotone stack:
the running minimum from that entry) and binary-searches each account's liquidation price
in it. :func:`rescan_steps_numpy` and :func:`rescan_steps_numba` are the per-step baselines
that check every open account at every step; all three give identical steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from backstop.sim.impact import DepthCurve, impact_fraction
from backstop.sim.paths import Ohlc
from backstop.sim.population import Population

NEVER = -1


@dataclass(frozen=True)
class Market:
    """Bars on one grid for every path, each of shape (n_paths, n_times) in USDT per BTC.

    Step ``k``'s bar is ``open[:, k], high[:, k], low[:, k], close[:, k]``; bar 0 only
    supplies the first close (entries at step 0).
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def from_prices(cls, prices: np.ndarray) -> Market:
        """Discrete monitoring of simulated prices (n_paths, n_times): each bar is one price."""
        prices = np.ascontiguousarray(prices, dtype=np.float64)
        return cls(prices, prices, prices, prices)

    @classmethod
    def from_ohlc(cls, ohlc: Ohlc) -> Market:
        """One real path from minute bars."""
        bars = (ohlc.open, ohlc.high, ohlc.low, ohlc.close)
        return cls(*(np.asarray(a, dtype=np.float64)[None, :] for a in bars))

    @property
    def n_paths(self) -> int:
        return self.close.shape[0]

    @property
    def n_times(self) -> int:
        return self.close.shape[1]


@dataclass(frozen=True)
class FundConfig:
    """Fund and report settings; money in USDT, windows in steps.

    ``decline_share``/``decline_window_steps``: the ADL trigger when the fund falls more than
    that share below its peak over the window (OKX: 30 % in 8 h = 480 one-minute steps).
    ``tail_q``: the tail share for expected shortfall. ``ruin_target``: the ruin probability
    that :attr:`MonteCarloResult.fund_needed_usdt` is sized for.
    """

    initial_usdt: float = 250_000.0
    decline_share: float = 0.30
    decline_window_steps: int = 480
    tail_q: float = 0.01
    ruin_target: float = 0.01


@dataclass(frozen=True)
class PathLiquidations:
    """Liquidations of every account on one path; arrays of shape (N,).

    ``step``: liquidation step (-1 never). Prices in USDT per BTC: ``entry_price``,
    ``liquidation_price``, ``bankruptcy_price``, ``fill_price`` (NaN if never liquidated).
    ``qty_btc``: position size.
    ``fund_flow_usdt``: surplus into the fund (> 0) or deficit it pays (< 0), 0 if never.
    ``fee_usdt``: the part of a surplus that is the liquidation fee.
    """

    step: np.ndarray
    entry_price: np.ndarray
    liquidation_price: np.ndarray
    bankruptcy_price: np.ndarray
    fill_price: np.ndarray
    qty_btc: np.ndarray
    fund_flow_usdt: np.ndarray
    fee_usdt: np.ndarray


@dataclass(frozen=True)
class MonteCarloResult:
    """Per-path arrays (n_paths,) and their summary; money in USDT.

    ``flows_usdt`` (n_paths, n_times): the fund's net inflow at each step. ``fund_min_usdt``:
    lowest balance. ``required_usdt``: the smallest initial fund that never goes below 0.
    ``shortfall_usdt``: deficits beyond the fund, ``max(0, -fund_min)``.
    """

    flows_usdt: np.ndarray
    n_liquidations: np.ndarray
    fund_min_usdt: np.ndarray
    required_usdt: np.ndarray
    shortfall_usdt: np.ndarray
    exhausted: np.ndarray
    adl_triggered: np.ndarray
    p_exhausted: float
    p_adl: float
    es_fund_min_usdt: float
    es_shortfall_usdt: float
    fund_needed_usdt: float


@numba.njit(cache=True)
def _last_at_most(values: np.ndarray, n: int, x: float) -> int:
    """Largest i < n with values[i] <= x in an increasing ``values[:n]``; -1 if none."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


@numba.njit(cache=True)
def _push_record(values: np.ndarray, times: np.ndarray, n: int, x: float, k: int) -> int:
    """Put step ``k`` with value ``x`` in front of the records; returns the new count."""
    while n > 0 and values[n - 1] >= x:
        n -= 1
    values[n] = x
    times[n] = k
    return n + 1


@numba.njit(cache=True)
def _first_passage_path(low, high, close, side, entry_step, liq_ratio, order, out):
    """One path: ``out[a]`` = liquidation step of account ``a`` (``order``: entry desc)."""
    n_times = low.size
    low_vals = np.empty(n_times)
    low_times = np.empty(n_times, dtype=np.int64)
    high_vals = np.empty(n_times)
    high_times = np.empty(n_times, dtype=np.int64)
    n_low = 0
    n_high = 0
    i = 0
    while i < order.size and entry_step[order[i]] >= n_times - 1:
        out[order[i]] = NEVER
        i += 1
    for e in range(n_times - 2, -1, -1):
        n_low = _push_record(low_vals, low_times, n_low, low[e + 1], e + 1)
        n_high = _push_record(high_vals, high_times, n_high, -high[e + 1], e + 1)
        while i < order.size and entry_step[order[i]] == e:
            a = order[i]
            liq = close[e] * liq_ratio[a]
            if side[a] > 0:
                j = _last_at_most(low_vals, n_low, liq)
                out[a] = NEVER if j < 0 else low_times[j]
            else:
                j = _last_at_most(high_vals, n_high, -liq)
                out[a] = NEVER if j < 0 else high_times[j]
            i += 1


@numba.njit(parallel=True, cache=True)
def _first_passage_kernel(low, high, close, side, entry_step, liq_ratio, order, out):
    for p in numba.prange(low.shape[0]):
        _first_passage_path(low[p], high[p], close[p], side, entry_step, liq_ratio, order, out[p])


@numba.njit(parallel=True, cache=True)
def _rescan_kernel(low, high, close, side, entry_step, liq_ratio, out):
    n_paths, n_times = low.shape
    for p in numba.prange(n_paths):
        liq = np.empty(side.size)
        for a in range(side.size):
            liq[a] = close[p, entry_step[a]] * liq_ratio[a]
            out[p, a] = NEVER
        for k in range(1, n_times):
            for a in range(side.size):
                if out[p, a] != NEVER or entry_step[a] >= k:
                    continue
                if (side[a] > 0 and low[p, k] <= liq[a]) or (side[a] < 0 and high[p, k] >= liq[a]):
                    out[p, a] = k


def ensure_entries_in_market(market: Market, population: Population) -> None:
    """Raise ValueError if an account enters after the market's last step."""
    last = population.entry_step.max(initial=0)
    if last >= market.n_times:
        raise ValueError(f"entry step {last} is past the last step {market.n_times - 1}")


def _kernel_inputs(market: Market, population: Population) -> tuple[np.ndarray, ...]:
    ensure_entries_in_market(market, population)
    return (
        np.ascontiguousarray(market.low, dtype=np.float64),
        np.ascontiguousarray(market.high, dtype=np.float64),
        np.ascontiguousarray(market.close, dtype=np.float64),
        population.side,
        population.entry_step.astype(np.int64),
        population.liquidation_ratio(),
    )


def first_passage_steps(market: Market, population: Population) -> np.ndarray:
    """Liquidation step per (path, account), int64 (n_paths, N); -1 if never (fast path)."""
    low, high, close, side, entry_step, liq_ratio = _kernel_inputs(market, population)
    order = np.argsort(-entry_step, kind="stable")
    out = np.empty((market.n_paths, population.size), dtype=np.int64)
    _first_passage_kernel(low, high, close, side, entry_step, liq_ratio, order, out)
    return out


def rescan_steps_numba(market: Market, population: Population) -> np.ndarray:
    """Baseline: numba loop checking every open account at every step (same output)."""
    out = np.empty((market.n_paths, population.size), dtype=np.int64)
    _rescan_kernel(*_kernel_inputs(market, population), out)
    return out


def rescan_steps_numpy(market: Market, population: Population) -> np.ndarray:
    """Baseline: numpy, at each step compare all still-open accounts with that bar."""
    ensure_entries_in_market(market, population)
    liq = population.entry_prices(market.close) * population.liquidation_ratio()
    is_long = population.side > 0
    steps = np.full(liq.shape, NEVER, dtype=np.int64)
    open_ = np.ones(liq.shape, dtype=bool)
    for k in range(1, market.n_times):
        crossed = np.where(is_long, market.low[:, k, None] <= liq, market.high[:, k, None] >= liq)
        hit = open_ & crossed & (population.entry_step < k)
        steps[hit] = k
        open_ &= ~hit
    return steps


def _settle(market, population, paths, accounts, steps, curve):
    """Fills and fund flows of liquidated (path, account) pairs given as index arrays.

    Returns the fill price (USDT per BTC), the fund flow and the fee (USDT).
    """
    side = population.side[accounts]
    entry = market.close[paths, population.entry_step[accounts]]
    liq = entry * population.liquidation_ratio()[accounts]
    bankruptcy = entry * population.bankruptcy_ratio()[accounts]
    qty = population.notional_usdt[accounts] / entry
    bar_open = market.open[paths, steps]
    base = np.where(side > 0, np.minimum(bar_open, liq), np.maximum(bar_open, liq))
    impact = np.zeros_like(base) if curve is None else _impact(curve, qty, side)
    fill = base * (1.0 - side * impact)
    flow = side * qty * (fill - bankruptcy)
    fee = np.clip(qty * fill * population.taker_fee, 0.0, np.maximum(flow, 0.0))
    return fill, flow, fee


def _impact(curve: DepthCurve, qty_btc: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Impact of closing: longs sell into bids, shorts buy from asks."""
    sell = impact_fraction(curve, qty_btc, "sell")
    buy = impact_fraction(curve, qty_btc, "buy")
    return np.where(side > 0, sell, buy)


def liquidate_path(
    population: Population,
    ohlc: Ohlc | np.ndarray,
    curve: DepthCurve | None = None,
) -> PathLiquidations:
    """Per-account liquidation of ONE path (:class:`Ohlc` bars or 1-D prices, USDT per BTC).

    Uses the first-passage fast path; see the module docstring for the model and
    :class:`PathLiquidations` for units. ``curve=None`` means no market impact.
    """
    if isinstance(ohlc, Ohlc):
        market = Market.from_ohlc(ohlc)
    else:
        market = Market.from_prices(np.asarray(ohlc, dtype=np.float64)[None, :])
    steps = first_passage_steps(market, population)[0]
    (hit,) = np.nonzero(steps != NEVER)
    fill, flow, fee = _settle(market, population, np.zeros_like(hit), hit, steps[hit], curve)
    entry = population.entry_prices(market.close[0])
    fill_price = np.full(population.size, np.nan)
    fill_price[hit] = fill
    fund_flow, fees = np.zeros(population.size), np.zeros(population.size)
    fund_flow[hit] = flow
    fees[hit] = fee
    return PathLiquidations(
        step=steps,
        entry_price=entry,
        liquidation_price=entry * population.liquidation_ratio(),
        bankruptcy_price=entry * population.bankruptcy_ratio(),
        fill_price=fill_price,
        qty_btc=population.notional_usdt / entry,
        fund_flow_usdt=fund_flow,
        fee_usdt=fees,
    )


def fund_flows(
    market: Market, population: Population, steps: np.ndarray, curve: DepthCurve | None
) -> np.ndarray:
    """Net fund inflow (USDT) per (path, step), shape (n_paths, n_times), from ``steps``."""
    paths, accounts = np.nonzero(steps != NEVER)
    at = steps[paths, accounts]
    flow = _settle(market, population, paths, accounts, at, curve)[1]
    n_paths, n_times = market.n_paths, market.n_times
    flat = np.bincount(paths * n_times + at, weights=flow, minlength=n_paths * n_times)
    return flat.reshape(n_paths, n_times)


def rolling_max(x: np.ndarray, window: int) -> np.ndarray:
    """Max over ``x[:, t - window + 1 : t + 1]`` for each t (van Herk / Gil-Werman, O(n))."""
    n_rows, n = x.shape
    n_blocks = math.ceil((n + window - 1) / window)
    padded = np.full((n_rows, n_blocks * window), -np.inf)
    padded[:, window - 1 : window - 1 + n] = x
    blocks = padded.reshape(n_rows, n_blocks, window)
    prefix = np.maximum.accumulate(blocks, axis=2).reshape(n_rows, -1)
    suffix = np.maximum.accumulate(blocks[:, :, ::-1], axis=2)[:, :, ::-1].reshape(n_rows, -1)
    return np.maximum(suffix[:, :n], prefix[:, window - 1 : window - 1 + n])


def _tail_mean(values: np.ndarray, q: float, worst_low: bool) -> float:
    """Mean of the worst ``ceil(q·n)`` values (lowest if ``worst_low``, else highest)."""
    n_tail = max(1, math.ceil(q * values.size))
    ordered = np.sort(values)
    return float(ordered[:n_tail].mean() if worst_low else ordered[-n_tail:].mean())


def fund_needed(required_usdt: np.ndarray, ruin_target: float) -> float:
    """Smallest initial fund (USDT) that goes below 0 on at most ``ruin_target`` of the paths.

    A path is ruined when its ``required_usdt`` exceeds the fund, so this is the order
    statistic with ``floor(ruin_target · n_paths)`` paths above it.
    """
    n_ruined = math.floor(ruin_target * required_usdt.size + 1e-9)
    ordered = np.sort(required_usdt)
    return float(ordered[max(0, ordered.size - n_ruined - 1)])


def summarize_fund(
    flows: np.ndarray, n_liquidations: np.ndarray, config: FundConfig
) -> MonteCarloResult:
    """Fund paths from per-step inflows (n_paths, n_times) -> :class:`MonteCarloResult`."""
    cumulative = np.cumsum(flows, axis=1)
    balance = config.initial_usdt + cumulative
    fund_min = balance.min(axis=1)
    peak = rolling_max(balance, config.decline_window_steps)
    declined = ((peak > 0) & (balance < (1.0 - config.decline_share) * peak)).any(axis=1)
    exhausted = fund_min < 0.0
    required = np.maximum(0.0, -cumulative.min(axis=1))
    shortfall = np.maximum(0.0, -fund_min)
    return MonteCarloResult(
        flows_usdt=flows,
        n_liquidations=n_liquidations,
        fund_min_usdt=fund_min,
        required_usdt=required,
        shortfall_usdt=shortfall,
        exhausted=exhausted,
        adl_triggered=exhausted | declined,
        p_exhausted=float(exhausted.mean()),
        p_adl=float((exhausted | declined).mean()),
        es_fund_min_usdt=_tail_mean(fund_min, config.tail_q, worst_low=True),
        es_shortfall_usdt=_tail_mean(shortfall, config.tail_q, worst_low=False),
        fund_needed_usdt=fund_needed(required, config.ruin_target),
    )


def run_montecarlo(
    market: Market,
    population: Population,
    config: FundConfig | None = None,
    curve: DepthCurve | None = None,
) -> MonteCarloResult:
    """Liquidate ``population`` on every path of ``market`` and summarise the fund."""
    steps = first_passage_steps(market, population)
    flows = fund_flows(market, population, steps, curve)
    n_liquidations = (steps != NEVER).sum(axis=1)
    return summarize_fund(flows, n_liquidations, config or FundConfig())
