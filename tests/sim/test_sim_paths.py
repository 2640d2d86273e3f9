"""Price-path generators and OHLC loaders."""

import numpy as np
import pytest

from backstop.sim.paths import (
    MINUTE_DAYS,
    MINUTE_YEARS,
    GarchParams,
    garch_paths,
    gbm_paths,
    load_klines,
    load_trades,
    merton_paths,
    standard_t,
)
from shared_data import OCT10_KLINES, crash_closes, shared_file, write_klines

GARCH = GarchParams(omega=1e-5, alpha=0.08, beta=0.9, nu=5.0)


def _generators():
    return {
        "gbm": lambda rng: gbm_paths(rng, 100.0, 4, 50, MINUTE_YEARS, 0.1, 0.8),
        "garch": lambda rng: garch_paths(rng, 100.0, 4, 50, GARCH),
        "merton": lambda rng: merton_paths(rng, 100.0, 4, 50, 1 / 365, 0.1, 0.5, 20.0, -0.05, 0.1),
    }


@pytest.mark.parametrize("name", ["gbm", "garch", "merton"])
def test_same_seed_gives_identical_paths_and_other_seed_differs(name):
    make = _generators()[name]
    first = make(np.random.default_rng(7))
    assert first.shape == (4, 51)
    assert first.dtype == np.float64
    assert np.all(first[:, 0] == 100.0)
    assert np.all(first > 0)
    np.testing.assert_array_equal(first, make(np.random.default_rng(7)))
    assert not np.array_equal(first, make(np.random.default_rng(8)))


def test_gbm_log_return_moments_match_parameters():
    prices = gbm_paths(np.random.default_rng(1), 1.0, 20_000, 2, 1.0 / 365, 0.5, 0.8)
    log_returns = np.diff(np.log(prices), axis=1).ravel()
    dt = 1.0 / 365
    # mean (mu - sigma²/2)·dt = 0.18·dt; std sigma·√dt = 0.8·√dt; 40,000 draws -> 3 % on std.
    assert abs(log_returns.std() / (0.8 * np.sqrt(dt)) - 1) < 0.03
    assert abs(log_returns.mean() - 0.18 * dt) < 4 * 0.8 * np.sqrt(dt / log_returns.size)


def test_merton_without_jumps_is_gbm_with_the_same_draws():
    gbm = gbm_paths(np.random.default_rng(3), 50.0, 5, 30, 1 / 365, 0.2, 0.6)
    merton = merton_paths(np.random.default_rng(3), 50.0, 5, 30, 1 / 365, 0.2, 0.6, 0.0, -0.1, 0.1)
    np.testing.assert_array_equal(gbm, merton)


def test_merton_jumps_fatten_the_tails():
    rng = np.random.default_rng(4)
    prices = merton_paths(rng, 1.0, 2000, 50, 1 / 365, 0.0, 0.3, 50.0, -0.1, 0.05)
    r = np.diff(np.log(prices), axis=1).ravel()
    excess_kurtosis = ((r - r.mean()) ** 4).mean() / r.var() ** 2 - 3
    assert excess_kurtosis > 3


def test_garch_without_arch_terms_is_constant_variance_normal():
    # alpha = beta = 0 and nu = inf: each log return is sqrt(omega)·z with z the GBM draw.
    flat = GarchParams(omega=1e-4, alpha=0.0, beta=0.0)
    garch = garch_paths(np.random.default_rng(5), 10.0, 3, 40, flat)
    # GBM with mu = sigma²/2 has log return sigma·√dt·z; sigma²·dt = omega.
    gbm = gbm_paths(np.random.default_rng(5), 10.0, 3, 40, 1.0, 0.5e-4, 1e-2)
    np.testing.assert_allclose(garch, gbm, rtol=1e-12)


def test_standard_t_has_unit_variance_and_rejects_small_nu():
    draws = standard_t(np.random.default_rng(6), 6.0, (400_000,))
    assert abs(draws.var() - 1.0) < 0.03
    with pytest.raises(ValueError, match="nu must exceed 2"):
        standard_t(np.random.default_rng(6), 2.0, (3,))


