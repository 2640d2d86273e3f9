"""``backstop sweep`` on a local Ray, kept tiny: 2 points × 1 path × 60 accounts × 720 minutes."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from backstop.cli import app
from backstop.sim.sweep import grid_points, parse_grid, random_points, run_sweep, write_report, write_results

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200_000_000, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_grid_parsing_and_points() -> None:
    grid = parse_grid(["fund=100,5000", "adl_ranking=okx,pro_rata"])
    points = grid_points(grid)
    assert len(points) == 4 and {p["adl_ranking"] for p in points} == {"okx", "pro_rata"}
    assert all(p["liq_style"] == "okx_tiers" for p in points)
    assert random_points(3, 1) == random_points(3, 1)
    for bad in (["fund"], ["fund=x"], ["mmr_scale=3"], ["adl_ranking=nope"], ["zzz=1"], ["fund=1", "fund=2"]):
        with pytest.raises(ValueError):
            parse_grid(bad)


def test_sweep_runs_on_local_ray(local_ray, tmp_path) -> None:
    points = grid_points(parse_grid(["fund=50,5000"]))
    rows = run_sweep(points, paths=1, accounts=60, seed=0, steps=720)
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
