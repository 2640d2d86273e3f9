"""Fit the path models and funding statistics to the real data in ``shared/data``.

Daily models use log returns of daily closes since :data:`CALIBRATION_START` (the
2011-2019 Bitstamp years have flat, thinly traded days that would dominate a fit).
Annualisation uses 365 days. The ``FITTED_*`` constants are the shipped defaults;
``tests/sim/test_sim_calibrate.py`` re-fits them from the data and checks the tolerance.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from backstop.sim.paths import GarchParams

DAYS_PER_YEAR = 365.0
CALIBRATION_START = "2020-01-01"
CONE_WINDOWS_DAYS = (7, 14, 30, 60, 90, 180)
CONE_PERCENTILES = (5, 25, 50, 75, 95)
FUNDING_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@dataclass(frozen=True)
class GbmFit:
    """Annual drift ``mu`` and annual volatility ``sigma`` of the log price."""

    mu: float
    sigma: float


@dataclass(frozen=True)
class JumpFit:
    """Merton parameters: annual drift ``mu`` and diffusion ``sigma``, ``jump_rate`` per year,
    each jump adding N(``jump_mean``, ``jump_std``²) to the log price."""

    mu: float
    sigma: float
    jump_rate: float
    jump_mean: float
    jump_std: float


@dataclass(frozen=True)
class FundingStats:
    """Statistics of the 8-hour funding rate (a fraction per 8 h; 0.0001 = 0.01%)."""

    mean: float
    std: float
    quantiles: dict[float, float]


# Fitted 2026-11-24 from shared/data/btcusd-1d-2011-2025.csv, daily closes 2020-01-01..2025-09-24.
FITTED_GBM = GbmFit(mu=0.6854, sigma=0.6380)
# Same file and window; GARCH(1,1), Student-t, variance targeting, daily units, by ML.
FITTED_GARCH_DAILY = GarchParams(omega=1.184e-05, alpha=0.05375, beta=0.9356, nu=3.554)
# Same file and window; jumps are daily returns beyond 3 sigma of the rest (iterated).
FITTED_JUMP = JumpFit(mu=0.6854, sigma=0.4785, jump_rate=14.13, jump_mean=0.00649, jump_std=0.1156)
# Fitted 2026-11-24 from shared/data/btcusdt-perp-funding-8h-2020-2026.csv (all 7,119 rows).
FITTED_FUNDING = FundingStats(
    mean=1.089e-04, std=2.122e-04, quantiles={0.05: -5.273e-05, 0.5: 9.582e-05, 0.95: 4.795e-04}
)
# Fitted 2026-11-29 from shared/data/btcusd-1d-2011-2025.csv, daily closes 2020-01-01..2025-09-24:
# annualized realized volatility per window (days) at CONE_PERCENTILES (5, 25, 50, 75, 95).
SHIPPED_CONE: dict[int, np.ndarray] = {
    7: np.array([0.1902, 0.3441, 0.4803, 0.6786, 1.0854]),
    14: np.array([0.2378, 0.3779, 0.5166, 0.6860, 1.0318]),
    30: np.array([0.2843, 0.4124, 0.5452, 0.6851, 1.0030]),
    60: np.array([0.3215, 0.4485, 0.5690, 0.6781, 1.0086]),
    90: np.array([0.3338, 0.4792, 0.5517, 0.6851, 0.9470]),
    180: np.array([0.3827, 0.4881, 0.5498, 0.6907, 0.9215]),
}
SHIPPED_CONE_SOURCE = "btcusd-1d-2011-2025.csv, 2020-01-01..2025-09-24"


def load_daily_table(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(unix seconds, close)`` of a daily file sorted by time: ``unix_timestamp,close``
    columns, or Binance 1d klines (``open_time`` in epoch ms, ``close``)."""
    header = Path(path).read_text().split("\n", 1)[0].strip().split(",")
    time_column = next((c for c in ("unix_timestamp", "open_time") if c in header), None)
    if time_column is None or "close" not in header:
        raise ValueError(f"{path}: missing column 'unix_timestamp' (or 'open_time') and 'close'")
    usecols = (header.index(time_column), header.index("close"))
    table = np.loadtxt(path, delimiter=",", skiprows=1, usecols=usecols, ndmin=2)
    table = table[np.argsort(table[:, 0], kind="stable")]
    seconds = table[:, 0] / 1000.0 if time_column == "open_time" else table[:, 0]
    return seconds, table[:, 1]


