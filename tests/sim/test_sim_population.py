"""Population specs and generation."""

import dataclasses

import numpy as np
import pytest

from backstop.sim.population import Population, PopulationSpec, generate_population


def test_same_seed_gives_identical_population():
    spec = PopulationSpec(n_accounts=500, entry_window_steps=30)
    a = generate_population(spec, np.random.default_rng(1))
    b = generate_population(spec, np.random.default_rng(1))
    for name in ("side", "leverage", "notional_usdt", "isolated", "margin_frac", "entry_step"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = generate_population(spec, np.random.default_rng(2))
    assert not np.array_equal(a.leverage, c.leverage)


def test_default_distributions_respect_their_bounds():
    spec = PopulationSpec(n_accounts=20_000, entry_window_steps=60)
    pop = generate_population(spec, np.random.default_rng(3))
    assert pop.side.dtype == np.int8 and set(np.unique(pop.side)) == {-1, 1}
    assert abs((pop.side > 0).mean() - 0.6) < 0.02
    assert abs(pop.isolated.mean() - 0.5) < 0.02
    assert pop.leverage.min() >= 2.0 and pop.leverage.max() <= 100.0
    assert abs((pop.leverage <= 10).mean() - 0.8) < 0.02
    assert pop.notional_usdt.min() >= 1000.0 and pop.notional_usdt.max() <= 5e6
    # Pareto(x_m = 1000, alpha = 1.5): median 1000·2^(1/1.5) = 1587.4.
    assert np.median(pop.notional_usdt) == pytest.approx(1587.4, rel=0.05)
    assert pop.entry_step.min() == 0 and pop.entry_step.max() == 60
    np.testing.assert_array_equal(pop.margin_frac[pop.isolated], 1 / pop.leverage[pop.isolated])
    assert np.all(pop.margin_frac[~pop.isolated] >= 1 / pop.leverage[~pop.isolated])
    np.testing.assert_allclose(pop.initial_margin_usdt, pop.notional_usdt / pop.leverage)


def test_liquidation_and_bankruptcy_ratios_by_hand():
    spec = PopulationSpec(
        n_accounts=1, isolated_share=1.0, leverage_mix=((1, 10, 10),), long_share=1
    )
    long = generate_population(spec, np.random.default_rng(0))
    # 10x long, r = 0.004 + 0.0005: bankruptcy 0.9, liquidation 0.9 / 0.9955 = 0.904068...
    assert long.bankruptcy_ratio()[0] == pytest.approx(0.9)
    assert long.liquidation_ratio()[0] == pytest.approx(0.9 / 0.9955)
    short = generate_population(dataclasses.replace(spec, long_share=0.0), np.random.default_rng(0))
    # 10x short: bankruptcy 1.1, liquidation 1.1 / 1.0045.
    assert short.liquidation_ratio()[0] == pytest.approx(1.1 / 1.0045)
    # At the liquidation price, equity = margin + pnl equals notional·(mmr + fee) there.
    px = long.liquidation_ratio()[0]
    assert 0.1 + (px - 1.0) == pytest.approx(px * 0.0045)


def test_entry_prices_come_from_the_path():
    spec = PopulationSpec(n_accounts=50, entry_window_steps=9)
    pop = generate_population(spec, np.random.default_rng(4))
    close = np.arange(20.0).reshape(2, 10) + 100
    prices = pop.entry_prices(close)
    assert prices.shape == (2, 50)
    np.testing.assert_array_equal(prices[1], 110.0 + pop.entry_step)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"n_accounts": -1}, "n_accounts must be >= 0"),
        ({"long_share": 1.5}, "long_share must be in \\[0, 1\\]"),
        ({"isolated_share": -0.1}, "isolated_share must be in \\[0, 1\\]"),
        ({"leverage_mix": ((1.0, 0.5, 10.0),)}, "1 <= low <= high <= 100"),
        ({"leverage_mix": ((1.0, 2.0),)}, "rows are \\(weight, low, high\\)"),
        ({"leverage_mix": ((0.0, 2.0, 3.0),)}, "positive total weight"),
        ({"notional_min_usdt": 0.0}, "notional_min_usdt"),
        ({"mmr": -0.1}, "mmr must be >= 0"),
        ({"n_acounts": 5}, "unknown keys n_acounts"),
    ],
)
def test_bad_parameters_raise_one_clear_line(values, message):
    with pytest.raises(ValueError, match=message) as error:
        PopulationSpec.from_dict(values)
    assert "\n" not in str(error.value)


def test_spec_from_toml(tmp_path):
    path = tmp_path / "pop.toml"
    path.write_text(
        "[population]\nn_accounts = 42\nlong_share = 0.3\nleverage_mix = [[1, 3, 5], [1, 50, 60]]\n"
    )
    spec = PopulationSpec.from_toml(path)
    assert spec.n_accounts == 42 and spec.long_share == 0.3
    assert spec.leverage_mix == ((1.0, 3.0, 5.0), (1.0, 50.0, 60.0))
    pop = generate_population(spec, np.random.default_rng(0))
    assert pop.size == 42 and pop.leverage.min() >= 3 and pop.leverage.max() <= 60


def test_book_cross_accounts_hold_distinct_coins_and_isolated_ones_one_position():
    from backstop.sim.paths import SHIPPED_UNIVERSE
    from backstop.sim.population import BookSpec, generate_book

    spec = BookSpec(PopulationSpec(n_accounts=3000))
    a = generate_book(spec, SHIPPED_UNIVERSE.s0, np.random.default_rng(6))
    b = generate_book(spec, SHIPPED_UNIVERSE.s0, np.random.default_rng(6))
    np.testing.assert_array_equal(a.qty, b.qty)
    legs = np.diff(a.leg_start)
    assert np.all(legs[a.isolated] == 1)
    assert legs[~a.isolated].min() == 2 and legs[~a.isolated].max() == 4
    for account in np.flatnonzero(~a.isolated)[:200]:
        insts = a.inst[a.leg_start[account]:a.leg_start[account + 1]]
        assert len(set(insts.tolist())) == insts.size
    np.testing.assert_allclose(a.qty * a.entry_price, a.notional_usdt)
    # An isolated account's liquidation price is the single-instrument population's ratio.
    iso = a.isolated[a.account]
    frac = a.collateral_usdt[a.account][iso] / a.notional_usdt[iso]
    n_iso = int(iso.sum())
    single = Population(side=a.side[iso], leverage=1 / frac, notional_usdt=a.notional_usdt[iso],
                        isolated=np.ones(n_iso, bool), margin_frac=frac, entry_step=np.zeros(n_iso, int),
                        mmr=a.mmr, taker_fee=a.taker_fee)
    liq = a.isolated_liquidation_prices()[iso]
    np.testing.assert_allclose(liq, a.entry_price[iso] * single.liquidation_ratio())
    assert np.isnan(a.isolated_liquidation_prices()[~iso]).all()


def test_book_refuses_staggered_entries():
    from backstop.sim.population import BookSpec

    with pytest.raises(ValueError, match="entries are at step 0"):
        BookSpec(PopulationSpec(entry_window_steps=5))
