"""The cascade feedback rule (backstop.sim.feedback): its equations, its fitters, its shipped values."""

import math

import numpy as np
import pytest

from backstop.sim import feedback as fb
from backstop.sim.impact import BAND_FRACTIONS, load_book_depth
from backstop.sim.paths import load_klines
from shared_data import OCT10_DEPTH, OCT10_KLINES, shared_file

BTC = fb.BTC_FEEDBACK


def test_flow_equal_to_depth_moves_one_percent_and_sells_push_down():
    assert fb.impact_log_return(-BTC.depth_usd, BTC.depth_usd, BTC.impact_exponent) == pytest.approx(-0.01)
    assert fb.impact_log_return(BTC.depth_usd, BTC.depth_usd, 0.5) == pytest.approx(0.01)
    assert fb.impact_log_return(0.0, BTC.depth_usd, 1.0) == 0.0


def test_impact_grows_with_flow_and_shrinks_with_depth():
    flows = np.geomspace(1e4, 1e10, 25)
    moves = [fb.impact_log_return(-f, 1e8, 1.06) for f in flows]
    assert np.all(np.diff(moves) < 0)
    assert fb.impact_log_return(-1e7, 1e7, 1.06) < fb.impact_log_return(-1e7, 1e9, 1.06) < 0


def test_decay_halves_per_half_life_and_composes():
    assert fb.decay_factor(286.1, 286.1) == pytest.approx(0.5)
    both = fb.decay_factor(60.0, 300.0) * fb.decay_factor(90.0, 300.0)
    assert both == pytest.approx(fb.decay_factor(150.0, 300.0))
    assert fb.decay_factor(60.0, 0.0) == 0.0


def test_depth_share_is_full_when_calm_and_floored_in_a_storm():
    calm = fb.depth_share(BTC.vol_ref * 0.5, BTC.vol_ref, BTC.withdrawal_elasticity, BTC.min_depth_share)
    assert calm == 1.0
    vols = np.linspace(BTC.vol_ref, 20 * BTC.vol_ref, 50)
    shares = [fb.depth_share(v, BTC.vol_ref, BTC.withdrawal_elasticity, BTC.min_depth_share) for v in vols]
    assert np.all(np.diff(shares) <= 0) and shares[-1] == BTC.min_depth_share


def test_ewma_variance_of_constant_returns_tends_to_their_annualised_square():
    variance = 0.0
    for _ in range(2000):
        variance = fb.ewma_variance(variance, 0.001, 60.0)
    assert math.sqrt(variance) == pytest.approx(0.001 * math.sqrt(fb.SECONDS_PER_YEAR / 60.0), rel=1e-9)


def test_fit_impact_exponent_recovers_a_power_law_curve():
    exponent = 1.4
    notional = 5e7 * (BAND_FRACTIONS / 0.01) ** (1 / exponent)
    assert fb.fit_impact_exponent(np.vstack([notional, 2 * notional])) == pytest.approx(exponent)


def test_fit_half_life_recovers_an_ar1():
    rng = np.random.default_rng(7)
    phi = 0.5 ** (30.0 / 300.0)
    x = np.zeros(20_000)
    for i in range(1, x.size):
        x[i] = phi * x[i - 1] + rng.standard_normal()
    assert fb.fit_half_life(x, 30.0) == pytest.approx(300.0, rel=0.1)


def test_fit_withdrawal_recovers_the_rule_it_fits():
    rng = np.random.default_rng(3)
    vol = np.exp(rng.uniform(np.log(0.2), np.log(8.0), 3000))
    share = np.array([fb.depth_share(v, 0.5, 2.5, 0.01) for v in vol])
    vol_ref, elasticity, floor = fb.fit_withdrawal(vol, share)
    assert vol_ref == pytest.approx(0.5, rel=0.05)
    assert elasticity == pytest.approx(2.5, rel=0.05)
    assert floor == pytest.approx(0.01)


def test_shipped_btc_matches_a_refit_of_the_real_day():
    fit = fb.fit_feedback(load_book_depth(shared_file(OCT10_DEPTH)), load_klines(shared_file(OCT10_KLINES)))
    for name in fb.PARAMETERS:
        assert getattr(BTC, name) == pytest.approx(getattr(fit, name), rel=5e-3), name
    assert set(fit.sources) == set(fb.PARAMETERS)


def test_every_shipped_parameter_names_its_source_and_altcoins_are_thinner():
    for params in fb.SHIPPED_FEEDBACK.values():
        assert all(params.sources[name] for name in fb.PARAMETERS)
        if params.inst_id != "BTC-USDT":
            assert params.depth_usd < BTC.depth_usd / 2
            assert "assumption" in params.sources["depth_usd"]


def test_a_parameter_without_a_source_is_refused():
    with pytest.raises(ValueError, match="no source stated for half_life_s"):
        fb.FeedbackParams("X", 1e6, 1.0, 60.0, 0.5, 2.0, 0.1, 1e9,
                          sources={n: "s" for n in fb.PARAMETERS if n != "half_life_s"})
    with pytest.raises(ValueError, match="bad min_depth_share"):
        fb.FeedbackParams("X", 1e6, 1.0, 60.0, 0.5, 2.0, 0.0, 1e9, sources={n: "s" for n in fb.PARAMETERS})


def test_from_calibration_takes_fitted_values_and_keeps_shipped_sources_for_the_rest():
    params = fb.FeedbackParams.from_calibration({"depth_usd": 1e8, "source": "mine.csv", "data": "2026"})
    assert params.depth_usd == 1e8 and params.sources["depth_usd"] == "mine.csv 2026"
    assert params.half_life_s == BTC.half_life_s
    assert params.sources["half_life_s"] == BTC.sources["half_life_s"]
    with pytest.raises(ValueError, match="missing impact_exponent"):
        fb.FeedbackParams.from_calibration({"depth_usd": 1e8}, inst_id="NEW-USDT")


def test_population_depth_stands_to_the_population_as_the_book_to_the_market():
    for params in fb.SHIPPED_FEEDBACK.values():
        assert params.depth_for_population(params.open_interest_usd) == pytest.approx(params.depth_usd)
        hundredth = params.depth_for_population(params.open_interest_usd / 100)
        assert hundredth == pytest.approx(params.depth_usd / 100)