def load_daily_closes(path: str | Path, start: str = CALIBRATION_START) -> np.ndarray:
    """Daily closes (USD) of :func:`load_daily_table`, from ``start`` (UTC)."""
    seconds, closes = load_daily_table(path)
    start_s = dt.datetime.fromisoformat(start).replace(tzinfo=dt.UTC).timestamp()
    return closes[seconds >= start_s]


def log_returns(closes: np.ndarray) -> np.ndarray:
    """Per-period log returns of a close series."""
    return np.diff(np.log(closes))


def fit_gbm(returns: np.ndarray) -> GbmFit:
    """GBM from daily log returns: ``sigma = std·√365``, ``mu = mean·365 + sigma²/2``."""
    sigma = float(np.std(returns, ddof=1) * np.sqrt(DAYS_PER_YEAR))
    return GbmFit(mu=float(np.mean(returns) * DAYS_PER_YEAR + 0.5 * sigma**2), sigma=sigma)


def fit_jump(returns: np.ndarray, k: float = 3.0, max_iter: int = 50) -> JumpFit:
    """Merton fit by thresholding: a jump is a return beyond ``k`` diffusion sigmas.

    Starts from all returns, re-estimates the diffusion sigma from the non-jumps and
    repeats until the jump set stops changing. ``mu`` matches the sample mean return.
    """
    jumps = np.zeros(returns.size, dtype=bool)
    for _ in range(max_iter):
        calm = returns[~jumps]
        new_jumps = np.abs(returns - calm.mean()) > k * calm.std(ddof=1)
        if np.array_equal(new_jumps, jumps):
            break
        jumps = new_jumps
    sigma = float(returns[~jumps].std(ddof=1) * np.sqrt(DAYS_PER_YEAR))
    sizes = returns[jumps]
    total_sigma = float(returns.std(ddof=1) * np.sqrt(DAYS_PER_YEAR))
    return JumpFit(
        mu=float(returns.mean() * DAYS_PER_YEAR + 0.5 * total_sigma**2),
        sigma=sigma,
        jump_rate=float(jumps.sum() / returns.size * DAYS_PER_YEAR),
        jump_mean=float(sizes.mean()) if sizes.size else 0.0,
        jump_std=float(sizes.std(ddof=1)) if sizes.size > 1 else 0.0,
    )


@numba.njit(cache=True)
def _garch_variances(eps: np.ndarray, omega: float, alpha: float, beta: float) -> np.ndarray:
    """Conditional variances; the first is the sample variance."""
    var = np.empty(eps.size)
    var[0] = np.mean(eps**2)
    for t in range(1, eps.size):
        var[t] = omega + alpha * eps[t - 1] ** 2 + beta * var[t - 1]
    return var


def garch_neg_loglik(params: GarchParams, eps: np.ndarray) -> float:
    """Negative log-likelihood of demeaned returns ``eps`` (unit-variance t or normal)."""
    var = _garch_variances(eps, params.omega, params.alpha, params.beta)
    z2 = eps**2 / var
    nu = params.nu
    if np.isinf(nu):
        return float(0.5 * np.sum(np.log(2.0 * np.pi * var) + z2))
    log_const = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * np.log(np.pi * (nu - 2))
    log_pdf = log_const - 0.5 * np.log(var) - (nu + 1) / 2 * np.log1p(z2 / (nu - 2))
    return float(-np.sum(log_pdf))


def _garch_from_free(x: np.ndarray, var: float, student_t: bool) -> GarchParams:
    """Unconstrained vector -> params with long-run variance ``var``, alpha+beta<1, nu>2."""
    persistence = 0.9999 / (1.0 + np.exp(-x[0]))
    alpha = persistence / (1.0 + np.exp(-x[1]))
    nu = 2.05 + np.exp(x[2]) if student_t else float("inf")
    omega = var * (1.0 - persistence)
    return GarchParams(float(omega), float(alpha), float(persistence - alpha), float(nu))


