"""``backstop serve``: the local OKX-compatible exchange on loopback.

:func:`run_server` opens the log (SQLite file or ``postgresql://`` URL), replays it through a
fresh engine, and serves the app with uvicorn until interrupted. The admin token comes from
``BACKSTOP_ADMIN_TOKEN``, else from ``<data dir>/admin-token``, else is generated, written there
(mode 0600) and printed that one time; it never appears in a log.

Files: the data dir is created 0700 (an existing one is left alone); the SQLite log, its WAL
and head file, the secrets key (``secret.key``, :mod:`backstop.store.secrets`), the admin
token and the state snapshot (``snapshot.pickle``) are 0600. A second server on the same
data dir is refused (an exclusive ``flock`` on ``<data dir>/lock``). Start-up verifies the
log's hash chain and refuses, naming the first bad ``seq``, if it is damaged.

uvicorn runs with :mod:`backstop.api.http_guard` (connection cap, header timeout, malformed
HTTP in OKX's envelope) on a socket bound here, so that a bad address or a port in use is a
one-line ``OSError`` rather than a failure inside uvicorn.

The event loop is uvloop's where it is installed (:func:`loop_factory`), else asyncio's own.
Once the log is replayed, the objects it built are moved out of the garbage collector's
generations (``gc.freeze``), so that collections while serving do not walk the whole state.

Binding to an address that is not loopback needs ``allow_remote`` (``--allow-remote``) and
prints a warning. SIGTERM shuts down gracefully: uvicorn stops accepting, lets requests in
flight finish, closes connections; then the group-commit writer drains its queue, the log is
closed and :func:`run_server` returns normally (exit status 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import ipaddress
import os
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from backstop.api.app import create_app
from backstop.api.http_guard import AbortableWebSocketProtocol, guarded_protocol
from backstop.api.limits import DEFAULT_LIMITS, Limits
from backstop.api.service import SNAPSHOT_EVERY, Clock, ExchangeService, wall_clock_ms
from backstop.engine.config import EngineConfig
from backstop.engine.exchange import Exchange
from backstop.model.catalogue import Catalogue, default_catalogue
from backstop.store.log import FILE_MODE, open_log, private_dir
from backstop.store.secrets import load_key

DEFAULT_DATA_DIR = Path("backstop-data")
MARKETS = ("replay", "manual")
"""``replay``: the market driver (:mod:`backstop.market`) moves prices and runs a trader
population; ``manual``: prices move only through the admin API."""


def is_postgres(db: str | Path) -> bool:
    return str(db).startswith(("postgresql://", "postgres://"))


def files_dir(db: str | Path, data_dir: Path | None) -> Path | None:
    """Where the log's companions live (secrets key, snapshot, PostgreSQL head file): the data
    dir, else the SQLite file's directory; ``None`` for PostgreSQL without a data dir."""
    if data_dir is not None:
        return data_dir
    return None if is_postgres(db) else Path(db).parent


def build_service(db: str | Path, catalogue: Catalogue | None = None,
                  clock: Clock = wall_clock_ms, config: EngineConfig | None = None,
                  data_dir: Path | None = None, snapshot_every: int = SNAPSHOT_EVERY) -> ExchangeService:
    """A service over the log at ``db``, with state restored from it (with the same catalogue
    and policies it ran with). Raises ``ValueError`` (one line) for a bad target, a damaged
    log (``LogCorrupt``) or a wrong secrets key."""
    cat = catalogue or default_catalogue()
    home = files_dir(db, data_dir)
    if home is not None:
        private_dir(home)
    head = home / "log-head" if home is not None and is_postgres(db) else None
    log = open_log(db, head)
    try:
        service = ExchangeService(lambda: Exchange(cat, config, keep_log=False), log, clock,
                                  secrets_key=load_key(home / "secret.key") if home is not None else None,
                                  snapshot_path=home / "snapshot.pickle" if home is not None else None,
                                  snapshot_every=snapshot_every)
        service.start()
    except Exception:
        log.close()
        raise
    return service


