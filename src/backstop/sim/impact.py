"""Market impact from book depth bands (Binance ``bookDepth``: cumulative depth at ±1..5 %).

Model: a market order of size ``q`` walks the book. The cumulative depth curve on the
side it consumes is known at 1, 2, 3, 4, 5 % from mid; the price impact is read off
that curve by linear interpolation through ``(0, 0)`` and ``(depth_k, k %)``. Beyond the
5 % band it is extrapolated with the slope of the last segment (4 % -> 5 %), which is an
assumption: the data says nothing past 5 %. Where two bands hold the same cumulative
depth (no liquidity between them), the further band wins, so impact never understates.

A sell (closing a long) consumes bids; a buy (closing a short) consumes asks. Sizes are
in BTC (``unit="btc"``, against cumulative ``depth``) or USDT (``unit="usdt"``, against
cumulative ``notional``). Results are fractions of mid (0.01 = 1 %). This is a
statistical model for the Monte Carlo, in floats; it is not used for settlement.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

Side = Literal["buy", "sell"]
Unit = Literal["btc", "usdt"]

BAND_FRACTIONS = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
DEPTH_COLUMNS = ("timestamp", "percentage", "depth", "notional")


@dataclass(frozen=True)
class DepthCurve:
    """Cumulative depth at the 1..5 % bands: BTC (``*_btc``) and USDT (``*_usdt``), shape (5,)."""

    bid_btc: np.ndarray
    ask_btc: np.ndarray
    bid_usdt: np.ndarray
    ask_usdt: np.ndarray

    def depth(self, side: Side, unit: Unit) -> np.ndarray:
        """The cumulative depth a market order on ``side`` consumes, in ``unit``."""
        book_side = "bid" if side == "sell" else "ask"
        return getattr(self, f"{book_side}_{unit}")


@dataclass(frozen=True)
class DepthBook:
    """Depth snapshots: ``time_ms`` (n,) epoch ms sorted, each depth array (n, 5)."""

    time_ms: np.ndarray
    bid_btc: np.ndarray
    ask_btc: np.ndarray
    bid_usdt: np.ndarray
    ask_usdt: np.ndarray

    def curve_at(self, t_ms: int) -> DepthCurve:
        """The latest snapshot at or before ``t_ms`` (epoch ms)."""
        i = int(np.searchsorted(self.time_ms, t_ms, side="right")) - 1
        if i < 0:
            raise ValueError(f"no depth snapshot at or before {t_ms} ms")
        return DepthCurve(self.bid_btc[i], self.ask_btc[i], self.bid_usdt[i], self.ask_usdt[i])

    def summary(self, start_ms: int | None = None, end_ms: int | None = None) -> DepthCurve:
        """Median depth per band over snapshots with ``start_ms <= t < end_ms``."""
        lo = 0 if start_ms is None else np.searchsorted(self.time_ms, start_ms, side="left")
        hi = None if end_ms is None else np.searchsorted(self.time_ms, end_ms, side="left")
        window = slice(lo, hi)
        if self.time_ms[window].size == 0:
            raise ValueError(f"no depth snapshots in [{start_ms}, {end_ms}) ms")
        medians = [np.median(a[window], axis=0) for a in self._arrays()]
        return DepthCurve(*medians)

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return self.bid_btc, self.ask_btc, self.bid_usdt, self.ask_usdt


# Median over 2025-10-10 00:00-24:00 UTC of shared/data/btcusdt-perp-bookdepth-2025-10-10.csv,
# fitted 2026-11-24 (BTC, then USDT, cumulative at 1..5 %).
DAY_MEDIAN_CURVE = DepthCurve(
    bid_btc=np.array([1709.383, 4434.633, 6943.587, 7876.577, 8561.69]),
    ask_btc=np.array([2016.567, 3118.895, 3812.747, 4819.518, 5710.442]),
    bid_usdt=np.array([2.07039e08, 5.31753e08, 8.27723e08, 9.37855e08, 1.01711e09]),
    ask_usdt=np.array([2.44319e08, 3.80450e08, 4.68260e08, 5.94916e08, 7.07901e08]),
)
# Median over the crash, 2025-10-10 20:50-21:30 UTC, same file, fitted 2026-11-24. From 19:15
# on, the file shows 17.654 BTC at both -1 % and -2 %: almost no bids within 2 % of mid.
CRASH_CURVE = DepthCurve(
    bid_btc=np.array([17.654, 17.654, 61.3305, 970.164, 1698.1605]),
    ask_btc=np.array([1960.963, 2364.559, 2573.2755, 2861.4535, 3172.5295]),
    bid_usdt=np.array([2.14255e06, 2.14255e06, 7.01648e06, 1.10364e08, 1.93310e08]),
    ask_usdt=np.array([2.27651e08, 2.75870e08, 3.01049e08, 3.36194e08, 3.73647e08]),
)


def impact_fraction(
    curve: DepthCurve, size: np.ndarray | float, side: Side, unit: Unit = "btc"
) -> np.ndarray:
    """Price impact (fraction of mid, >= 0) of a market order of ``size`` (>= 0) in ``unit``."""
    depth = curve.depth(side, unit)
    keep = np.r_[depth[:-1] < depth[1:], True]
    xs = np.r_[0.0, depth[keep]]
    ys = np.r_[0.0, BAND_FRACTIONS[keep]]
    slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    size = np.asarray(size, dtype=np.float64)
    inside = np.interp(size, xs, ys)
    return np.where(size > xs[-1], ys[-1] + (size - xs[-1]) * slope, inside)


def impact_at(
    book: DepthBook, t_ms: int, size: np.ndarray | float, side: Side, unit: Unit = "btc"
) -> np.ndarray:
    """:func:`impact_fraction` against the latest snapshot at or before ``t_ms``."""
    return impact_fraction(book.curve_at(t_ms), size, side, unit)


def parse_utc_ms(text: str) -> int:
    """``'YYYY-MM-DD HH:MM:SS'`` (UTC, surrounding spaces allowed) -> epoch ms."""
    stamp = dt.datetime.fromisoformat(text.strip()).replace(tzinfo=dt.UTC)
    return int(stamp.timestamp() * 1000)


def load_book_depth(path: str | Path) -> DepthBook:
    """Read a Binance ``bookDepth`` CSV (``timestamp,percentage,depth,notional,...``)."""
    with Path(path).open(newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader)]
        for name in DEPTH_COLUMNS:
            if name not in header:
                raise ValueError(f"{path}: missing column {name!r}")
        cols = [header.index(name) for name in DEPTH_COLUMNS]
        rows = [(parse_utc_ms(r[cols[0]]), *(float(r[c]) for c in cols[1:])) for r in reader]
    table = np.array(rows)
    table = table[np.lexsort((table[:, 1], table[:, 0]))]
    bands = table[:, 1].reshape(-1, 10) if table.shape[0] % 10 == 0 else None
    if bands is None or not np.all(bands == [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]):
        raise ValueError(f"{path}: each snapshot needs exactly the 10 bands -5..-1, 1..5")
    depth = table[:, 2].reshape(-1, 10)
    notional = table[:, 3].reshape(-1, 10)
    return DepthBook(
        time_ms=table[::10, 0].astype(np.int64),
        bid_btc=depth[:, 4::-1].copy(),
        ask_btc=depth[:, 5:].copy(),
        bid_usdt=notional[:, 4::-1].copy(),
        ask_usdt=notional[:, 5:].copy(),
    )
