"""Market impact from the 2025-10-10 book depth bands."""

import numpy as np
import pytest

from backstop.sim.impact import (
    CRASH_CURVE,
    DAY_MEDIAN_CURVE,
    DepthCurve,
    impact_at,
    impact_fraction,
    load_book_depth,
    parse_utc_ms,
)
from shared_data import OCT10_DEPTH, shared_file, write_book_depth

# Cumulative 100, 300, 600, 1000, 1500 BTC bids; asks twice that. USDT = BTC × 100,000.
TOY = DepthCurve(
    bid_btc=np.array([100.0, 300.0, 600.0, 1000.0, 1500.0]),
    ask_btc=np.array([200.0, 600.0, 1200.0, 2000.0, 3000.0]),
    bid_usdt=np.array([100.0, 300.0, 600.0, 1000.0, 1500.0]) * 1e5,
    ask_usdt=np.array([200.0, 600.0, 1200.0, 2000.0, 3000.0]) * 1e5,
)


@pytest.fixture(scope="module")
def book():
    return load_book_depth(shared_file(OCT10_DEPTH))


def test_toy_curve_by_hand():
    # 50 BTC: half of the first band -> 0.5 %; 200 BTC: 1 % + (100/200)·1 % = 1.5 %;
    # 2000 BTC: past 5 %, last slope 1 %/500 BTC -> 5 % + 500·(1 %/500) = 6 %.
    np.testing.assert_allclose(
        impact_fraction(TOY, [0, 50, 200, 1500, 2000], "sell"), [0, 0.005, 0.015, 0.05, 0.06]
    )
    # Buying consumes asks, which are twice as deep: 200 BTC -> 1 %.
    assert impact_fraction(TOY, 200.0, "buy") == pytest.approx(0.01)
    # 2e7 USDT against bid notional 1e7 (1 %) .. 3e7 (2 %) -> 1.5 %.
    assert impact_fraction(TOY, 2e7, "sell", unit="usdt") == pytest.approx(0.015)


def test_flat_bands_take_the_further_band():
    # The crash curve has 17.654 BTC at both 1 % and 2 %: 10 BTC reads 2 %·10/17.654.
    assert impact_fraction(CRASH_CURVE, 10.0, "sell") == pytest.approx(0.02 * 10 / 17.654)
    assert impact_fraction(CRASH_CURVE, 17.654, "sell") == pytest.approx(0.02)


def test_impact_is_monotone_in_size():
    sizes = np.linspace(0, 20_000, 2001)
    for curve in (DAY_MEDIAN_CURVE, CRASH_CURVE):
        for side in ("buy", "sell"):
            assert np.all(np.diff(impact_fraction(curve, sizes, side)) >= 0)


def test_crash_bids_are_thinner_than_the_day():
    assert np.all(CRASH_CURVE.bid_btc < DAY_MEDIAN_CURVE.bid_btc)
    assert impact_fraction(CRASH_CURVE, 100.0, "sell") > 10 * impact_fraction(
        DAY_MEDIAN_CURVE, 100.0, "sell"
    )


def test_book_loads_every_snapshot_including_the_leading_space_one(book):
    assert book.time_ms.size == 2879
    assert np.all(np.diff(book.time_ms) > 0)
    # Row " 2025-10-10 21:34:32,-4,17.654,...": the -4 % bid band is bid index 3.
    i = int(np.searchsorted(book.time_ms, parse_utc_ms(" 2025-10-10 21:34:32")))
    assert book.bid_btc[i, 3] == 17.654


def test_curve_at_takes_the_latest_snapshot_at_or_before(book):
    first = parse_utc_ms("2025-10-10 00:00:07")
    second = parse_utc_ms("2025-10-10 00:00:49")
    np.testing.assert_array_equal(book.curve_at(first).bid_btc, book.bid_btc[0])
    np.testing.assert_array_equal(book.curve_at(second - 1).bid_btc, book.bid_btc[0])
    np.testing.assert_array_equal(book.curve_at(second).bid_btc, book.bid_btc[1])
    # First row of the file: 00:00:07, -1 % band, then -5 % = 8,243.012 BTC.
    assert book.bid_btc[0, 4] == 8243.012
    with pytest.raises(ValueError, match="no depth snapshot"):
        book.curve_at(first - 1)
    assert impact_at(book, second, 0.0, "sell") == 0.0


def test_shipped_curves_match_a_refit(book):
    day = book.summary()
    crash = book.summary(parse_utc_ms("2025-10-10 20:50:00"), parse_utc_ms("2025-10-10 21:30:00"))
    for shipped, fitted in ((DAY_MEDIAN_CURVE, day), (CRASH_CURVE, crash)):
        for name in ("bid_btc", "ask_btc", "bid_usdt", "ask_usdt"):
            np.testing.assert_allclose(getattr(shipped, name), getattr(fitted, name), rtol=1e-4)


def test_bad_layout_is_rejected(tmp_path):
    missing = tmp_path / "missing.csv"
    missing.write_text("timestamp,percentage,notional\n2025-10-10 00:00:07,-5,1\n")
    with pytest.raises(ValueError, match="missing column 'depth'"):
        load_book_depth(missing)
    partial = tmp_path / "partial.csv"
    partial.write_text("timestamp,percentage,depth,notional\n2025-10-10 00:00:07,-5,1,1\n")
    with pytest.raises(ValueError, match="10 bands"):
        load_book_depth(partial)
    generated = load_book_depth(write_book_depth(tmp_path / "depth.csv"))
    with pytest.raises(ValueError, match="no depth snapshots"):
        generated.summary(0, 1)


def test_generated_book_reads_back_its_bands(tmp_path):
    book = load_book_depth(write_book_depth(tmp_path / "depth.csv", snapshots=3))
    assert book.time_ms.size == 3 and np.all(np.diff(book.time_ms) == 30_000)
    np.testing.assert_array_equal(book.bid_btc[0], [100, 300, 600, 1000, 1500])
    np.testing.assert_array_equal(book.ask_btc[2], [200, 600, 1200, 2000, 3000])
    # 50 BTC sold into 100 BTC at 1 %: half the first band.
    assert impact_at(book, int(book.time_ms[1]), 50.0, "sell") == pytest.approx(0.005)
