"""``backstop calibrate``: refit from shared/data and compare with the shipped constants."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backstop.cli import app

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "btcusd-1d-2011-2025.csv").is_file(), reason="shared/data absent")


@needs_data
def test_calibrate_prints_and_writes_toml(tmp_path) -> None:
    out = tmp_path / "fit.toml"
    result = CliRunner().invoke(app, ["calibrate", "--daily", str(DATA / "btcusd-1d-2011-2025.csv"),
                                      "--funding", str(DATA / "btcusdt-perp-funding-8h-2020-2026.csv"),
                                      "--depth", str(DATA / "btcusdt-perp-bookdepth-2025-10-10.csv"),
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
