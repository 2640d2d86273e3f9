"""Calibration: shipped constants match a re-fit from shared/data; fitters recover truth.

The re-fit tests need the real files and skip without them; the property tests run on the
real daily returns when present, else on a seeded GARCH-t path at the shipped constants.
"""

import numpy as np
import pytest

from backstop.sim import calibrate
from backstop.sim.paths import GarchParams, garch_paths, merton_paths
from shared_data import DAILY_CLOSES, FUNDING_8H, has_shared, shared_file

# Shipped constants are rounded to 3-4 significant figures: 0.5 % relative covers that; the
# GARCH fit stops at a simplex tolerance, so it gets 2 %.
ROUNDED = 5e-3
OPTIMISED = 2e-2


@pytest.fixture(scope="module")
def daily_returns():
    return calibrate.log_returns(calibrate.load_daily_closes(shared_file(DAILY_CLOSES)))


@pytest.fixture(scope="module")
def btc_like_returns():
    """Real daily returns since 2020, or 2,093 days of GARCH-t at the shipped daily constants."""
    if has_shared(DAILY_CLOSES):
        return calibrate.log_returns(calibrate.load_daily_closes(shared_file(DAILY_CLOSES)))
    prices = garch_paths(np.random.default_rng(2020), 1.0, 1, 2093, calibrate.FITTED_GARCH_DAILY)
    return np.diff(np.log(prices[0]))


def test_daily_window_starts_in_2020(daily_returns):
    # 2020-01-01 .. 2025-09-24 is 2,094 days, so 2,093 returns.
    assert daily_returns.size == 2093


def test_shipped_gbm_matches_refit(daily_returns):
    fit = calibrate.fit_gbm(daily_returns)
    assert calibrate.FITTED_GBM.mu == pytest.approx(fit.mu, rel=ROUNDED)
    assert calibrate.FITTED_GBM.sigma == pytest.approx(fit.sigma, rel=ROUNDED)


def test_shipped_jump_matches_refit(daily_returns):
    fit = calibrate.fit_jump(daily_returns)
    shipped = calibrate.FITTED_JUMP
    for name in ("mu", "sigma", "jump_rate", "jump_mean", "jump_std"):
        assert getattr(shipped, name) == pytest.approx(getattr(fit, name), rel=ROUNDED), name


def test_shipped_garch_matches_refit(daily_returns):
    fit = calibrate.fit_garch(daily_returns)
    shipped = calibrate.FITTED_GARCH_DAILY
    for name in ("omega", "alpha", "beta", "nu"):
        assert getattr(shipped, name) == pytest.approx(getattr(fit, name), rel=OPTIMISED), name
    assert shipped.persistence < 1


def test_shipped_funding_matches_refit():
    fit = calibrate.funding_stats(calibrate.load_funding_rates(shared_file(FUNDING_8H)))
    shipped = calibrate.FITTED_FUNDING
    assert shipped.mean == pytest.approx(fit.mean, rel=ROUNDED)
    assert shipped.std == pytest.approx(fit.std, rel=ROUNDED)
    for q, value in shipped.quantiles.items():
        assert value == pytest.approx(fit.quantiles[q], rel=ROUNDED), q


def test_garch_fit_recovers_simulated_parameters():
    truth = GarchParams(omega=2e-5, alpha=0.1, beta=0.85, nu=6.0)
    prices = garch_paths(np.random.default_rng(11), 1.0, 1, 6000, truth)
    fit = calibrate.fit_garch(np.diff(np.log(prices[0])))
    assert fit.alpha == pytest.approx(truth.alpha, abs=0.04)
    assert fit.beta == pytest.approx(truth.beta, abs=0.06)
    assert fit.nu == pytest.approx(truth.nu, abs=2.0)


def test_normal_garch_fit_has_infinite_nu(btc_like_returns):
    fit = calibrate.fit_garch(btc_like_returns, student_t=False)
    assert np.isinf(fit.nu)
    assert 0.5 < fit.persistence < 1
    eps = btc_like_returns - btc_like_returns.mean()
    t_fit = calibrate.fit_garch(btc_like_returns)
    # Fat tails: the Student-t likelihood beats the normal one on BTC.
    assert calibrate.garch_neg_loglik(t_fit, eps) < calibrate.garch_neg_loglik(fit, eps)


def test_jump_fit_recovers_rate_from_simulated_merton():
    dt = 1 / 365
    prices = merton_paths(
        np.random.default_rng(12), 1.0, 1, 20_000, dt, 0.0, 0.4, 10.0, -0.15, 0.02
    )
    fit = calibrate.fit_jump(np.diff(np.log(prices[0])))
    # 10 jumps a year of -15 % against a daily sigma of 2.1 %: nearly all pass 3 sigma.
    assert fit.jump_rate == pytest.approx(10.0, rel=0.3)
    assert fit.jump_mean == pytest.approx(-0.15, abs=0.02)
    assert fit.sigma == pytest.approx(0.4, rel=0.05)


def test_nelder_mead_minimises_rosenbrock():
    def rosenbrock(x):
        return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2

    np.testing.assert_allclose(
        calibrate.nelder_mead(rosenbrock, np.array([-1.2, 1.0])), [1, 1], atol=1e-3
    )


def test_volatility_cone_is_ordered_and_plausible(btc_like_returns):
    cone = calibrate.volatility_cone(btc_like_returns)
    assert sorted(cone) == list(calibrate.CONE_WINDOWS_DAYS)
    for window, vols in cone.items():
        assert np.all(np.diff(vols) > 0), window
        assert vols[0] > 0.1 and vols[-1] < 2.0
    # Longer windows average more: the 5-95 spread narrows from 7 to 180 days.
    assert cone[180][-1] - cone[180][0] < cone[7][-1] - cone[7][0]


def test_volatility_cone_of_constant_vol_returns():
    # Alternating ±1 % returns: each window's std is ~1 %, annualised ~0.01·√365 = 0.191.
    returns = np.tile([0.01, -0.01], 200)
    cone = calibrate.volatility_cone(returns, windows_days=(30,))
    np.testing.assert_allclose(cone[30], 0.01 * np.sqrt(365) * np.sqrt(30 / 29), rtol=1e-2)


def test_loaders_name_the_missing_column(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("calc_time,rate\n1,0.1\n")
    with pytest.raises(ValueError, match="last_funding_rate"):
        calibrate.load_funding_rates(bad)
    with pytest.raises(ValueError, match="unix_timestamp"):
        calibrate.load_daily_closes(bad)


def test_shipped_cone_matches_a_refit(daily_returns):
    cone = calibrate.volatility_cone(daily_returns)
    assert sorted(cone) == sorted(calibrate.SHIPPED_CONE)
    for window, vols in cone.items():
        np.testing.assert_allclose(calibrate.SHIPPED_CONE[window], vols, atol=6e-5)
