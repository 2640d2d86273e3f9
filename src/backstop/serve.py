"""``backstop serve``: the local OKX-compatible exchange on loopback.

:func:`run_server` opens the log (SQLite file or ``postgresql://`` URL), replays it through a
fresh engine, and serves the app with uvicorn until interrupted. The admin token comes from
``BACKSTOP_ADMIN_TOKEN`` or is generated; it is printed and written to ``<data dir>/admin-token``.

Binding to an address that is not loopback needs ``allow_remote`` (``--allow-remote``) and
prints a warning. SIGTERM shuts down gracefully: uvicorn stops accepting, lets requests in
flight finish, closes connections; then the group-commit writer drains its queue, the log is
closed and :func:`run_server` returns normally (exit status 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

import uvicorn

from backstop.api.app import create_app
from backstop.api.limits import DEFAULT_LIMITS, Limits
from backstop.api.service import Clock, ExchangeService, wall_clock_ms
from backstop.engine.config import EngineConfig
from backstop.engine.exchange import Exchange
from backstop.model.catalogue import Catalogue, default_catalogue
from backstop.store.log import open_log

DEFAULT_DATA_DIR = Path("backstop-data")
MARKETS = ("replay", "manual")
"""``replay``: the market driver (:mod:`backstop.sim.market`) moves prices and runs a trader
population; ``manual``: prices move only through the admin API."""


def build_service(db: str | Path, catalogue: Catalogue | None = None,
                  clock: Clock = wall_clock_ms, config: EngineConfig | None = None) -> ExchangeService:
    """A service over the log at ``db``, with state replayed from it (with the same catalogue
    and policies it ran with)."""
    cat = catalogue or default_catalogue()
    service = ExchangeService(lambda: Exchange(cat, config, keep_log=False), open_log(db), clock)
    service.start()
    return service


def admin_token_for(data_dir: Path) -> str:
    """``BACKSTOP_ADMIN_TOKEN``, else a token kept in ``<data_dir>/admin-token`` (created once)."""
    token = os.environ.get("BACKSTOP_ADMIN_TOKEN", "")
    path = data_dir / "admin-token"
    if not token and path.is_file():
        token = path.read_text().strip()
    if not token:
        token = secrets.token_urlsafe(24)
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def ensure_market_args(market: str, speed: float, population: int,
                       prices: str | Path | None = None) -> None:
    """Raise ``ValueError`` naming the first impossible setting."""
    if market not in MARKETS:
        raise ValueError(f"--market {market!r} is not one of {MARKETS}")
    if not speed > 0 or speed == float("inf"):
        raise ValueError("--speed must be a positive number")
    if population < 0:
        raise ValueError("--population must be zero or more")
    if prices is not None and market != "replay":
        raise ValueError("--prices needs --market replay")
    if prices is not None and not Path(prices).is_file():
        raise ValueError(f"--prices file not found: {prices}")


def build_driver(service: ExchangeService, market: str, speed: float, population: int, seed: int,
                 prices: str | Path | None = None):
    """The market driver for ``replay`` (its price file loaded and checked now), else ``None``."""
    if market != "replay":
        return None
    from backstop.sim.market import MarketDriver, MarketSettings

    settings = MarketSettings(speed=speed, population=population, seed=seed,
                              prices=Path(prices) if prices is not None else None)
    return MarketDriver(service, settings)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_bind_allowed(host: str, allow_remote: bool) -> None:
    """Refuse (``ValueError``) a non-loopback ``host`` without ``allow_remote``; warn with it."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise ValueError(f"--host {host} is not a loopback address; pass --allow-remote to expose "
                         "the exchange beyond this machine")
    print(f"backstop serve: WARNING: listening on {host}, reachable from other machines; "
          "anyone who can connect may try keys and the admin token", file=sys.stderr, flush=True)


def _absorb_sigterm() -> None:
    """Give SIGTERM a no-op Python handler, so that uvicorn (which re-raises the signal it
    caught once it has shut down) returns instead of the process dying before the log is
    drained and closed."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: None)


async def _serve(server: uvicorn.Server, driver, service: ExchangeService) -> None:
    """Run uvicorn, with the market driver as a task beside it; then drain the log writer."""
    task = asyncio.create_task(driver.run()) if driver is not None else None
    try:
        await server.serve()
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await service.drain()


def run_server(host: str = "127.0.0.1", port: int = 8000, db: str | None = None,
               market: str = "manual", speed: float = 60.0, population: int = 200, seed: int = 0,
               catalogue: Catalogue | None = None, data_dir: Path = DEFAULT_DATA_DIR,
               config: EngineConfig | None = None, prices: str | Path | None = None,
               allow_remote: bool = False, limits: Limits = DEFAULT_LIMITS) -> None:
    """Serve until interrupted (SIGTERM: gracefully). ``db`` defaults to
    ``<data_dir>/backstop.sqlite``. ``speed``, ``population``, ``seed`` and ``prices`` (a kline
    CSV or Parquet file) drive the ``replay`` market and are validated here. The library
    default is ``manual`` (tests); the CLI's is ``replay``. ``allow_remote`` permits a
    non-loopback ``host``; ``limits`` are the API's abuse limits."""
    ensure_market_args(market, speed, population, prices)
    ensure_bind_allowed(host, allow_remote)
    service = build_service(db or data_dir / "backstop.sqlite", catalogue, config=config)
    try:
        driver = build_driver(service, market, speed, population, seed, prices)
        token = admin_token_for(data_dir)
        print(f"backstop serve: http://{host}:{port}  log {service.log.description}  "
              f"admin token {token} (also in {data_dir / 'admin-token'})  market {market}  "
              f"seed {seed}", flush=True)
        config_ = uvicorn.Config(create_app(service, token, limits=limits), host=host, port=port,
                                 log_level="warning", ws="websockets-sansio",
                                 ws_max_size=limits.ws_transport_max())
        _absorb_sigterm()
        asyncio.run(_serve(uvicorn.Server(config_), driver, service))
    finally:
        service.log.close()
