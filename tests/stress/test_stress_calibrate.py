"""``backstop calibrate``: refit from shared/data and compare with the shipped constants."""

from __future__ import annotations

import tomllib

import pytest
from typer.testing import CliRunner

from backstop.cli import app
from shared_data import DAILY_CLOSES, FUNDING_8H, OCT10_DEPTH, shared_file


def test_calibrate_prints_and_writes_toml(tmp_path) -> None:
    out = tmp_path / "fit.toml"
    result = CliRunner().invoke(app, ["calibrate", "--daily", str(shared_file(DAILY_CLOSES)),
                                      "--funding", str(shared_file(FUNDING_8H)),
                                      "--depth", str(shared_file(OCT10_DEPTH)),
                                      "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Calibration" in result.output and "gbm" in result.output
    fitted = tomllib.loads(out.read_text())
    assert fitted["gbm"]["sigma"] == pytest.approx(0.6380, rel=1e-3)
    assert fitted["garch_daily"]["nu"] == pytest.approx(3.554, rel=1e-2)
    assert fitted["funding"]["mean"] == pytest.approx(1.089e-4, rel=1e-2)
    assert fitted["depth"]["bid_btc_1pct"] == pytest.approx(1709.383, rel=1e-3)


def test_calibrate_missing_file_is_one_line_error(tmp_path) -> None:
    result = CliRunner().invoke(app, ["calibrate", "--daily", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1
    assert "file not found" in result.output and "Traceback" not in result.output


def test_calibrate_wrong_columns_is_one_line_error(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(app, ["calibrate", "--funding", str(bad)])
    assert result.exit_code == 1
    assert "last_funding_rate" in result.output and "Traceback" not in result.output
