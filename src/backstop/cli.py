"""The ``backstop`` command line. Errors print one line and exit non-zero, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="backstop: a clearing and risk engine for perpetual futures.")
console = Console()


def fail(message: str) -> None:
    """Print a one-line reason and exit with status 1."""
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(1)


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed for the scripted traders.")] = 7,
    catalogue: Annotated[Path | None, typer.Option(help="A TOML instrument catalogue.")] = None,
) -> None:
    """Run a scripted market through the engine and print what happened."""
    from backstop.demo import run_demo
    from backstop.model.catalogue import default_catalogue, load_catalogue

    try:
        cat = load_catalogue(catalogue) if catalogue else default_catalogue()
        run_demo(console, cat, seed)
    except ValueError as exc:
        fail(str(exc))


@app.command()
def instruments(
    catalogue: Annotated[Path | None, typer.Option(help="A TOML instrument catalogue.")] = None,
) -> None:
    """List the instrument catalogue."""
    from backstop.demo import print_catalogue
    from backstop.model.catalogue import default_catalogue, load_catalogue

    try:
        print_catalogue(console, load_catalogue(catalogue) if catalogue else default_catalogue())
    except ValueError as exc:
        fail(str(exc))


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
    prices: Annotated[Path | None, typer.Option(help="Replay a kline CSV or Parquet file.")] = None,
    allow_remote: Annotated[bool, typer.Option(
        help="Allow a non-loopback --host (prints a warning).")] = False,
    data_dir: Annotated[Path, typer.Option(
        help="Log, keys, token and snapshot (0700).")] = Path("backstop-data"),
) -> None:
    """Serve the OKX v5-compatible REST and WebSocket API on loopback (SIGTERM shuts down
    gracefully)."""
    try:
        from backstop.engine.config import load_config
        from backstop.model.catalogue import load_catalogue
        from backstop.serve import run_server

        run_server(host, port, db, market, speed, population, seed,
                   catalogue=load_catalogue(catalogue) if catalogue else None,
                   config=load_config(config) if config else None, prices=prices,
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
def stress(
    prices: Annotated[Path | None, typer.Option(help="Kline CSV/Parquet (Binance layout) to replay.")] = None,
    model: Annotated[str | None, typer.Option(help="Generated path: gbm, garch or jump.")] = None,
    accounts: Annotated[int, typer.Option(help="Leveraged accounts in the population.")] = 1000,
    policy: Annotated[str | None, typer.Option(help="ADL ranking name, or key=value pairs.")] = None,
    config: Annotated[Path | None, typer.Option(help="A TOML policy file.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the path and the population.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Output dir (default ./backstop-runs/<UTC>).")] = None,
    compare_adl: Annotated[bool, typer.Option("--compare-adl", help="Also compare ADL rankings.")] = False,
    paths: Annotated[int, typer.Option(help="Monte Carlo over N generated paths (fast path).")] = 0,
    fund: Annotated[float, typer.Option(help="--paths: initial insurance fund, USDT.")] = 250_000.0,
) -> None:
    """Run one stress scenario through the exact engine; write report.html and Parquet tables."""
    from backstop.sim.stress_command import run_stress_command

    try:
        if paths:
            from backstop.sim.mc_cli import stress_paths_command

            stress_paths_command(paths, model or "gbm", accounts, seed, out, fund, console=console)
            return
        run_stress_command(console, prices=prices, model=model, accounts=accounts, policy=policy,
                           config=config, seed=seed, out=out, compare_adl=compare_adl)
    except (ValueError, OSError, ImportError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


@app.command()
def sweep(
    grid: Annotated[list[str] | None, typer.Option(
        help="KEY=V1,V2 (repeatable); keys: fund, liq_fee, mmr_scale, fee_share, adl_threshold, "
             "adl_ranking, liq_style.")] = None,
    random: Annotated[int, typer.Option(help="Random points instead of a grid (0: use --grid).")] = 0,
    paths: Annotated[int, typer.Option(help="Paths per point.")] = 2,
    accounts: Annotated[int, typer.Option(help="Accounts per scenario.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed for the paths, population and random points.")] = 0,
    model: Annotated[str, typer.Option(help="stress | gbm | garch | jump.")] = "stress",
    out: Annotated[Path | None, typer.Option(help="Output directory.")] = None,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address (default: local Ray).")] = None,
) -> None:
    """Grid or random search over fund and policy settings on Ray, through the exact engine."""
    from backstop.sim.sweep_cli import sweep_command

    try:
        sweep_command(console, grid or [], random, paths, accounts, seed, model, out, ray_address)
    except (ValueError, OSError) as exc:
        fail(str(exc))


@app.command()
def calibrate(
    daily: Annotated[Path | None, typer.Option(help="Daily closes CSV (unix_timestamp, close).")] = None,
    funding: Annotated[Path | None, typer.Option(help="8-hour funding CSV (last_funding_rate).")] = None,
    depth: Annotated[Path | None, typer.Option(help="Binance bookDepth CSV.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the fitted values to this TOML file.")] = None,
) -> None:
    """Fit the price-model, funding and impact parameters; compare with the shipped constants."""
    from backstop.sim.calibrate_cli import calibrate_rows, resolve_inputs, rows_table, to_toml

    try:
        rows = calibrate_rows(resolve_inputs(daily, funding, depth))
        console.print(rows_table(rows))
        if out is not None:
            out.write_text(to_toml(rows))
            console.print(f"wrote {out}")
    except (ValueError, OSError) as exc:
        fail(str(exc).splitlines()[0])


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        sys.exit(130)
