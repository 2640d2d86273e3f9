"""Fast path with feedback (backstop.sim.contagion): the pointer/heap walk against its rescan
baseline, the open loop against the single-instrument fast path, cross accounts against a brute
force, contagion across coins, and the funds with ADL."""

import dataclasses

import numpy as np
import pytest

from backstop.sim import contagion as ct
from backstop.sim.feedback import SHIPPED_FEEDBACK
from backstop.sim.montecarlo import FundConfig, Market, first_passage_steps
from backstop.sim.paths import SHIPPED_UNIVERSE, correlated_log_paths
from backstop.sim.population import Book, BookSpec, Population, PopulationSpec, generate_book
from backstop.sim.price_sources import crash_closes

PARAMS = [SHIPPED_FEEDBACK[i] for i in SHIPPED_UNIVERSE.inst_ids]


def crash_setup(n_inst=5, n_paths=3, n_steps=400, n_accounts=600, seed=11, **population):
    universe = SHIPPED_UNIVERSE.take(n_inst)
    rng = np.random.default_rng(seed)
    btc = np.stack([crash_closes(rng, n_steps) for _ in range(n_paths)])
    exog = correlated_log_paths(btc, universe, rng)
    spec = BookSpec(PopulationSpec(n_accounts=n_accounts, **population)).for_instruments(n_inst)
    return exog, generate_book(spec, universe.s0, rng), PARAMS[:n_inst]


@pytest.mark.parametrize("feedback", [True, False])
def test_pointer_and_heap_walk_equals_the_rescan(feedback):
    exog, book, params = crash_setup()
    fast = ct.run_cascade(exog, book, params, feedback=feedback, oi_share=0.03, n_record=3)
    slow = ct.run_cascade(exog, book, params, feedback=feedback, oi_share=0.03, n_record=3, rescan=True)
    assert fast.n_liquidations.sum() > 50
    np.testing.assert_array_equal(fast.account_step, slow.account_step)
    np.testing.assert_array_equal(fast.flows_usdt, slow.flows_usdt)
    np.testing.assert_array_equal(fast.mark_drawdown, slow.mark_drawdown)


def test_open_loop_keeps_the_exogenous_path_and_feedback_deepens_the_crash():
    exog, book, params = crash_setup(n_paths=4)
    closed = ct.run_cascade(exog, book, params, oi_share=0.03)
    open_ = ct.run_cascade(exog, book, params, feedback=False, oi_share=0.03)
    np.testing.assert_allclose(open_.mark_drawdown, open_.exog_drawdown)
    assert np.all(closed.mark_drawdown >= open_.mark_drawdown - 1e-12)
    assert closed.mark_drawdown.mean() > 1.2 * open_.mark_drawdown.mean()
    assert closed.n_liquidations.sum() > open_.n_liquidations.sum()


def test_more_open_interest_against_the_same_book_amplifies_more():
    exog, book, params = crash_setup(n_paths=4)
    small = ct.run_cascade(exog, book, params, oi_share=0.003)
    large = ct.run_cascade(exog, book, params, oi_share=0.03)
    assert large.mark_drawdown.mean() > small.mark_drawdown.mean()


def as_population(book: Book) -> Population:
    """The single-instrument fast path's view of an isolated-only, one-instrument book."""
    frac = book.collateral_usdt[book.account] / book.notional_usdt
    return Population(side=book.side, leverage=1 / frac, notional_usdt=book.notional_usdt,
                      isolated=np.ones(book.n_legs, bool), margin_frac=frac,
                      entry_step=np.zeros(book.n_legs, np.int64), mmr=book.mmr, taker_fee=book.taker_fee)


def test_open_loop_with_a_bottomless_book_is_the_single_instrument_fast_path():
    exog, book, params = crash_setup(n_inst=1, n_paths=3, isolated_share=1.0)
    out = ct.run_cascade(exog, book, params, feedback=False, oi_share=1e-12, n_record=3)
    prices = np.exp(exog[:, 0, :])
    steps = first_passage_steps(Market.from_prices(prices), as_population(book))
    np.testing.assert_array_equal(out.account_step, steps)
    hit = steps >= 0
    paths, legs = np.nonzero(hit)
    bankruptcy = book.entry_price * (1 - book.side * book.collateral_usdt / book.notional_usdt)
    expected = book.side[legs] * book.qty[legs] * (prices[paths, steps[hit]] - bankruptcy[legs])
    np.testing.assert_allclose(out.account_flow_usdt[hit], expected, rtol=1e-9)


