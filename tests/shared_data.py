"""Real market data for tests: ``../shared/data`` beside the checkout, or a one-line skip.

A fresh clone has no ``../shared``: tests that check facts of the real files skip with the
reason :func:`shared_file` gives; tests that check a property that holds on any data use the
small generated files of :func:`write_klines` and :func:`write_book_depth` instead.
``backstop data download`` fetches the same kind of files from Binance's public archive.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
OCT10_KLINES = "btcusdt-perp-1m-2025-10-10.csv"
OCT10_DEPTH = "btcusdt-perp-bookdepth-2025-10-10.csv"
DAILY_CLOSES = "btcusd-1d-2011-2025.csv"
FUNDING_8H = "btcusdt-perp-funding-8h-2020-2026.csv"
KLINE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                "taker_buy_volume,taker_buy_quote_volume,ignore")
DEPTH_HEADER = "timestamp,percentage,depth,notional"


def has_shared(name: str) -> bool:
    """Whether ``../shared/data/<name>`` is present."""
    return (DATA_DIR / name).is_file()


def shared_file(name: str) -> Path:
    """``../shared/data/<name>``, or skip the calling test with a one-line reason."""
    path = DATA_DIR / name
    if not path.is_file():
        pytest.skip(f"real data ../shared/data/{name} absent (fresh clone)")
    return path


def write_klines(path: Path, closes: np.ndarray, start_ms: int = 1_760_097_600_000) -> Path:
    """A one-minute kline CSV in Binance's layout: bar ``i`` opens at the previous close and
    closes at ``closes[i]``; high and low are the bar's extremes widened by 0.01 %."""
    closes = np.asarray(closes, dtype=np.float64)
    opens = np.r_[closes[0], closes[:-1]]
    rows = [KLINE_HEADER]
    for i, (o, c) in enumerate(zip(opens, closes, strict=True)):
        t = start_ms + 60_000 * i
        high, low = max(o, c) * 1.0001, min(o, c) * 0.9999
        rows.append(f"{t},{o:.1f},{high:.1f},{low:.1f},{c:.1f},1.0,{t + 59_999},{c:.1f},1,0.5,{c / 2:.1f},0")
    path.write_text("\n".join(rows) + "\n")
    return path


def crash_closes(n: int = 120, start: float = 121_500.0, low_share: float = 0.84) -> np.ndarray:
    """A crash shaped like 2025-10-10, closes in USDT: flat for a third of the bars, a slide
    of 4 %, a gap to ``low_share`` of the start in three bars (liquidations fill past their
    bankruptcy prices), then a rebound halfway back."""
    calm, slide = n // 3, n // 6
    gap, rebound = 3, n - n // 3 - n // 6 - 3
    return np.r_[np.full(calm, start),
                 np.linspace(start, start * 0.96, slide),
                 np.geomspace(start * 0.96, start * low_share, gap + 1)[1:],
                 np.linspace(start * low_share, start * (1 + low_share) / 2, rebound + 1)[1:]]


def write_book_depth(path: Path, snapshots: int = 4, start: str = "2025-10-10 00:00:07",
                     bid_btc: tuple[float, ...] = (100.0, 300.0, 600.0, 1000.0, 1500.0)) -> Path:
    """A bookDepth CSV in Binance's layout: ``snapshots`` rows of the ten bands, 30 s apart,
    asks twice as deep as bids, notional at 100,000 USDT per BTC."""
    t0 = dt.datetime.fromisoformat(start)
    rows = [DEPTH_HEADER]
    for k in range(snapshots):
        stamp = (t0 + dt.timedelta(seconds=30 * k)).strftime("%Y-%m-%d %H:%M:%S")
        for pct in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5):
            depth = bid_btc[abs(pct) - 1] * (1 if pct < 0 else 2)
            rows.append(f"{stamp},{pct},{depth},{depth * 100_000.0}")
    path.write_text("\n".join(rows) + "\n")
    return path


def crash_day(tmp_dir: Path) -> tuple[Path, Path, bool]:
    """``(klines, book depth, real)``: the real 2025-10-10 files when present, else a generated
    two-hour crash (:func:`crash_closes`) and a thin book written into ``tmp_dir``."""
    if has_shared(OCT10_KLINES) and has_shared(OCT10_DEPTH):
        return DATA_DIR / OCT10_KLINES, DATA_DIR / OCT10_DEPTH, True
    klines = write_klines(tmp_dir / "crash-klines.csv", crash_closes())
    depth = write_book_depth(tmp_dir / "crash-depth.csv", bid_btc=(17.654, 17.654, 30.0, 40.0, 60.0))
    return klines, depth, False
