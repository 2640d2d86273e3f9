"""``backstop stress``: no flags runs the built-in crash; every flag applies or is refused;
bad inputs give one line, exit 1, no traceback."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from backstop.cli import app, one_line_errors
from backstop.sim.mc_cli import DEFAULT_OI_SHARE
from shared_data import write_book_depth


def _one_line_error(args: list[str]) -> str:
    result = CliRunner().invoke(app, ["stress", *args], env={"COLUMNS": "400"})
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    text = result.stderr.strip()
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_missing_price_file(tmp_path):
    assert "not found" in _one_line_error(["--prices", str(tmp_path / "nope.csv")])


def test_wrong_columns(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,price_x\n1,2\n")
    assert "missing column" in _one_line_error(["--prices", str(bad)])


@pytest.mark.parametrize("args, words", [
    (["--model", "gbm", "--accounts", "0"], "accounts"),
    (["--model", "heston"], "model"),
    (["--prices", "k.csv", "--model", "gbm"], "not both"),
    (["--model", "crash", "--fund", "-5"], "--fund"),
    (["--model", "crash", "--fund", "10", "--policy", "insurance_fund.initial=5"], "--fund"),
    (["--model", "gbm", "--policy", "adl.ranking=nope"], "adl.ranking"),
    (["--model", "gbm", "--policy", "bogus"], "policy"),
    (["--amplification", "--no-feedback"], "--no-feedback"),
    (["--grid-oi", "0.1"], "--amplification"),
    (["--grid-leverage", "2"], "--amplification"),
    (["--amplification", "--grid-oi", "0.1,2"], "(0, 1]"),
    (["--amplification", "--grid-leverage", "1,x"], "--grid-leverage"),
    (["--amplification", "--grid-oi", "0,0.1"], "--grid-oi"),
    (["--amplification", "--oi-share", "0.1"], "--oi-share"),
    (["--oi-share", "0"], "open-interest share"),
    (["--oi-share", "1.5"], "open-interest share"),
    (["--calibration", "fit.toml"], "--feedback"),
])
def test_impossible_parameters(args, words):
    assert words in _one_line_error(args)


def test_missing_config_file(tmp_path):
    assert "not found" in _one_line_error(["--model", "gbm", "--config", str(tmp_path / "x.toml")])


@pytest.mark.parametrize("extra, flag", [
    (["--prices", "k.csv"], "--prices"),
    (["--policy", "pro_rata"], "--policy"),
    (["--config", "p.toml"], "--config"),
    (["--compare-adl"], "--compare-adl"),
    (["--amplification"], "--amplification"),
    (["--feedback", "--calibration", "fit.toml"], "--calibration"),
])
def test_paths_refuses_the_exact_engine_flags(extra, flag):
    # A hostile or careless user must not get a Monte Carlo that silently ignored a policy.
    line = _one_line_error(["--paths", "5", *extra])
    assert flag in line and "--paths" in line


def test_no_flags_runs_the_built_in_crash(tmp_path):
    result = CliRunner().invoke(app, ["stress", "--accounts", "40", "--out", str(tmp_path)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--model crash" in result.output
    assert (tmp_path / "report.html").is_file()
    # The crash model's low is at 21:20 UTC on 2025-10-10: the fund's minimum falls in the crash.
    match = re.search(r"fund minimum .* at (2025-10-10 \d\d:\d\d)", result.output)
    assert match and "20:50" <= match.group(1)[11:] <= "21:30", result.output


def test_fund_flag_sets_the_initial_fund(tmp_path):
    args = ["stress", "--accounts", "20", "--fund", "1234.5", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert re.search(r"fund start\s*│\s*1234\.5\b", result.output), result.output


def test_unexpected_errors_are_one_line_too():
    probe = typer.Typer()

    @probe.command()
    @one_line_errors
    def broken() -> None:
        raise KeyError("boom")

    result = CliRunner().invoke(probe, [])
    assert result.exit_code == 1
    assert "internal error (KeyError" in result.stderr and "BACKSTOP_TRACEBACK" in result.stderr
    assert "Traceback" not in result.output


def test_depth_file_that_the_path_never_reaches_is_refused(tmp_path):
    morning = write_book_depth(tmp_path / "morning.csv", start="2025-10-10 00:00:07")
    line = _one_line_error(["--depth", str(morning), "--accounts", "10"])
    assert "--depth" in line and "2025-10-10 00:00" in line and "20:30" in line


def test_depth_file_of_the_crash_hours_applies(tmp_path):
    evening = write_book_depth(tmp_path / "evening.csv", snapshots=400, start="2025-10-10 20:25:00")
    args = ["stress", "--depth", str(evening), "--accounts", "10", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def test_paths_take_feedback_and_its_oi_share(tmp_path):
    args = ["stress", "--paths", "2", "--accounts", "40", "--feedback", "--oi-share", "0.05",
            "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "population = 5.0% of the market's open interest" in result.output  # --oi-share applied
    assert "--feedback" in _one_line_error(["--paths", "2", "--oi-share", "0.05"])


def test_feedback_applies_and_says_so(tmp_path):
    args = ["stress", "--accounts", "20", "--feedback", "--oi-share", "0.05", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "feedback on" in result.output and "population = 5.0% of the market" in result.output
    args = ["stress", "--accounts", "20", "--feedback", "--out", str(tmp_path / "d")]
    default = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert f"population = {DEFAULT_OI_SHARE:.1%} of the market" in default.output  # as --paths --feedback
    page = (tmp_path / "report.html").read_text()
    assert "index with the cascade's impact" in page
    assert "Feedback parameters" in page and "half_life_s" in page and "AR(1)" in page  # with sources
    plain = CliRunner().invoke(app, ["stress", "--accounts", "20", "--out", str(tmp_path / "plain")],
                               env={"COLUMNS": "300"})
    assert "feedback off" in plain.output  # the default: a replayed crash already holds its cascade


def test_calibration_file_sets_the_feedback_rule(tmp_path):
    fit = tmp_path / "fit.toml"
    fit.write_text('[feedback]\nsource = "my-book.csv + my-klines.csv"\ndata = "2025-10-10"\n'
                   'half_life_s = 61.5\n')
    args = ["stress", "--accounts", "20", "--feedback", "--calibration", str(fit),
            "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r" / "report.html").read_text()
    assert "<th>half_life_s</th><td>61.5</td>" in page and "my-book.csv + my-klines.csv 2025-10-10" in page
    assert "log-log slope" in page  # the keys the file lacks keep the shipped fit and its source
    fit.write_text("[gbm]\nmu = 0.1\n")
    assert "[feedback]" in _one_line_error(["--feedback", "--calibration", str(fit)])
    assert "--calibration" in _one_line_error(["--feedback", "--calibration", str(tmp_path / "none.toml")])


def test_amplification_prints_the_grid_and_writes_it(tmp_path):
    args = ["stress", "--accounts", "20", "--amplification", "--grid-oi", "0.01,0.1", "--grid-leverage", "1",
            "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    rows = re.findall(r"^\s*(\d+\.\d\d)%\s+×1\s.*?(\d+\.\d\d)×", result.output, re.MULTILINE)
    assert [share for share, _ in rows] == ["1.00", "10.00"], result.output
    assert all(float(amp) >= 1.0 for _, amp in rows)
    assert (tmp_path / "amplification.parquet").is_file()
    assert "Cascade amplification" in (tmp_path / "report.html").read_text()