def brute_force_breach_steps(book: Book, prices: np.ndarray) -> np.ndarray:
    """First step (>= 1) each account's equity gap is <= 0 at ``prices`` (n_inst, n_times)."""
    r = book.mmr + book.taker_fee
    leg_gap = book.qty[:, None] * ((book.side[:, None] - r) * prices[book.inst] -
                                   (book.side * book.entry_price)[:, None])
    gap = book.collateral_usdt[:, None] + np.add.reduceat(leg_gap, book.leg_start[:-1], axis=0)
    breached = gap[:, 1:] <= 0
    return np.where(breached.any(axis=1), breached.argmax(axis=1) + 1, -1)


def test_cross_trigger_intervals_miss_no_breach_without_feedback():
    exog, book, params = crash_setup(n_paths=3, n_accounts=1500, seed=5, isolated_share=0.0,
                                     leverage_mix=((1.0, 10.0, 60.0),), cross_buffer_mean=0.3)
    out = ct.run_cascade(exog, book, params, feedback=False, oi_share=0.03, n_record=3)
    for p in range(3):
        expected = brute_force_breach_steps(book, np.exp(exog[p]))
        assert (expected >= 0).sum() > 100
        np.testing.assert_array_equal(out.account_step[p], expected)


def one_cross_account(flat_eth: bool = True):
    """A cross account long BTC and long ETH (10x on the pair), plus nothing else."""
    s0 = SHIPPED_UNIVERSE.s0[:2]
    notional = np.array([50_000.0, 50_000.0])
    book = Book(isolated=np.array([False]), collateral_usdt=np.array([10_000.0]), leg_start=np.array([0, 2]),
                account=np.array([0, 0]), inst=np.array([0, 1]), side=np.array([1, 1], np.int8),
                qty=notional / s0, entry_price=s0.copy(), notional_usdt=notional, mmr=0.004, taker_fee=0.0005)
    steps = np.linspace(0.0, np.log(0.7), 50)
    exog = np.log(s0)[None, :, None] + np.vstack([steps, np.zeros(50) if flat_eth else steps])[None]
    return book, exog


def test_a_crash_in_one_coin_liquidates_the_position_in_another():
    book, exog = one_cross_account()
    out = ct.run_cascade(exog, book, PARAMS[:2], oi_share=0.03, n_record=1, record_marks=True)
    step = out.account_step[0, 0]
    assert step > 0 and out.n_contagion[0] == 1 and out.n_cross[0] == 1
    # The ETH leg's close is a sell into ETH's book: ETH's mark falls though its own path is flat.
    assert out.marks[0, 1, step] < exog[0, 1, step]
    assert out.exog_drawdown[0, 1] == 0 and out.mark_drawdown[0, 1] > 0
    # Equity at 10 % collateral on 100k: breached once BTC is about 19 % down.
    btc_move = np.exp(exog[0, 0, step] - exog[0, 0, 0])
    assert 0.78 < btc_move < 0.82


def test_fund_pays_until_exhausted_then_adl_socialises_the_rest():
    flows = np.array([[[-50.0, -80.0, 10.0, -5.0]]])
    out = ct.fund_outcome(flows, ct.FundLayout.SHARED, 100.0, np.ones(1), FundConfig(decline_share=0.99))
    assert out.socialized_usdt[0] == pytest.approx(30.0 + 5.0)
    assert out.adl_step[0] == 1 and out.exhausted[0]
    assert out.balance_min[0] == 0.0
    assert out.required_usdt[0] == pytest.approx(130.0)


def test_decline_trigger_stops_the_fund_paying_before_it_is_empty():
    flows = np.array([[[-40.0, -10.0, 5.0]]])
    out = ct.fund_outcome(flows, ct.FundLayout.SHARED, 100.0, np.ones(1), FundConfig(decline_share=0.3))
    assert out.adl_step[0] == 0 and not out.exhausted[0]
    assert out.socialized_usdt[0] == pytest.approx(10.0)
    assert out.balance_min[0] == pytest.approx(60.0)


def test_family_funds_need_at_least_the_shared_pool():
    rng = np.random.default_rng(2)
    flows = rng.normal(0, 100, (200, 3, 50))
    split = np.array([0.5, 0.3, 0.2])
    config = FundConfig()
    shared = ct.fund_outcome(flows, ct.FundLayout.SHARED, 500.0, split, config)
    family = ct.fund_outcome(flows, ct.FundLayout.FAMILY, 500.0, split, config)
    assert np.all(family.required_usdt >= shared.required_usdt - 1e-9)
    assert family.p_adl >= shared.p_adl
    assert family.fund_needed(0.01) > shared.fund_needed(0.01)


def test_entries_must_match_the_paths_start():
    exog, book, params = crash_setup(n_inst=2, n_paths=1)
    moved = dataclasses.replace(book, entry_price=book.entry_price * 1.01)
    with pytest.raises(ValueError, match="entry prices"):
        ct.run_cascade(exog, moved, params)
    with pytest.raises(ValueError, match="oi_share"):
        ct.run_cascade(exog, book, params, oi_share=0.0)