def fit_garch(returns: np.ndarray, student_t: bool = True) -> GarchParams:
    """GARCH(1,1) by maximum likelihood on demeaned returns (per-period units).

    Variance targeting: ``omega = sample variance · (1 - alpha - beta)``, so the long-run
    variance equals the sample variance (a free omega drifts to the integrated-GARCH
    boundary on BTC). :func:`nelder_mead` fits alpha, beta and nu.
    """
    eps = returns - returns.mean()
    var = float(eps.var())
    # Start: persistence 0.95, alpha 0.1, nu 5.
    x0 = np.array([np.log(0.95 / 0.0499), np.log(0.1 / 0.85), np.log(3.0)])

    def objective(x: np.ndarray) -> float:
        return garch_neg_loglik(_garch_from_free(x, var, student_t), eps)

    return _garch_from_free(nelder_mead(objective, x0), var, student_t)


def nelder_mead(
    f: Callable[[np.ndarray], float],
    x0: np.ndarray,
    step: float = 0.5,
    tol: float = 1e-10,
    max_iter: int = 5000,
) -> np.ndarray:
    """Minimise ``f`` with the Nelder-Mead simplex (standard coefficients 1, 2, 0.5, 0.5)."""
    simplex = np.vstack([x0, x0 + step * np.eye(x0.size)])
    values = np.array([f(x) for x in simplex])
    for _ in range(max_iter):
        order = np.argsort(values)
        simplex, values = simplex[order], values[order]
        if values[-1] - values[0] <= tol * (abs(values[0]) + tol):
            break
        centroid = simplex[:-1].mean(axis=0)
        reflected = centroid + (centroid - simplex[-1])
        f_reflected = f(reflected)
        if f_reflected < values[0]:
            expanded = centroid + 2.0 * (centroid - simplex[-1])
            f_expanded = f(expanded)
            simplex[-1], values[-1] = (
                (expanded, f_expanded) if f_expanded < f_reflected else (reflected, f_reflected)
            )
        elif f_reflected < values[-2]:
            simplex[-1], values[-1] = reflected, f_reflected
        else:
            contracted = centroid + 0.5 * (simplex[-1] - centroid)
            f_contracted = f(contracted)
            if f_contracted < values[-1]:
                simplex[-1], values[-1] = contracted, f_contracted
            else:
                simplex[1:] = simplex[0] + 0.5 * (simplex[1:] - simplex[0])
                values[1:] = [f(x) for x in simplex[1:]]
    return simplex[np.argmin(values)]


def volatility_cone(
    returns: np.ndarray,
    windows_days: tuple[int, ...] = CONE_WINDOWS_DAYS,
    percentiles: tuple[int, ...] = CONE_PERCENTILES,
) -> dict[int, np.ndarray]:
    """Annualised realised-vol percentiles per window (overlapping windows of daily returns).

    Returns ``{window_days: array of len(percentiles)}``.
    """
    cone = {}
    for window in windows_days:
        rolling = np.lib.stride_tricks.sliding_window_view(returns, window)
        vols = rolling.std(axis=1, ddof=1) * np.sqrt(DAYS_PER_YEAR)
        cone[window] = np.percentile(vols, percentiles)
    return cone


def load_funding_rates(path: str | Path) -> np.ndarray:
    """The ``last_funding_rate`` column (fraction per interval) of a Binance funding CSV."""
    header = Path(path).read_text().split("\n", 1)[0].strip().split(",")
    if "last_funding_rate" not in header:
        raise ValueError(f"{path}: missing column 'last_funding_rate'")
    usecols = (header.index("last_funding_rate"),)
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=usecols, ndmin=1)


def funding_stats(
    rates: np.ndarray, quantiles: tuple[float, ...] = FUNDING_QUANTILES
) -> FundingStats:
    """Mean, std and quantiles of funding rates (fractions per 8 h)."""
    values = np.quantile(rates, quantiles)
    return FundingStats(
        mean=float(rates.mean()),
        std=float(rates.std(ddof=1)),
        quantiles={q: float(v) for q, v in zip(quantiles, values, strict=True)},
    )
