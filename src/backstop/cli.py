"""The ``backstop`` command line. Errors print one line and exit non-zero, never a traceback."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="backstop: a clearing and risk engine for perpetual futures.")
console = Console()


def fail(message: str) -> None:
    """Print a one-line reason and exit with status 1."""
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(1)


# -- shared options and the one error decorator --------------------------------------------

CatalogueOption = Annotated[Path | None, typer.Option(help="A TOML instrument catalogue.")]
ConfigOption = Annotated[Path | None, typer.Option(help="A TOML policy file.")]
VenueOption = Annotated[str | None, typer.Option(
    help="Venue profile: okx (default), binance, bybit, hyperliquid or bitmex.")]
OutOption = Annotated[Path | None, typer.Option(help="Output directory (default ./backstop-runs/<UTC>).")]
AccountsOption = Annotated[int, typer.Option(help="Leveraged accounts in the population.")]
SeedOption = Annotated[int, typer.Option(help="Seed for every random draw of the run.")]
EXPECTED_ERRORS = (ValueError, OSError, ImportError)
"""Bad input, files and missing extras: reported as their message."""
TRACEBACK_ENV = "BACKSTOP_TRACEBACK"
F = TypeVar("F", bound=Callable[..., object])


def one_line_errors(command: F) -> F:
    """Decorate a command so that any failure prints one line and exits 1, never a traceback.

    Expected errors (:data:`EXPECTED_ERRORS`) print their first line; anything else prints
    ``internal error`` with its type and says how to see the traceback
    (``BACKSTOP_TRACEBACK=1``, which re-raises it)."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except EXPECTED_ERRORS as exc:
            fail(_one_line(exc))
        except Exception as exc:
            if os.environ.get(TRACEBACK_ENV):
                raise
            fail(f"internal error ({type(exc).__name__}: {_one_line(exc)}); "
                 f"{TRACEBACK_ENV}=1 shows the traceback")

    return run  # type: ignore[return-value]


@app.command()
@one_line_errors
def demo(
    seed: Annotated[int, typer.Option(help="Seed for the scripted traders.")] = 7,
    catalogue: CatalogueOption = None,
) -> None:
    """Run a scripted market through the engine and print what happened."""
    from backstop.demo import run_demo
    from backstop.model.catalogue import default_catalogue, load_catalogue

    run_demo(console, load_catalogue(catalogue) if catalogue else default_catalogue(), seed)


@app.command()
@one_line_errors
def instruments(catalogue: CatalogueOption = None) -> None:
    """List the instrument catalogue."""
    from backstop.demo import print_catalogue
    from backstop.model.catalogue import default_catalogue, load_catalogue

    print_catalogue(console, load_catalogue(catalogue) if catalogue else default_catalogue())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    db: Annotated[str | None, typer.Option(help="SQLite file or postgresql:// URL.")] = None,
    market: Annotated[str, typer.Option(
        help="replay: simulated market and traders; manual: prices move only via the admin API.")] = "replay",
    speed: Annotated[float, typer.Option(help="Replay speed multiple.")] = 60.0,
    population: Annotated[int, typer.Option(help="Simulated traders.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed for the simulated market.")] = 0,
    catalogue: Annotated[Path | None, typer.Option(help="A TOML instrument catalogue.")] = None,
    config: Annotated[Path | None, typer.Option(help="A TOML policy file.")] = None,
    venue: VenueOption = None,
    prices: Annotated[Path | None, typer.Option(help="Replay a kline CSV or Parquet file.")] = None,
    allow_remote: Annotated[bool, typer.Option(
        help="Allow a non-loopback --host (prints a warning).")] = False,
    data_dir: Annotated[Path, typer.Option(
        help="Log, keys, token and snapshot (created 0700).")] = Path("backstop-data"),
) -> None:
    """Serve the OKX v5-compatible REST and WebSocket API on loopback (SIGTERM shuts down
    gracefully)."""
    try:
        from backstop.engine.venues import resolve_venue
        from backstop.model.catalogue import load_catalogue
        from backstop.serve import run_server

        venue_config, venue_catalogue = resolve_venue(venue, config)
        if catalogue and venue_catalogue is not None:
            raise ValueError(f"--catalogue replaces venue {venue_config.venue.value}'s margin tables "
                             "and fees; give --catalogue or a venue other than okx, not both")
        run_server(host, port, db, market, speed, population, seed,
                   catalogue=load_catalogue(catalogue) if catalogue else venue_catalogue,
                   config=venue_config if (config or venue) else None, prices=prices,
                   allow_remote=allow_remote, data_dir=data_dir)
    except Exception as exc:  # the CLI answers every failure in one line
        fail(_one_line(exc))


