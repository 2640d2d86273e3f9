"""``backstop calibrate``: refit from shared/data and compare with the shipped constants."""

from __future__ import annotations

import tomllib

import pytest
from typer.testing import CliRunner

from backstop.cli import app
from shared_data import DAILY_CLOSES, FUNDING_8H, OCT10_DEPTH, OCT10_KLINES, shared_file


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


def test_calibrate_fits_the_feedback_and_the_toml_feeds_it_back(tmp_path) -> None:
    from backstop.sim.feedback import BTC_FEEDBACK, PARAMETERS, FeedbackParams

    out = tmp_path / "fit.toml"
    result = CliRunner().invoke(app, ["calibrate", "--depth", str(shared_file(OCT10_DEPTH)),
                                      "--klines", str(shared_file(OCT10_KLINES)), "--out", str(out)],
                                terminal_width=250)
    assert result.exit_code == 0, result.output
    table = tomllib.loads(out.read_text())["feedback"]
    for name in PARAMETERS:
        assert table[name] == pytest.approx(getattr(BTC_FEEDBACK, name), rel=5e-3), name
    params = FeedbackParams.from_calibration(table)
    assert params.depth_usd == table["depth_usd"] and OCT10_DEPTH in params.sources["depth_usd"]
    assert "AR(1)" in params.sources["half_life_s"] and "withdrawal fit" in params.sources["vol_ref"]


def test_klines_without_a_depth_file_is_refused() -> None:
    from backstop.sim.calibrate_cli import calibrate_rows

    with pytest.raises(ValueError, match="add --depth"):
        calibrate_rows({"klines": shared_file(OCT10_KLINES)})


def test_altcoin_klines_beside_btc_fit_the_universe(tmp_path) -> None:
    import numpy as np

    from backstop.sim.calibrate_cli import altcoin_files, universe_rows
    from shared_data import write_klines

    rng = np.random.default_rng(8)
    btc = rng.normal(0, 0.001, 3000)
    eth = 1.2 * btc + rng.normal(0, 0.0009, 3000)  # vol ratio sqrt(1.44 + 0.81) = 1.5, corr 1.2/1.5 = 0.8
    btc_file = write_klines(tmp_path / "btcusdt-perp-1m-2025-10-10.csv", 100_000 * np.exp(np.cumsum(btc)))
    write_klines(tmp_path / "ethusdt-perp-1m-2025-10-10.csv", 4_000 * np.exp(np.cumsum(eth)))
    alts = altcoin_files(btc_file)
    assert list(alts) == ["ETH-USDT"]
    rows = {r.name: r for r in universe_rows(btc_file, alts)}
    assert rows["vol_ratio_ETH-USDT"].fitted == pytest.approx(1.5, rel=0.05)
    assert rows["corr_BTC-USDT_ETH-USDT"].fitted == pytest.approx(0.8, abs=0.03)
    assert rows["corr_BTC-USDT_ETH-USDT"].shipped == 0.8
