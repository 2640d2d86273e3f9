"""Price sources for simulated markets: the built-in 2025-10-10 crash model, a kline replay,
and the correlated family paths that move every coin along BTC.

:class:`CrashScenario` is the default market of ``backstop serve`` and of a bare
``backstop stress``: one cycle bridges the :data:`CRASH_ANCHORS` (BTC-USDT on 2025-10-10
20:30-23:30 UTC, the low of 101,516.5 at 21:20 as in Binance's 1-minute klines) with seeded,
fat-tailed noise; :func:`crash_closes` gives a number of its one-minute closes. Prices are
floats (a price model); whoever sends them to the engine converts them to exact decimals
(:func:`index_decimal`).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from decimal import Decimal
from pathlib import Path

import numpy as np

from backstop.model.catalogue import Catalogue
from backstop.sim.calibrate import FITTED_GARCH_DAILY, FITTED_GBM
from backstop.sim.paths import MINUTE_YEARS, load_klines, standard_t

BAR_MS = 60_000
"""Scenario time per tick (one-minute bars)."""
SCENARIO_START_MS = 1_760_128_200_000
"""2025-10-10 20:30:00 UTC, where each crash cycle starts."""
CRASH_ANCHORS: tuple[tuple[int, float, float], ...] = (
    (0, 116_400.0, 1.0),
    (20, 116_400.0, 4.0),     # 20:50 the fall starts
    (50, 101_516.5, 3.0),     # 21:20 the low
    (60, 109_250.0, 2.0),     # 21:30 rebound
    (90, 113_200.0, 1.0),     # 22:00
    (180, 116_400.0, 0.0),    # 23:30 calm recovery, then the next cycle
)
"""``(minute, BTC-USDT price, volatility multiple of the segment that starts here)``."""
CRASH_FLOOR_WINDOW = (20, 60)
"""Minutes in which no price goes below the 21:20 low."""
CALM_SIGMA_PER_BAR = FITTED_GBM.sigma * math.sqrt(MINUTE_YEARS)
"""One-minute log volatility of the fitted GBM (about 9 bp)."""
BETAS = {"BTC": 1.0, "ETH": 1.3, "SOL": 1.6, "XRP": 1.5, "DOGE": 1.7}
"""Log-return beta of each coin against BTC; others use :data:`DEFAULT_BETA`."""
DEFAULT_BETA = 1.4
IDIO_SIGMA_PER_BAR = 0.0012
IDIO_PERSISTENCE = 0.97
class CrashScenario:
    """BTC-USDT index per bar: each cycle bridges the :data:`CRASH_ANCHORS` with seeded,
    fat-tailed noise (Student-t with the fitted GARCH ``nu``), then repeats."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.start_ms = SCENARIO_START_MS
        self._buffer: deque[float] = deque()

    def next_price(self) -> float:
        if not self._buffer:
            self._buffer.extend(self._cycle())
        return self._buffer.popleft()

    def _cycle(self) -> list[float]:
        prices: list[float] = []
        for (m0, p0, vol), (m1, p1, _) in itertools.pairwise(CRASH_ANCHORS):
            prices.extend(bridge(self.rng, p0, p1, m1 - m0, CALM_SIGMA_PER_BAR * vol))
        low = CRASH_ANCHORS[2][1]
        first, last = CRASH_FLOOR_WINDOW
        for k in range(first, last):
            if k != CRASH_ANCHORS[2][0]:
                prices[k] = max(prices[k], low * 1.0005)
        return prices


def bridge(rng: np.random.Generator, start: float, end: float, steps: int,
           sigma: float) -> list[float]:
    """``steps`` prices from ``start`` (included) towards ``end`` (excluded): a log-space
    Brownian bridge with per-step volatility ``sigma``."""
    z = standard_t(rng, FITTED_GARCH_DAILY.nu, (steps,)) * sigma
    walk = np.concatenate(([0.0], np.cumsum(z)))
    k = np.arange(steps + 1) / steps
    log_path = math.log(start) + k * (math.log(end) - math.log(start)) + walk - k * walk[-1]
    return [float(x) for x in np.exp(log_path[:-1])]


class KlineReplay:
    """Closes of a kline CSV or Parquet file (``open_time, open, high, low, close``), one per
    tick, from the first bar again after the last."""

    def __init__(self, path: str | Path) -> None:
        ohlc = load_klines(path)
        if ohlc.close.size == 0:
            raise ValueError(f"{path}: no klines")
        self.closes = [float(x) for x in ohlc.close]
        self.start_ms = int(ohlc.time_ms[0])
        self._next = 0

    def next_price(self) -> float:
        price = self.closes[self._next % len(self.closes)]
        self._next += 1
        return price


class FamilyPaths:
    """Every family's index: ``p0·exp(β·(log btc − log btc0) + e)`` with ``e`` a seeded
    AR(1) noise (none for BTC families, which follow the source exactly)."""

    def __init__(self, catalogue: Catalogue, rng: np.random.Generator, btc0: float) -> None:
        self.rng = rng
        self.btc0 = btc0
        families = catalogue.families()
        self.families = sorted(families)
        self.start = {f: btc0 if _coin(f) == "BTC" else float(families[f][0].index_px)
                      for f in self.families}
        self.noise = dict.fromkeys(self.families, 0.0)

    def step(self, btc: float) -> dict[str, float]:
        shocks = self.rng.standard_normal(len(self.families)) * IDIO_SIGMA_PER_BAR
        move = math.log(btc / self.btc0)
        out = {}
        for family, shock in zip(self.families, shocks, strict=True):
            coin = _coin(family)
            if coin != "BTC":
                self.noise[family] = IDIO_PERSISTENCE * self.noise[family] + float(shock)
            beta = BETAS.get(coin, DEFAULT_BETA)
            out[family] = self.start[family] * math.exp(beta * move + self.noise[family])
        return out


def _coin(family: str) -> str:
    return family.split("-", 1)[0]


def index_decimal(px: float) -> Decimal:
    """A model price as an exact decimal for ``SetIndexPrice`` (10 significant digits; the
    engine rounds it half-even to each instrument's tick)."""
    return Decimal(f"{px:.10g}")


CRASH_CYCLE_MINUTES = CRASH_ANCHORS[-1][0]
"""Minutes in one crash cycle (180)."""


def crash_closes(rng: np.random.Generator, minutes: int = CRASH_CYCLE_MINUTES) -> np.ndarray:
    """``minutes + 1`` one-minute BTC-USDT prices of the crash model from 20:30 UTC (the
    cycle repeats past :data:`CRASH_CYCLE_MINUTES`)."""
    source = CrashScenario(rng)
    return np.array([source.next_price() for _ in range(minutes + 1)])