def test_garch_rescaling_keeps_variance_per_time_half_life_and_kurtosis_share():
    daily = GarchParams(omega=2e-5, alpha=0.06, beta=0.93, nu=4.0)
    minute = daily.rescaled(MINUTE_DAYS)
    assert minute.unconditional_var * 1440 == pytest.approx(daily.unconditional_var, rel=1e-9)
    assert minute.persistence**1440 == pytest.approx(daily.persistence, rel=1e-9)
    share = daily.alpha**2 / (1 - daily.persistence**2)
    assert minute.alpha**2 / (1 - minute.persistence**2) == pytest.approx(share, rel=1e-6)
    assert minute.nu == daily.nu


def test_load_klines_reads_the_crash_day():
    bars = load_klines(shared_file(OCT10_KLINES))
    assert bars.time_ms.size == 770
    assert np.all(np.diff(bars.time_ms) == 60_000)
    # README: low of 101,516.5 at 21:20 UTC; 2025-10-10 21:20 UTC = 1760131200000 ms.
    i = int(np.argmin(bars.low))
    assert bars.low[i] == 101_516.5
    assert bars.time_ms[i] == 1_760_131_200_000
    assert np.all(bars.low <= bars.open) and np.all(bars.open <= bars.high)


def test_load_klines_names_the_missing_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("open_time,open,high,close\n1,2,3,4\n")
    with pytest.raises(ValueError, match="missing column 'low'"):
        load_klines(path)


def test_load_trades_resamples_to_minutes_and_fills_gaps(tmp_path):
    path = tmp_path / "trades.csv"
    minute_us = 60_000_000
    rows = [  # (timestamp µs, price), deliberately out of order
        (0 * minute_us + 5, 100.0),
        (0 * minute_us + 1, 101.0),
        (0 * minute_us + 9, 99.0),
        (2 * minute_us + 3, 103.0),
        (2 * minute_us + 7, 102.5),
    ]
    lines = ["exchange,symbol,timestamp,local_timestamp,id,side,price,amount"]
    lines += [
        f"binance-futures,BTCUSDT,{t},{t + 10},id{i},buy,{p},0.1" for i, (t, p) in enumerate(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    bars = load_trades(path)
    # minute 0: trades by time 101, 100, 99 -> O 101 H 101 L 99 C 99; minute 1: none, flat at 99;
    # minute 2: 103 then 102.5 -> O 103 H 103 L 102.5 C 102.5.
    np.testing.assert_array_equal(bars.time_ms, [0, 60_000, 120_000])
    np.testing.assert_array_equal(bars.open, [101.0, 99.0, 103.0])
    np.testing.assert_array_equal(bars.high, [101.0, 99.0, 103.0])
    np.testing.assert_array_equal(bars.low, [99.0, 99.0, 102.5])
    np.testing.assert_array_equal(bars.close, [99.0, 99.0, 102.5])


def test_load_trades_names_the_missing_column(tmp_path):
    path = tmp_path / "trades.csv"
    path.write_text("exchange,symbol,local_timestamp,price\nx,y,1,2\n")
    with pytest.raises(ValueError, match="missing column 'timestamp'"):
        load_trades(path)


def test_parquet_klines_match_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    csv_bars = load_klines(write_klines(tmp_path / "k.csv", crash_closes(90)))
    assert csv_bars.time_ms.size == 90 and csv_bars.low.min() < csv_bars.close[0] * 0.85
    table = pa.table(
        {
            "open_time": csv_bars.time_ms,
            "open": csv_bars.open,
            "high": csv_bars.high,
            "low": csv_bars.low,
            "close": csv_bars.close,
        }
    )
    pq.write_table(table, tmp_path / "k.parquet")
    parquet_bars = load_klines(tmp_path / "k.parquet")
    np.testing.assert_array_equal(parquet_bars.time_ms, csv_bars.time_ms)
    np.testing.assert_array_equal(parquet_bars.low, csv_bars.low)
    pq.write_table(table.drop(["high"]), tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="missing column 'high'"):
        load_klines(tmp_path / "bad.parquet")
