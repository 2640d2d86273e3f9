"""Seeded price paths (GBM, GARCH(1,1), Merton jumps) and loaders for real OHLC data.

Every generator takes a numpy ``Generator`` and returns float64 prices of shape
``(n_paths, n_steps + 1)``; column 0 is the start price ``s0`` (USDT per BTC).
Rates are annualised on a 365-day year (crypto trades every day); ``dt_years`` is
the step length in years, e.g. :data:`MINUTE_YEARS`.

Loaders return :class:`Ohlc`, one bar per minute with open times in epoch ms.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MINUTE_YEARS = 1.0 / (365.0 * 24.0 * 60.0)
MINUTE_DAYS = 1.0 / (24.0 * 60.0)
MINUTE_MS = 60_000

KLINE_COLUMNS = ("open_time", "open", "high", "low", "close")
TRADE_COLUMNS = ("timestamp", "price")


@dataclass(frozen=True)
class GarchParams:
    """GARCH(1,1) on log returns: ``var_t = omega + alpha·eps_{t-1}² + beta·var_{t-1}``.

    ``omega`` is in squared log return per step; ``nu`` is the Student-t degrees of
    freedom (``inf`` for normal innovations).
    """

    omega: float
    alpha: float
    beta: float
    nu: float = float("inf")

    @property
    def persistence(self) -> float:
        return self.alpha + self.beta

    @property
    def unconditional_var(self) -> float:
        """Long-run variance of one step's log return."""
        return self.omega / (1.0 - self.persistence)

    def rescaled(self, h: float) -> GarchParams:
        """Convert to steps ``h`` times as long (``h = MINUTE_DAYS`` takes daily to 1 min).

        A heuristic, not an exact temporal aggregation. It keeps (1) the long-run
        variance per unit of time, (2) the half-life of a volatility shock in calendar
        time (persistence ``p -> p**h``) and (3) the GARCH share of one step's kurtosis,
        ``alpha² / (1 - p²)``.
        """
        p = self.persistence
        p_h = p**h
        alpha_h = self.alpha * np.sqrt((1.0 - p_h**2) / (1.0 - p**2))
        omega_h = self.unconditional_var * h * (1.0 - p_h)
        return GarchParams(float(omega_h), float(alpha_h), float(p_h - alpha_h), self.nu)


@dataclass(frozen=True)
class Ohlc:
    """One-minute bars: ``time_ms`` (int64 epoch ms of the open) and float64 prices."""

    time_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray


def _prices_from_log_returns(s0: float, log_returns: np.ndarray) -> np.ndarray:
    """Prices ``(n_paths, n_steps + 1)`` starting at ``s0`` from per-step log returns."""
    log_path = np.zeros((log_returns.shape[0], log_returns.shape[1] + 1))
    np.cumsum(log_returns, axis=1, out=log_path[:, 1:])
    return s0 * np.exp(log_path)


def standard_t(rng: np.random.Generator, nu: float, size: tuple[int, ...]) -> np.ndarray:
    """Student-t draws scaled to unit variance (standard normal when ``nu`` is inf)."""
    if np.isinf(nu):
        return rng.standard_normal(size)
    if nu <= 2.0:
        raise ValueError(f"nu must exceed 2 for unit variance, got {nu}")
    return rng.standard_t(nu, size) * np.sqrt((nu - 2.0) / nu)


def gbm_paths(
    rng: np.random.Generator,
    s0: float,
    n_paths: int,
    n_steps: int,
    dt_years: float,
    mu: float,
    sigma: float,
) -> np.ndarray:
    """Geometric Brownian motion with annual drift ``mu`` and annual volatility ``sigma``."""
    z = rng.standard_normal((n_paths, n_steps))
    log_returns = (mu - 0.5 * sigma**2) * dt_years + sigma * np.sqrt(dt_years) * z
    return _prices_from_log_returns(s0, log_returns)


def garch_paths(
    rng: np.random.Generator,
    s0: float,
    n_paths: int,
    n_steps: int,
    params: GarchParams,
    var0: float | None = None,
) -> np.ndarray:
    """GARCH(1,1) log returns with zero mean, ``params`` in per-step units.

    ``var0`` is the first step's variance (default: the long-run variance). Innovations
    are unit-variance Student-t with ``params.nu`` degrees of freedom (normal if inf).
    """
    z = standard_t(rng, params.nu, (n_paths, n_steps))
    var = np.full(n_paths, params.unconditional_var if var0 is None else var0)
    log_returns = np.empty((n_paths, n_steps))
    for k in range(n_steps):
        log_returns[:, k] = np.sqrt(var) * z[:, k]
        var = params.omega + params.alpha * log_returns[:, k] ** 2 + params.beta * var
    return _prices_from_log_returns(s0, log_returns)


