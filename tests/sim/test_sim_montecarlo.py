"""Monte Carlo fast path: hand cases, agreement with the rescan baselines, fund statistics."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backstop.sim.impact import DepthCurve
from backstop.sim.montecarlo import (
    NEVER,
    FundConfig,
    Market,
    first_passage_steps,
    fund_flows,
    fund_needed,
    liquidate_path,
    rescan_steps_numba,
    rescan_steps_numpy,
    rolling_max,
    run_montecarlo,
    summarize_fund,
)
from backstop.sim.paths import Ohlc, gbm_paths, load_klines
from backstop.sim.population import Population, PopulationSpec, generate_population
from shared_data import OCT10_KLINES, shared_file

# 100 BTC bids at 1 %: a 100 BTC sell moves the price 1 %.
TOY = DepthCurve(*(np.array([100.0, 300.0, 600.0, 1000.0, 1500.0]) * f for f in (1, 2, 1e5, 2e5)))


def _accounts(side, leverage, entry_step, notional=10_000.0):
    """Isolated accounts at OKX tier 1 (mmr 0.004, taker 0.0005): r = 0.0045."""
    side = np.asarray(side, dtype=np.int8)
    leverage = np.asarray(leverage, dtype=np.float64)
    return Population(
        side=side,
        leverage=leverage,
        notional_usdt=np.full(side.size, notional),
        isolated=np.ones(side.size, dtype=bool),
        margin_frac=1.0 / leverage,
        entry_step=np.asarray(entry_step, dtype=np.int64),
        mmr=0.004,
        taker_fee=0.0005,
    )


def test_long_gapping_through_its_liquidation_price_by_hand():
    # 10x long of 10,000 USDT at 100: qty 100 BTC, bankruptcy 90, liquidation 90/0.9955 = 90.4068.
    # Prices 95, 91 stay above; 90.3 is the first at or below -> step 3, filled at 90.3 (gap).
    # Fund gets 100·(90.3 - 90) = 30 USDT, of which the fee is 100·90.3·0.0005 = 4.515.
    result = liquidate_path(_accounts([1], [10], [0]), np.array([100.0, 95, 91, 90.3, 85]))
    assert result.step[0] == 3
    assert result.liquidation_price[0] == pytest.approx(90.40683)
    assert result.bankruptcy_price[0] == pytest.approx(90.0)
    assert result.fill_price[0] == 90.3
    assert result.qty_btc[0] == pytest.approx(100.0)
    assert result.fund_flow_usdt[0] == pytest.approx(30.0)
    assert result.fee_usdt[0] == pytest.approx(4.515)


def test_bar_touching_the_liquidation_price_fills_there():
    # Same long; step 3 opens at 91 and trades down to 90.0: fill at the liquidation price,
    # surplus 100·(90.40683 - 90) = 40.683, fee 100·90.40683·0.0005 = 4.520.
    bars = Ohlc(
        time_ms=np.arange(4) * 60_000,
        open=np.array([100.0, 100, 95, 91]),
        high=np.array([100.0, 100, 96, 92]),
        low=np.array([100.0, 94, 91, 90.0]),
        close=np.array([100.0, 95, 91, 91]),
    )
    result = liquidate_path(_accounts([1], [10], [0]), bars)
    assert result.step[0] == 3
    assert result.fill_price[0] == result.liquidation_price[0]
    assert result.fund_flow_usdt[0] == pytest.approx(40.683, abs=1e-3)
    assert result.fee_usdt[0] == pytest.approx(4.520, abs=1e-3)


def test_impact_turns_a_surplus_into_a_deficit_by_hand():
    # 100 BTC sold into 100 BTC of bids within 1 %: fill 90.3·0.99 = 89.397 < bankruptcy 90,
    # so the fund pays 100·(90 - 89.397) = 60.3 and takes no fee.
    result = liquidate_path(_accounts([1], [10], [0]), np.array([100.0, 95, 91, 90.3, 85]), TOY)
    assert result.fill_price[0] == pytest.approx(89.397)
    assert result.fund_flow_usdt[0] == pytest.approx(-60.3)
    assert result.fee_usdt[0] == 0.0


def test_short_and_late_entry_and_exact_touch():
    # Short 10x at 100: liquidation 110/1.0045 = 109.507; step 2 at 109.6 -> flow
    # 100·(110 - 109.6) = 40.
    # A long entering at step 2 (price 109.6) is never liquidated; a long entering at step 3
    # of a path that then touches its liquidation price exactly is liquidated (<=).
    pop = _accounts([-1, 1, 1], [10, 10, 20], [0, 2, 3])
    touch = 105.0 * pop.liquidation_ratio()[2]
    result = liquidate_path(pop, np.array([100.0, 105, 109.6, 105.0, touch]))
    np.testing.assert_array_equal(result.step, [2, NEVER, 4])
    assert result.fund_flow_usdt[0] == pytest.approx(40.0)
    assert np.isnan(result.fill_price[1]) and result.fund_flow_usdt[1] == 0.0


def test_entry_at_the_last_step_is_never_monitored():
    pop = _accounts([1, -1], [100, 100], [4, 4])
    market = Market.from_prices(np.array([[100.0, 1, 1000, 1, 1000]]))
    np.testing.assert_array_equal(first_passage_steps(market, pop), [[NEVER, NEVER]])
    np.testing.assert_array_equal(rescan_steps_numpy(market, pop), [[NEVER, NEVER]])
    with pytest.raises(ValueError, match="entry step 5 is past the last step 4"):
        first_passage_steps(market, _accounts([1], [10], [5]))


def _random_market(rng, n_paths, n_times):
    """OHLC bars with random gaps between one close and the next open."""
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.03, (n_paths, n_times)), axis=1))
    open_ = np.concatenate([close[:, :1], close[:, :-1]], axis=1) * np.exp(
        rng.normal(0, 0.02, close.shape)
    )
    high = np.maximum(open_, close) * (1 + rng.exponential(0.01, close.shape))
    low = np.minimum(open_, close) * (1 - rng.exponential(0.01, close.shape))
    return Market(open_, high, low, close)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_paths=st.integers(1, 3),
    n_times=st.integers(1, 40),
    n_accounts=st.integers(0, 60),
    entry_window=st.integers(0, 45),
)
def test_fast_path_matches_both_rescans_exactly(seed, n_paths, n_times, n_accounts, entry_window):
    rng = np.random.default_rng(seed)
    market = _random_market(rng, n_paths, n_times)
    spec = PopulationSpec(n_accounts=n_accounts, entry_window_steps=entry_window)
    pop = generate_population(spec, rng)
    pop = dataclasses.replace(pop, entry_step=np.minimum(pop.entry_step, n_times - 1))
    fast = first_passage_steps(market, pop)
    np.testing.assert_array_equal(fast, rescan_steps_numpy(market, pop))
    np.testing.assert_array_equal(fast, rescan_steps_numba(market, pop))
    config = FundConfig(initial_usdt=1_000.0, decline_window_steps=5, tail_q=0.5)
    result = run_montecarlo(market, pop, config, TOY)
    baseline_flows = fund_flows(market, pop, rescan_steps_numpy(market, pop), TOY)
    baseline = summarize_fund(baseline_flows, (fast != NEVER).sum(axis=1), config)
    np.testing.assert_array_equal(result.flows_usdt, baseline.flows_usdt)
    np.testing.assert_array_equal(result.fund_min_usdt, baseline.fund_min_usdt)
    assert result.p_adl == baseline.p_adl and result.fund_needed_usdt == baseline.fund_needed_usdt


def test_real_crash_day_fast_path_matches_rescan_and_liquidates_longs():
    market = Market.from_ohlc(load_klines(shared_file(OCT10_KLINES)))
    spec = PopulationSpec(n_accounts=3000, entry_window_steps=300)
    pop = generate_population(spec, np.random.default_rng(9))
    steps = first_passage_steps(market, pop)
    np.testing.assert_array_equal(steps, rescan_steps_numpy(market, pop))
    liquidated = steps[0] != NEVER
    assert np.all(steps[0][liquidated] > pop.entry_step[liquidated])
    # Entries by 17:00 are at 118k or more; the low of 101,516.5 is 0.860 of that, below an
    # isolated 8x long's liquidation at (1 - 1/8)/0.9955 = 0.879 of entry.
    assert market.close[0, :301].min() > 118_000
    exposed = (pop.side > 0) & (pop.leverage >= 8) & pop.isolated
    assert exposed.sum() > 50
    assert liquidated[exposed].all()


def test_per_path_function_agrees_with_the_batch_flows():
    prices = gbm_paths(np.random.default_rng(2), 100_000.0, 3, 300, 1 / 365 / 1440, 0.0, 3.0)
    pop = generate_population(
        PopulationSpec(n_accounts=400, entry_window_steps=50), np.random.default_rng(3)
    )
    flows = fund_flows(
        Market.from_prices(prices), pop, first_passage_steps(Market.from_prices(prices), pop), TOY
    )
    for p in range(3):
        one = liquidate_path(pop, prices[p], TOY)
        assert one.fund_flow_usdt.sum() == pytest.approx(flows[p].sum())
        assert np.all(one.fee_usdt <= np.maximum(one.fund_flow_usdt, 0))
        liquidated = one.step != NEVER
        longs = liquidated & (pop.side > 0)
        assert np.all(one.fill_price[longs] <= one.liquidation_price[longs])


def test_fund_summary_by_hand():
    # F0 = 100. Path 0: flows -30 at 1, +10 at 3, -50 at 4 -> balances 100, 70, 70, 80, 30:
    # minimum 30, needs 70; over a 2-step window the peak at t=4 is 80 and 30 < 0.7·80: ADL.
    # Path 1: -150 at 1 -> balance -50: exhausted, shortfall 50, needs 150.
    flows = np.array([[0.0, -30, 0, 10, -50], [0.0, -150, 0, 0, 0]])
    config = FundConfig(initial_usdt=100.0, decline_window_steps=2, tail_q=0.5, ruin_target=0.5)
    result = summarize_fund(flows, np.array([3, 1]), config)
    np.testing.assert_allclose(result.fund_min_usdt, [30, -50])
    np.testing.assert_allclose(result.required_usdt, [70, 150])
    np.testing.assert_allclose(result.shortfall_usdt, [0, 50])
    np.testing.assert_array_equal(result.exhausted, [False, True])
    np.testing.assert_array_equal(result.adl_triggered, [True, True])
    assert result.p_exhausted == 0.5 and result.p_adl == 1.0
    assert result.es_fund_min_usdt == -50 and result.es_shortfall_usdt == 50
    # With a fund of 70 only path 1 is ruined: 1/2 <= 0.5.
    assert result.fund_needed_usdt == 70


def test_a_drop_of_exactly_the_decline_share_does_not_trigger():
    # 100 -> 70 is a 30 % fall, not more than 30 %.
    flows = np.array([[0.0, -30.0]])
    result = summarize_fund(
        flows, np.array([1]), FundConfig(initial_usdt=100.0, decline_window_steps=8)
    )
    assert not result.adl_triggered[0]


def test_fund_needed_meets_the_ruin_target():
    required = np.random.default_rng(5).exponential(1_000.0, 1000)
    for target in (0.0, 0.01, 0.1, 0.5):
        fund = fund_needed(required, target)
        assert (required > fund).mean() <= target
        assert (required > np.nextafter(fund, 0)).mean() > target or fund == required.min()


@pytest.mark.parametrize("window", [1, 2, 3, 7, 50])
def test_rolling_max_matches_brute_force(window):
    x = np.random.default_rng(window).normal(size=(3, 23))
    brute = np.array(
        [[x[r, max(0, t - window + 1) : t + 1].max() for t in range(23)] for r in range(3)]
    )
    np.testing.assert_array_equal(rolling_max(x, window), brute)


def test_same_seed_gives_identical_results():
    def run(seed):
        rng = np.random.default_rng(seed)
        prices = gbm_paths(rng, 100_000.0, 20, 200, 1 / 365 / 1440, 0.0, 2.0)
        pop = generate_population(PopulationSpec(n_accounts=300, entry_window_steps=20), rng)
        return run_montecarlo(
            Market.from_prices(prices), pop, FundConfig(initial_usdt=5_000.0), TOY
        )

    a, b = run(1), run(1)
    np.testing.assert_array_equal(a.flows_usdt, b.flows_usdt)
    np.testing.assert_array_equal(a.fund_min_usdt, b.fund_min_usdt)
    assert not np.array_equal(a.flows_usdt, run(2).flows_usdt)
