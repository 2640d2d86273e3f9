"""``backstop stress`` bad inputs: one line, exit 1, no traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from backstop.cli import app


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
    ([], "--prices"),
    (["--model", "gbm", "--policy", "adl.ranking=nope"], "adl.ranking"),
    (["--model", "gbm", "--policy", "bogus"], "policy"),
])
def test_impossible_parameters(args, words):
    assert words in _one_line_error(args)


def test_missing_config_file(tmp_path):
    assert "not found" in _one_line_error(["--model", "gbm", "--config", str(tmp_path / "x.toml")])