def _one_line(exc: BaseException) -> str:
    """An exception as one line: its first line, or its type when it has no message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


log_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Inspect the command log.")
app.add_typer(log_app, name="log")


@log_app.command("verify")
def log_verify(
    data_dir: Annotated[Path, typer.Option(help="The server's data dir.")] = Path("backstop-data"),
    db: Annotated[str | None, typer.Option(help="SQLite file or postgresql:// URL.")] = None,
) -> None:
    """Check the log's hash chain and seq continuity against its head; exit 1 naming the first
    bad seq."""
    try:
        from backstop.serve import is_postgres
        from backstop.store.backup import verify_log

        target = db or data_dir / "backstop.sqlite"
        summary = verify_log(target, data_dir / "log-head" if is_postgres(target) else None)
        console.print(f"log ok: {summary.records} records, head hash {summary.head_hash}", soft_wrap=True)
    except Exception as exc:
        fail(_one_line(exc))


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="An empty or new directory.")],
    data_dir: Annotated[Path, typer.Option(help="The server's data dir.")] = Path("backstop-data"),
) -> None:
    """Online backup of a SQLite log (WAL included) and its secrets key into DEST; restore
    with ``backstop serve --data-dir DEST``."""
    try:
        from backstop.store.backup import backup as run_backup

        summary = run_backup(data_dir, dest)
        console.print(f"backup ok: {summary.records} records in {dest}, head hash {summary.head_hash}",
                      soft_wrap=True)
    except Exception as exc:
        fail(_one_line(exc))


@app.command()
@one_line_errors
def stress(
    prices: Annotated[Path | None, typer.Option(help="Kline CSV/Parquet (Binance layout) to replay.")] = None,
    model: Annotated[str | None, typer.Option(
        help="Generated path: crash (built-in 2025-10-10 model; the default), gbm, garch or jump.")] = None,
    depth: Annotated[Path | None, typer.Option(
        help="Binance bookDepth CSV for the maker's ladder (default: ../shared/data's 2025-10-10).")] = None,
    accounts: AccountsOption = 1000,
    policy: Annotated[str | None, typer.Option(help="ADL ranking name, or key=value pairs.")] = None,
    config: ConfigOption = None,
    seed: SeedOption = 0,
    out: OutOption = None,
    compare_adl: Annotated[bool, typer.Option(
        "--compare-adl", help="Also compare ADL policies: ranking queues and profit haircuts.")] = False,
    venue: VenueOption = None,
    compare_venues: Annotated[bool, typer.Option(
        "--compare-venues", help="Also run the crash under every venue profile, side by side.")] = False,
    paths: Annotated[int, typer.Option(help="Monte Carlo over N generated paths (fast path).")] = 0,
    fund: Annotated[float | None, typer.Option(
        help="Initial insurance fund, USDT (default: 0.5 % of the population's notional; "
             "with --paths 250,000).")] = None,
    feedback: Annotated[bool | None, typer.Option(
        "--feedback/--no-feedback", help="Forced flow moves the index (endogenous cascade); "
                                         "default off: a replayed crash already holds the market's.")] = None,
    calibration: Annotated[Path | None, typer.Option(
        help="A `backstop calibrate --out` TOML whose [feedback] table sets the feedback rule.")] = None,
    oi_share: Annotated[float | None, typer.Option(
        help="The population's share of the market's open interest (scales the book; default 1, "
             "with --feedback 0.03).")] = None,
    amplification: Annotated[bool, typer.Option(
        "--amplification", help="Also run the cascade over open interest × leverage; "
                                "report drawdown amplification.")] = False,
    grid_oi: Annotated[str | None, typer.Option(
        help="--amplification's open-interest shares, e.g. 0.003,0.01,0.03,0.1.")] = None,
    grid_leverage: Annotated[str | None, typer.Option(
        help="--amplification's leverage scales, e.g. 0.5,1,2.")] = None,
) -> None:
    """Run one stress scenario through the exact engine (no flags: the built-in 2025-10-10 crash),
    or a Monte Carlo with --paths; write report.html and tables."""
    from backstop.lab.stress_command import StressFlags, run_stress_command

    run_stress_command(console, StressFlags(prices=prices, model=model, depth=depth, accounts=accounts,
                                            policy=policy, config=config, seed=seed, out=out,
                                            compare_adl=compare_adl, paths=paths, fund=fund,
                                            venue=venue, compare_venues=compare_venues, feedback=feedback,
                                            calibration=calibration,
                                            oi_share=oi_share, amplification=amplification,
                                            grid_oi=grid_oi, grid_leverage=grid_leverage))


@app.command()
@one_line_errors
def sweep(
    grid: Annotated[list[str] | None, typer.Option(
        help="KEY=V1,V2 (repeatable); keys: fund, liq_fee, mmr_scale, fee_share, adl_threshold, "
             "adl_ranking, liq_style.")] = None,
    random: Annotated[int, typer.Option(
        help="N random points instead of the full grid (drawn from --grid's values if given).")] = 0,
    paths: Annotated[int, typer.Option(help="Paths per point.")] = 2,
    accounts: Annotated[int, typer.Option(help="Accounts per scenario.")] = 100,
    seed: SeedOption = 0,
    model: Annotated[str, typer.Option(help="stress | crash | gbm | garch | jump.")] = "stress",
    out: OutOption = None,
    ray_address: Annotated[str | None, typer.Option(
        help="Run on Ray: a cluster address, or 'local' (needs backstop[ray]); default: local processes."
    )] = None,
) -> None:
    """Grid or random search over fund and policy settings through the exact engine, on local
    processes or a Ray cluster."""
    from backstop.sim.sweep_cli import sweep_command

    sweep_command(console, grid or [], random, paths, accounts, seed, model, out, ray_address)


@app.command()
@one_line_errors
def calibrate(
    daily: Annotated[Path | None, typer.Option(
        help="Daily closes CSV (unix_timestamp, close; or 1d klines: open_time, close).")] = None,
    funding: Annotated[Path | None, typer.Option(help="8-hour funding CSV (last_funding_rate).")] = None,
    depth: Annotated[Path | None, typer.Option(help="Binance bookDepth CSV.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the fitted values to this TOML file.")] = None,
    klines: Annotated[Path | None, typer.Option(
        help="1-minute klines of the --depth day: fits the cascade feedback (and, with altcoin klines "
             "of that day beside it, the instruments' volatility ratios and correlations).")] = None,
) -> None:
    """Fit the price-model, funding, impact and feedback parameters and compare with the shipped
    constants (no flags: the files in ../shared/data, else the shipped constants and their sources)."""
    from backstop.sim.calibrate_cli import calibrate_command

    calibrate_command(console, daily, funding, depth, out, klines)


data_app = typer.Typer(add_completion=False, no_args_is_help=True,
                       help="Real market data on demand (Binance's public archive).")
app.add_typer(data_app, name="data")


@data_app.command("download")
@one_line_errors
def data_download(
    start: Annotated[str, typer.Option(help="First UTC day, YYYY-MM-DD.")],
    end: Annotated[str | None, typer.Option(help="Last UTC day, included (default: --start).")] = None,
    symbol: Annotated[str, typer.Option(help="USDⓈ-M futures symbol.")] = "BTCUSDT",
    kind: Annotated[str, typer.Option(help="klines, bookDepth or fundingRate.")] = "klines",
    interval: Annotated[str | None, typer.Option(help="Kline interval (klines only; default 1m).")] = None,
    out: Annotated[Path, typer.Option(help="Directory for the converted CSV.")] = Path("market-data"),
    cache: Annotated[Path | None, typer.Option(
        help="Archive cache (default $BACKSTOP_CACHE, else ~/.cache/backstop).")] = None,
    base_url: Annotated[str | None, typer.Option(
        envvar="BACKSTOP_BINANCE_URL", help="Archive base URL.")] = "https://data.binance.vision",
) -> None:
    """Fetch Binance USDⓈ-M futures archives, verify their SHA-256 checksums, and write one CSV in
    the layout --prices (klines), --depth (bookDepth) and --funding (fundingRate) read."""
    from backstop.data.binance import download, parse_request

    request = parse_request(symbol, kind, start, end, interval)
    path = download(request, out, cache, base_url)
    console.print(f"wrote {path}", soft_wrap=True, highlight=False)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        sys.exit(130)
