"""``backstop sweep`` on local processes, and on a local Ray when the ``ray`` extra is installed;
kept tiny: 2 points × 1 path × 60 accounts × 720 minutes."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from backstop.cli import app
from backstop.sim.sweep import grid_points, parse_grid, random_points, run_sweep, write_report, write_results

TINY = {"paths": 1, "accounts": 60, "seed": 0, "steps": 720}


@pytest.fixture(scope="module")
def local_rows():
    return run_sweep(grid_points(parse_grid(["fund=50,5000"])), **TINY)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="the optional extra backstop[ray] is not installed")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200_000_000, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_grid_parsing_and_points() -> None:
    grid = parse_grid(["fund=100,5000", "adl_ranking=okx,pro_rata"])
    points = grid_points(grid)
    assert len(points) == 4 and {p["adl_ranking"] for p in points} == {"okx", "pro_rata"}
    assert all(p["liq_style"] == "okx_tiers" for p in points)
    assert random_points(3, 1) == random_points(3, 1)
    # With a grid, random points draw from its values (none is ignored); other keys keep defaults.
    drawn = random_points(30, 2, parse_grid(["fund=100,200", "adl_ranking=okx,pro_rata"]))
    assert {p["fund"] for p in drawn} == {100.0, 200.0}
    assert {p["adl_ranking"] for p in drawn} == {"okx", "pro_rata"}
    assert all(p["liq_style"] == "okx_tiers" for p in drawn)
    for bad in (["fund"], ["fund=x"], ["mmr_scale=3"], ["adl_ranking=nope"], ["zzz=1"], ["fund=1", "fund=2"]):
        with pytest.raises(ValueError):
            parse_grid(bad)


def test_sweep_runs_on_local_processes(local_rows, tmp_path) -> None:
    rows = local_rows
    assert [r["fund"] for r in rows] == [50.0, 5000.0]
    small, big = rows
    assert small["fund_min_usdt"] <= 50.0 and big["fund_min_usdt"] <= 5000.0
    assert small["n_liquidations"] == big["n_liquidations"] > 0
    assert small["p_adl"] == 1.0 and big["p_adl"] == 0.0 and small["adl_notional_usdt"] > 0
    written = write_results(rows, tmp_path)
    assert {p.name for p in written} >= {"sweep.csv"}
    html = write_report(rows, tmp_path).read_text()
    assert "heatmap" in html and len(html) > 1_000_000  # plotly.js inlined: works offline
    assert '<script src="http' not in html


def test_sweep_cli_bad_input_is_one_line() -> None:
    result = CliRunner().invoke(app, ["sweep", "--grid", "fund=abc"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["sweep"])
    assert result.exit_code == 1


def test_ray_gives_the_same_rows_as_local_processes(local_ray, local_rows) -> None:
    rows = run_sweep(grid_points(parse_grid(["fund=50,5000"])), **TINY, ray_address="local")
    assert rows == local_rows


def test_local_sweep_says_how_to_add_ray(tmp_path) -> None:
    args = ["sweep", "--grid", "fund=50", "--paths", "1", "--accounts", "30", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    hint = [line for line in result.output.splitlines() if "local processes" in line]
    assert len(hint) == 1 and "backstop[ray]" in hint[0] and "--ray-address" in hint[0]
    assert (tmp_path / "sweep.csv").is_file()


def test_ray_address_without_ray_is_one_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    result = CliRunner().invoke(app, ["sweep", "--grid", "fund=50", "--ray-address", "local"])
    assert result.exit_code == 1
    assert "backstop[ray]" in result.stderr and "Traceback" not in result.output
