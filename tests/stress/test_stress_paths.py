"""``backstop stress --paths N``: the Monte Carlo entry (:mod:`backstop.sim.mc_cli`)."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from backstop.sim.mc_cli import run_paths, stress_paths_command


def test_run_paths_is_seeded_and_summarises() -> None:
    a = run_paths(40, "jump", accounts=500, seed=7, fund_usdt=20_000.0, steps=600)
    b = run_paths(40, "jump", accounts=500, seed=7, fund_usdt=20_000.0, steps=600)
    np.testing.assert_array_equal(a.result.fund_min_usdt, b.result.fund_min_usdt)
    assert a.result.fund_min_usdt.shape == (40,)
    assert 0.0 <= a.result.p_exhausted <= a.result.p_adl <= 1.0
    assert a.result.fund_min_usdt.max() <= 20_000.0 + 1e-9


@pytest.mark.parametrize("model", ["gbm", "garch", "jump"])
def test_command_prints_and_writes_table(model: str, tmp_path) -> None:
    console = Console(record=True, width=120)
    stress_paths_command(10, model, accounts=200, seed=1, out=tmp_path, fund=10_000.0, steps=300,
                         console=console)
    text = console.export_text()
    assert "P(fund exhausted)" in text and "fund needed" in text
    lines = (tmp_path / "paths.csv").read_text().splitlines()
    assert lines[0].startswith("path,fund_min_usdt") and len(lines) == 11


@pytest.mark.parametrize("kwargs", [{"paths": 0}, {"paths": 2, "model": "nope"}, {"paths": 2, "accounts": 0},
                                    {"paths": 2, "fund": -1.0}])
def test_bad_inputs_raise_value_error(kwargs, tmp_path) -> None:
    with pytest.raises(ValueError):
        stress_paths_command(**kwargs, out=tmp_path, console=Console(file=None, quiet=True))


def test_cli_stress_paths(tmp_path) -> None:
    from typer.testing import CliRunner

    from backstop.cli import app

    result = CliRunner().invoke(app, ["stress", "--paths", "20", "--model", "gbm", "--accounts", "300",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "paths.csv").is_file()
    bad = CliRunner().invoke(app, ["stress", "--paths", "5", "--model", "nope"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
