"""The Monte Carlo with feedback (backstop.sim.mc_cli.run_contagion) and its CLI hook."""

import numpy as np
import pytest
from rich.console import Console

from backstop.sim.mc_cli import path_table, run_contagion, stress_paths_command


def test_same_seed_same_run_and_the_tables_come_from_it():
    a = run_contagion(8, "crash", accounts=300, seed=9, fund_usdt=1_000.0)
    b = run_contagion(8, "crash", accounts=300, seed=9, fund_usdt=1_000.0)
    np.testing.assert_array_equal(a.contagion.outcome.flows_usdt, b.contagion.outcome.flows_usdt)
    np.testing.assert_array_equal(a.result.required_usdt, b.result.required_usdt)
    c = run_contagion(8, "crash", accounts=300, seed=10, fund_usdt=1_000.0)
    assert not np.array_equal(a.result.required_usdt, c.result.required_usdt)
    columns = path_table(a)
    out = a.contagion.outcome
    np.testing.assert_array_equal(columns["SOL-USDT_drawdown"], out.mark_drawdown[:, 2])
    np.testing.assert_array_equal(columns["shared_socialized_usdt"], a.contagion.funds[0].socialized_usdt)
    # The shared pool's single-fund summary is the walk's flows summed over instruments.
    np.testing.assert_allclose(a.result.flows_usdt, out.flows_usdt.sum(axis=1))


def test_fewer_instruments_and_open_loop_are_reachable():
    one = run_contagion(4, "crash", accounts=200, seed=1, instruments=1, feedback=False)
    assert one.contagion.inst_ids == ("BTC-USDT",)
    np.testing.assert_allclose(one.contagion.outcome.mark_drawdown, one.contagion.outcome.exog_drawdown)


def test_cli_hook_prints_the_cascade_and_refuses_oi_share_without_feedback(tmp_path):
    console = Console(record=True, width=200)
    run = stress_paths_command(6, "crash", accounts=300, seed=2, out=tmp_path, fund=1_000.0,
                               feedback=True, oi_share=0.01, console=console)
    shown = console.export_text()
    assert "Cascade with feedback" in shown and "per-family funds" in shown
    assert run.contagion.oi_share == 0.01
    header = (tmp_path / "paths.csv").read_text().splitlines()[0]
    assert "BTC-USDT_drawdown" in header and "family_adl_step" in header
    with pytest.raises(ValueError, match="--oi-share sizes the book that feedback moves"):
        stress_paths_command(6, "crash", accounts=300, out=tmp_path, oi_share=0.01,
                             console=Console(quiet=True))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"oi_share": 0.0}, "--oi-share must be in"),
    ({"instruments": 9}, "instruments must be in 1..5"),
    ({"paths": 100_000}, "paths × steps × instruments"),
])
def test_bad_inputs_are_one_line_errors(kwargs, message):
    args = {"paths": 2, "model": "crash", "accounts": 50} | kwargs
    with pytest.raises(ValueError, match=message) as error:
        run_contagion(**args)
    assert "\n" not in str(error.value)