def merton_paths(
    rng: np.random.Generator,
    s0: float,
    n_paths: int,
    n_steps: int,
    dt_years: float,
    mu: float,
    sigma: float,
    jump_rate: float,
    jump_mean: float,
    jump_std: float,
) -> np.ndarray:
    """Merton jump-diffusion: GBM plus Poisson jumps in the log price.

    ``jump_rate`` is jumps per year; each jump adds N(``jump_mean``, ``jump_std``²) to the
    log price. The drift is compensated so the expected price grows at ``mu``.
    """
    kappa = np.exp(jump_mean + 0.5 * jump_std**2) - 1.0
    drift = (mu - 0.5 * sigma**2 - jump_rate * kappa) * dt_years
    z = rng.standard_normal((n_paths, n_steps))
    n_jumps = rng.poisson(jump_rate * dt_years, (n_paths, n_steps))
    jumps = n_jumps * jump_mean + np.sqrt(n_jumps) * jump_std * rng.standard_normal(z.shape)
    log_returns = drift + sigma * np.sqrt(dt_years) * z + jumps
    return _prices_from_log_returns(s0, log_returns)


def _read_header(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return [name.strip() for name in next(csv.reader(handle))]


def _require_columns(found: list[str], needed: tuple[str, ...], path: Path) -> list[int]:
    """Indices of ``needed`` in ``found``; ValueError naming the first missing column."""
    for name in needed:
        if name not in found:
            raise ValueError(f"{path}: missing column {name!r} (found {', '.join(found)})")
    return [found.index(name) for name in needed]


def _read_columns(path: Path, needed: tuple[str, ...]) -> list[np.ndarray]:
    """The ``needed`` columns of a CSV or Parquet file as float64 arrays."""
    if path.suffix == ".parquet":
        return _read_parquet_columns(path, needed)
    usecols = _require_columns(_read_header(path), needed, path)
    table = np.loadtxt(path, delimiter=",", skiprows=1, usecols=usecols, ndmin=2)
    return [table[:, i] for i in range(len(needed))]


def _read_parquet_columns(path: Path, needed: tuple[str, ...]) -> list[np.ndarray]:
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ImportError(f"reading {path} needs pyarrow: pip install pyarrow") from error
    schema_names = pq.read_schema(path).names
    _require_columns(list(schema_names), needed, path)
    table = pq.read_table(path, columns=list(needed))
    return [table.column(name).to_numpy().astype(np.float64) for name in needed]


def load_klines(path: str | Path) -> Ohlc:
    """Binance-layout klines (``open_time`` epoch ms, ``open, high, low, close``).

    Accepts ``.csv`` or ``.parquet`` (needs pyarrow) with the same column names.
    Rows are sorted by open time.
    """
    open_time, *prices = _read_columns(Path(path), KLINE_COLUMNS)
    order = np.argsort(open_time, kind="stable")
    return Ohlc(open_time[order].astype(np.int64), *(column[order] for column in prices))


def load_trades(path: str | Path) -> Ohlc:
    """tardis.dev-style trades (``timestamp`` in µs, ``price``) resampled to 1-minute bars.

    A minute without trades repeats the previous close as a flat bar, so minutes are
    contiguous from the first trade's minute to the last one's.
    """
    timestamp_us, price = _read_columns(Path(path), TRADE_COLUMNS)
    if price.size == 0:
        raise ValueError(f"{path}: no trades")
    order = np.argsort(timestamp_us, kind="stable")
    minute = (timestamp_us[order] // (MINUTE_MS * 1000)).astype(np.int64)
    return _resample_minutes(minute, price[order])


def _resample_minutes(minute: np.ndarray, price: np.ndarray) -> Ohlc:
    """Bars from time-sorted trades; ``minute`` is epoch minutes per trade."""
    index = minute - minute[0]
    n_bars = int(index[-1]) + 1
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    ends = np.r_[starts[1:], index.size] - 1
    traded = index[starts]
    close = np.full(n_bars, np.nan)
    close[traded] = price[ends]
    filled = np.maximum.accumulate(np.where(np.isnan(close), 0, np.arange(n_bars)))
    close = close[filled]
    open_, high, low = close.copy(), close.copy(), close.copy()
    open_[traded] = price[starts]
    high[traded] = np.maximum.reduceat(price, starts)
    low[traded] = np.minimum.reduceat(price, starts)
    time_ms = (minute[0] + np.arange(n_bars, dtype=np.int64)) * MINUTE_MS
    return Ohlc(time_ms, open_, high, low, close)


@dataclass(frozen=True)
class Universe:
    """Instruments priced together: BTC first (the driver), then altcoins; arrays of shape (n,).

    ``s0``: start price (USDT per coin). ``vol_ratio``: calm volatility / BTC's. ``corr``: (n, n)
    correlation of one-minute log returns. ``beta`` (derived): ``corr[:, 0]·vol_ratio``, the
    altcoin's log-return loading on BTC's. ``sources``: where each group of values came from.
    """

    inst_ids: tuple[str, ...]
    s0: np.ndarray
    vol_ratio: np.ndarray
    corr: np.ndarray
    sources: dict[str, str]

    def __post_init__(self) -> None:
        n = len(self.inst_ids)
        if self.s0.shape != (n,) or self.vol_ratio.shape != (n,) or self.corr.shape != (n, n):
            raise ValueError(f"universe: s0, vol_ratio need shape ({n},) and corr ({n}, {n})")
        if not np.allclose(self.corr, self.corr.T) or not np.allclose(np.diag(self.corr), 1.0):
            raise ValueError("universe: corr must be symmetric with a unit diagonal")
        if np.linalg.eigvalsh(self.corr).min() <= 0:
            raise ValueError("universe: corr must be positive definite")
        if self.vol_ratio[0] != 1.0:
            raise ValueError("universe: the first instrument is the driver (vol_ratio 1)")

    @property
    def size(self) -> int:
        return len(self.inst_ids)

    @property
    def beta(self) -> np.ndarray:
        return self.corr[:, 0] * self.vol_ratio

    def take(self, n: int) -> Universe:
        """The first ``n`` instruments."""
        if not 1 <= n <= self.size:
            raise ValueError(f"instruments must be in 1..{self.size}, got {n}")
        return Universe(self.inst_ids[:n], self.s0[:n], self.vol_ratio[:n], self.corr[:n, :n], self.sources)

    def residual_cholesky(self) -> np.ndarray:
        """Lower Cholesky factor (n-1, n-1) of the altcoins' residual correlation given BTC,
        in units of their own volatility: ``vol_i·vol_j·(corr_ij - corr_i0·corr_j0)``."""
        rho = self.corr[1:, 0]
        residual = self.corr[1:, 1:] - np.outer(rho, rho)
        scale = self.vol_ratio[1:]
        return np.linalg.cholesky(residual * np.outer(scale, scale))


SHIPPED_UNIVERSE = Universe(
    inst_ids=("BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT", "DOGE-USDT"),
    s0=np.array([121_500.0, 4_350.0, 222.0, 2.80, 0.250]),
    vol_ratio=np.array([1.0, 1.3, 1.6, 1.5, 1.8]),
    corr=np.array([
        [1.00, 0.80, 0.75, 0.65, 0.72],
        [0.80, 1.00, 0.75, 0.62, 0.70],
        [0.75, 0.75, 1.00, 0.60, 0.68],
        [0.65, 0.62, 0.60, 1.00, 0.65],
        [0.72, 0.70, 0.68, 0.65, 1.00],
    ]),
    sources={
        "s0": "BTC: btcusdt-perp-1m-2025-10-10.csv first open (rounded); altcoins: assumption, "
              "their approximate prices on 2025-10-10 (no altcoin data in shared/data)",
        "vol_ratio": "assumption: usual 2024-25 volatility of ETH, SOL, XRP, DOGE relative to BTC's "
                     "(order of magnitude); `backstop calibrate --klines` fits it from downloaded files",
        "corr": "assumption: usual 2024-25 correlations of daily returns (0.6-0.8 with BTC); "
                "`backstop calibrate --klines` fits it from downloaded files",
    },
)
"""The shipped five-instrument universe. Only BTC data ships, so the altcoin values are stated
assumptions; with them the exogenous altcoin move on a BTC crash is about beta (1.0-1.3) times
BTC's, and what takes altcoins down 40-80 % on 2025-10-10 has to come from the feedback of their
far thinner books (:mod:`backstop.sim.feedback`)."""


def correlated_log_paths(driver_prices: np.ndarray, universe: Universe,
                         rng: np.random.Generator) -> np.ndarray:
    """Log prices (n_paths, n_instruments, n_times) of ``universe`` given BTC's prices.

    Each altcoin's step log return is ``beta_i·r_BTC + e_i``: ``e`` is normal with the residual
    covariance of :meth:`Universe.residual_cholesky` times the per-path variance of BTC's step
    returns (so a crash path's altcoins get crash-sized noise), ``r_BTC`` the driver's own return.
    Column 0 is ``log s0`` of each instrument; BTC's path is rescaled to start at ``s0[0]``.
    """
    driver = np.log(np.asarray(driver_prices, dtype=np.float64))
    returns = np.diff(driver, axis=1)
    n_paths, n_steps = returns.shape
    out = np.empty((n_paths, universe.size, n_steps + 1))
    out[:, :, 0] = np.log(universe.s0)
    step_returns = returns[:, None, :] * universe.beta[None, :, None]
    if universe.size > 1:
        sigma = returns.std(axis=1)[:, None, None]
        noise = np.einsum("ij,pjt->pit", universe.residual_cholesky(),
                          rng.standard_normal((n_paths, universe.size - 1, n_steps)))
        step_returns[:, 1:, :] += sigma * noise
    np.cumsum(step_returns, axis=2, out=out[:, :, 1:])
    out[:, :, 1:] += out[:, :, :1]
    return out