def admin_token_for(data_dir: Path) -> tuple[str, bool]:
    """``BACKSTOP_ADMIN_TOKEN``, else the token kept in ``<data_dir>/admin-token``, else a new
    one written there (0600); and whether it was generated now."""
    token = os.environ.get("BACKSTOP_ADMIN_TOKEN", "")
    if token:
        return token, False
    path = data_dir / "admin-token"
    if path.is_file():
        os.chmod(path, FILE_MODE)
        return path.read_text().strip(), False
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token, True


class DataDirLock:
    """An exclusive ``flock`` on ``<data_dir>/lock`` for the server's lifetime; a second
    server on the same dir gets a one-line ``ValueError``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "lock"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            raise ValueError(f"data dir {data_dir} is in use by another backstop serve "
                             f"(pid {holder})") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        os.close(self._fd)


def ensure_port(port: int) -> None:
    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port} is not a TCP port (0-65535)")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``OSError`` with one line when it cannot be)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise OSError(f"cannot resolve --host {host}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


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
    from backstop.market import MarketDriver, MarketSettings

    settings = MarketSettings(speed=speed, population=population, seed=seed,
                              prices=Path(prices) if prices is not None else None)
    try:
        return MarketDriver(service, settings)
    except (StopIteration, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"--prices {prices}: empty or not a kline file ({type(exc).__name__})") from None


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


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where the package is installed, else ``None`` (asyncio's default)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def freeze_state() -> None:
    """Collect once, then exempt every object alive now (the replayed state) from collection."""
    gc.collect()
    gc.freeze()


def _absorb_sigterm(server: uvicorn.Server) -> None:
    """Give SIGTERM a Python handler that asks ``server`` to exit: uvicorn (which re-raises
    the signal it caught once it has shut down) then returns instead of the process dying
    before the log is drained and closed, and a SIGTERM that arrives before uvicorn installs
    its own handlers still shuts the server down."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))


async def _serve(server: uvicorn.Server, sock: socket.socket, driver, service: ExchangeService) -> None:
    """Run uvicorn on ``sock``, with the market driver as a task beside it; then drain the
    log writer and write a state snapshot."""
    task = asyncio.create_task(driver.run()) if driver is not None else None
    try:
        await server.serve(sockets=[sock])
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await service.drain()
        if not service.failed:
            service.write_snapshot_now()


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
    ensure_port(port)
    ensure_bind_allowed(host, allow_remote)
    private_dir(data_dir)
    lock = DataDirLock(data_dir)
    try:
        _run_locked(host, port, db or data_dir / "backstop.sqlite", market, speed, population, seed,
                    catalogue, data_dir, config, prices, limits)
    finally:
        lock.release()


def _run_locked(host: str, port: int, db: str | Path, market: str, speed: float, population: int,
                seed: int, catalogue: Catalogue | None, data_dir: Path, config: EngineConfig | None,
                prices: str | Path | None, limits: Limits) -> None:
    service = build_service(db, catalogue, config=config, data_dir=data_dir)
    sock = None
    try:
        driver = build_driver(service, market, speed, population, seed, prices)
        sock = bind_socket(host, port)
        token, generated = admin_token_for(data_dir)
        told = f"admin token {token} (saved in {data_dir / 'admin-token'})" if generated else \
            "admin token from BACKSTOP_ADMIN_TOKEN" if os.environ.get("BACKSTOP_ADMIN_TOKEN") else \
            f"admin token in {data_dir / 'admin-token'}"
        config_ = uvicorn.Config(create_app(service, token, limits=limits), log_level="warning",
                                 http=guarded_protocol(limits.max_connections, limits.header_timeout_s),
                                 ws=AbortableWebSocketProtocol, ws_max_size=limits.ws_transport_max())
        server = uvicorn.Server(config_)
        _absorb_sigterm(server)
        print(f"backstop serve: http://{host}:{sock.getsockname()[1]}  log {service.log.description}  "
              f"{told}  market {market}  seed {seed}", flush=True)
        freeze_state()
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(_serve(server, sock, driver, service))
    finally:
        if sock is not None:
            sock.close()
        service.log.close()
