"""The Monte Carlo verdict: ruin curve with its band, fund needed per target, fan chart, P(ADL)."""

from __future__ import annotations

import html
import json
import math
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from backstop.cli import app
from backstop.report.montecarlo import (
    adl_curve,
    fund_need,
    ruin_curve,
    verdict,
    wilson_interval,
    write_mc_report,
)
from backstop.sim.mc_cli import run_paths


@pytest.fixture(scope="module")
def run():
    return run_paths(300, "crash", accounts=400, seed=3, fund_usdt=300.0)


def test_wilson_interval_by_hand():
    # 0 of 100: [0, z²/(n + z²)] = [0, 3.8415/103.8415]; 50 of 100: 0.5 ± 0.0962 (symmetric).
    low, high = wilson_interval(np.array([0, 50]), 100)
    assert low[0] == 0.0 and high[0] == pytest.approx(3.841459 / 103.841459, rel=1e-6)
    assert low[1] == pytest.approx(0.5 - 0.09617, abs=1e-4)
    assert high[1] == pytest.approx(0.5 + 0.09617, abs=1e-4)


def test_ruin_curve_counts_paths_that_need_more_than_the_fund():
    required = np.array([0.0, 0.0, 5.0, 10.0, 10.0, 40.0])
    p, low, high = ruin_curve(required, np.array([0.0, 5.0, 9.99, 10.0, 40.0]))
    np.testing.assert_allclose(p, [4 / 6, 3 / 6, 3 / 6, 1 / 6, 0.0])
    assert np.all(low <= p) and np.all(p <= high)


def test_fund_needed_and_its_upper_bound():
    required = np.arange(1.0, 1001.0)  # path k needs k USDT
    need = fund_need(required, 0.01)
    assert need.estimate == 990.0  # 10 of 1,000 paths (1 %) need more than 990
    # Brute force: the smallest rank u with P(Binomial(1000, 0.99) <= u - 1) >= 0.975.
    cdf, u = 0.0, 0
    while cdf < 0.975:
        cdf += math.comb(1000, u) * 0.99**u * 0.01 ** (1000 - u)
        u += 1
    assert need.upper95 == float(u) and need.estimate < need.upper95 <= 1000.0
    rare = fund_need(required, 0.001)
    assert rare.estimate is None and rare.paths_needed == 3000


def test_adl_curve_agrees_with_the_run_at_its_own_fund(run):
    at_fund = adl_curve(run, np.array([run.fund.initial_usdt, 1e12]))
    assert at_fund[0] == pytest.approx(run.result.p_adl)
    assert at_fund[1] == 0.0  # an unlimited fund never runs out or halves
    assert run.result.p_adl > 0, "the small fund should make ADL likely on the crash model"


def test_verdict_states_the_numbers_of_the_run(run):
    needs = [fund_need(run.result.required_usdt, t) for t in (0.01, 0.001)]
    text = verdict(run, needs)
    ruined = int((run.result.required_usdt > run.fund.initial_usdt).sum())
    assert f"ran out on {ruined:,} of 300 paths" in text
    assert f"P(ADL) = {run.result.p_adl:.2%}" in text
    assert f"needs {needs[0].estimate:,.0f} USDT" in text and "not resolved by 300 paths" in text


def test_cli_writes_the_report(tmp_path):
    args = ["stress", "--paths", "120", "--model", "crash", "--accounts", "300", "--fund", "400",
            "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    assert "P(ruin)" in page and "fan chart" in page and '<script src="http' not in page
    figures = re.findall(r'Plotly\.newPlot\(\s*"(mc\d)",\s*(\[.*?\])\s*,\s*\{', page, flags=re.S)
    assert [name for name, _ in figures] == ["mc0", "mc1", "mc2"]
    assert all(json.loads(traces) for _, traces in figures)
    assert (tmp_path / "paths.csv").is_file()
    assert "With an initial fund of 400 USDT" in result.output


def test_report_of_a_run_where_the_fund_always_holds(tmp_path):
    safe = run_paths(50, "gbm", accounts=100, seed=1, fund_usdt=1e9, steps=120)
    text = write_mc_report(tmp_path / "report.html", safe)
    assert "held on every path" in text and "P(ruin) = 0.00%" in text


@pytest.fixture(scope="module")
def contagion_run():
    from backstop.sim.mc_cli import run_contagion

    return run_contagion(60, "crash", accounts=800, seed=4, fund_usdt=2_000.0)


def test_feedback_report_states_the_cascade_and_compares_fund_layouts(tmp_path, contagion_run):
    from backstop.report.montecarlo import contagion_sentence

    c = contagion_run.contagion
    text = write_mc_report(tmp_path / "report.html", contagion_run)
    page = (tmp_path / "report.html").read_text()
    sentence = contagion_sentence(contagion_run)
    assert "Cascade and contagion" in page and html.escape(sentence) in page
    amp = c.amplification()
    for inst, a in zip(c.inst_ids, amp, strict=True):
        assert f"<th>{inst}</th>" in page and f"×{a:.2f}" in page
    # 60 paths cannot resolve P(ruin) <= 1 % (the rule of three wants 300): the report says so.
    assert sentence.count("60 paths cannot resolve (run 300)") == 2
    assert "Where the parameters come from" in page and "assumption" in page
    needs = [fund_need(contagion_run.result.required_usdt, t) for t in (0.01, 0.001)]
    assert text == verdict(contagion_run, needs)


def test_feedback_report_gives_each_layouts_fund_when_the_paths_resolve_it():
    from backstop.report.montecarlo import contagion_sentence
    from backstop.sim.mc_cli import run_contagion

    run = run_contagion(300, "crash", accounts=150, seed=5, fund_usdt=500.0, steps=90)
    shared, family = run.contagion.funds
    needs = f"{shared.fund_needed(0.01):,.0f} USDT pooled against {family.fund_needed(0.01):,.0f} USDT"
    assert needs in contagion_sentence(run)
