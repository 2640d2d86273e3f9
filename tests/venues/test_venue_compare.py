"""``backstop stress --compare-venues`` and ``--venue``: one crash, one population, one fund,
each venue's rules; OKX's run is the plain run."""

from __future__ import annotations

import pyarrow.parquet as pq
from typer.testing import CliRunner

from backstop.cli import app
from backstop.engine.config import Venue
from backstop.engine.venues import venue_profile
from backstop.report.summary import headline, utc
from backstop.report.venue_compare import VENUE_COLUMNS, compare_venues, write_venue_outputs
from backstop.sim.scenario import Scenario, ScenarioSpec
from backstop.sim.stress import run_stress
from backstop.sim.venue_scenario import venue_scenario

SPEC = ScenarioSpec(model="crash", n_accounts=40, seed=3)


def test_okx_row_is_the_plain_run_and_venues_share_the_fund_and_population(tmp_path):
    runs = compare_venues(SPEC, venues=(Venue.OKX, Venue.BINANCE, Venue.HYPERLIQUID), progress=False)
    plain = headline(run_stress(Scenario(SPEC), progress=False))
    okx, binance, hyper = (r.row for r in runs)
    assert (okx["liquidations"], okx["bankruptcy_losses_usdt"] * 1e8, okx["fund_min_usdt"] * 1e8) \
        == (plain.liquidations, float(plain.bankruptcy_losses), float(plain.fund_min))
    assert okx["fund_start_usdt"] == binance["fund_start_usdt"] == hyper["fund_start_usdt"] > 0
    assert okx["opened"] == binance["opened"] == 40
    assert all(r.row["conservation_ok"] for r in runs)
    # the rules differ, and so does the outcome (Hyperliquid cuts 20% slices: more liquidations)
    assert hyper["liquidations"] > okx["liquidations"]
    assert [r.fund_path[0] for r in runs] == [runs[0].fund_path[0]] * 3
    # each path starts at the initial fund (not the empty fund before it), and the low shown
    # is the headline's, at the headline's time
    assert runs[0].fund_path[0][1] == plain.fund_start and runs[0].fund_min_ts == plain.fund_min_ts
    assert all(min(b for _, b in r.fund_path) == round(r.row["fund_min_usdt"] * 1e8) for r in runs)
    (tmp_path / "report.html").write_text("<html><body><h1>x</h1></body></html>")
    write_venue_outputs(runs, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert page.count("<h2>Venue comparison</h2>") == 1 and "venue_funds" in page
    assert f"okx: low {okx['fund_min_usdt']:,.2f} at {utc(plain.fund_min_ts)} UTC" in page
    assert page.index("<h1>x</h1>") < page.index("Venue comparison")
    table = pq.read_table(tmp_path / "venue_compare.parquet").to_pydict()
    assert table["venue"] == ["okx", "binance", "hyperliquid"] and set(VENUE_COLUMNS) <= set(table)


def test_a_venue_scenario_trades_on_the_venue_catalogue():
    spec = ScenarioSpec(model="crash", n_accounts=5, seed=1, config=venue_profile("binance").config)
    scenario = venue_scenario(spec)
    inst = scenario.exchange.catalogue.get("BTC-USDT-SWAP")
    assert scenario.inst is inst and scenario.maker.inst is inst
    assert inst.liq_fee_ppm == 0 and inst.tiers[1].mm_deduction > 0
    assert scenario.exchange.config.venue is Venue.BINANCE


def test_cli_compare_venues_prints_the_table(tmp_path):
    result = CliRunner().invoke(app, ["stress", "--accounts", "20", "--venue", "bybit", "--compare-venues",
                                      "--out", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Venue comparison" in result.output
    for venue in Venue:
        assert venue.value in result.output
    assert "Venue comparison" in (tmp_path / "report.html").read_text()


def test_cli_refuses_an_unknown_venue_in_one_line():
    result = CliRunner().invoke(app, ["stress", "--venue", "mtgox"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "unknown venue 'mtgox'" in result.stderr


def test_cli_compare_venues_refuses_policies_it_would_apply_to_one_run(tmp_path):
    """Each venue runs its own policies; a --policy or --config would change the first run
    alone, so it is refused in one line before anything runs (--fund applies to every venue)."""
    config = tmp_path / "p.toml"
    config.write_text('[adl]\nranking = "pro_rata"\n')
    for extra in (["--policy", "adl.ranking=pro_rata"], ["--config", str(config)]):
        result = CliRunner().invoke(app, ["stress", "--compare-venues", "--out", str(tmp_path / "o"), *extra])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "--compare-venues runs each venue's own policies" in result.stderr
        assert not (tmp_path / "o").exists()


def test_serve_refuses_a_catalogue_that_would_replace_a_venues_tables(tmp_path):
    """``serve --venue binance --catalogue FILE``: the file would silently drop Binance's
    brackets; refused in one line before the server starts."""
    catalogue = tmp_path / "c.toml"
    catalogue.write_text("")
    result = CliRunner().invoke(app, ["serve", "--venue", "binance", "--catalogue", str(catalogue),
                                      "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "--catalogue replaces venue binance's margin tables" in result.stderr
