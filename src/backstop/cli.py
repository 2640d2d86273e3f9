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
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
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
    market: Annotated[str, typer.Option(help="manual: prices move only via the admin API.")] = "manual",
    speed: Annotated[float, typer.Option(help="Replay speed multiple.")] = 60.0,
    population: Annotated[int, typer.Option(help="Simulated traders.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed for the simulated market.")] = 0,
    catalogue: Annotated[Path | None, typer.Option(help="A TOML instrument catalogue.")] = None,
    config: Annotated[Path | None, typer.Option(help="A TOML policy file.")] = None,
) -> None:
    """Serve the OKX v5-compatible REST and WebSocket API on loopback."""
    from backstop.engine.config import load_config
    from backstop.model.catalogue import load_catalogue
    from backstop.serve import run_server

    try:
        run_server(host, port, db, market, speed, population, seed,
                   catalogue=load_catalogue(catalogue) if catalogue else None,
                   config=load_config(config) if config else None)
    except (ValueError, OSError) as exc:
        fail(str(exc))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        sys.exit(130)
