"""A real backstop server in a subprocess on a free loopback port, and a small OKX-signing
client. Used by the reliability tests, the API tests (``tests/api/conftest.py``) and
``bench/crash_harness.py``."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ADMIN_TOKEN = "reliability-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``run_server`` over ``data_dir`` and optionally a ``db`` URL, with ``limits`` (keyword
    arguments of :class:`backstop.api.limits.Limits`), the admin token, and any other
    ``run_server`` keyword arguments (``market="replay"``, ``speed=...``; manual by default)."""

    def __init__(self, data_dir: Path, db: str | None = None, limits: dict[str, Any] | None = None,
                 admin_token: str = ADMIN_TOKEN, **run_kwargs: Any) -> None:
        self.data_dir = Path(data_dir)
        self.db = db
        self.limits = limits or {}
        self.admin_token = admin_token
        self.run_kwargs = run_kwargs
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_target(self) -> str:
        """The log the server writes (SQLite path or PostgreSQL URL)."""
        return self.db or str(self.data_dir / "backstop.sqlite")

    def start(self, timeout_s: float = 30) -> None:
        code = ("from pathlib import Path; from backstop.serve import run_server; "
                "from backstop.api.limits import Limits; "
                f"run_server(port={self.port}, data_dir=Path({str(self.data_dir)!r}), db={self.db!r}, "
                f"limits=Limits(**{self.limits!r}), **{self.run_kwargs!r})")
        env = {**os.environ, "BACKSTOP_ADMIN_TOKEN": self.admin_token}
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                httpx.get(f"{self.url}/api/v5/public/time", timeout=0.5)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self, timeout_s: float = 30) -> int:
        """SIGTERM; the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def okx_timestamp(when: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds, as OKX signs it."""
    return (when or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sign(secret: str, prehash: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()).decode()


def ws_login_frame(key: dict[str, str]) -> str:
    """An OKX WebSocket ``login`` frame for an account's key, signed now."""
    ts = str(int(time.time()))
    signature = sign(key["secretKey"], f"{ts}GET/users/self/verify")
    return json.dumps({"op": "login", "args": [{"apiKey": key["apiKey"], "passphrase": key["passphrase"],
                                                "timestamp": ts, "sign": signature}]})


async def ws_recv(ws: Any, predicate: Any, timeout: float = 5.0) -> dict:
    """The next JSON message matching ``predicate`` (``pong`` frames skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            text = await ws.recv()
            if text == "pong":
                continue
            message = json.loads(text)
            if predicate(message):
                return message


class SignedClient:
    """Signs requests exactly as OKX documents; ``admin`` calls the admin API."""

    def __init__(self, url: str, key: dict[str, str] | None = None, timeout: float = 10) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout)
        self.key = key

    @property
    def uid(self) -> int:
        assert self.key is not None
        return int(self.key["uid"])

    def headers(self, method: str, target: str, body: str, when: datetime | None = None) -> dict[str, str]:
        assert self.key is not None
        ts = okx_timestamp(when)
        return {"OK-ACCESS-KEY": self.key["apiKey"], "OK-ACCESS-PASSPHRASE": self.key["passphrase"],
                "OK-ACCESS-TIMESTAMP": ts,
                "OK-ACCESS-SIGN": sign(self.key["secretKey"], ts + method + target + body),
                "Content-Type": "application/json"}

    def get(self, target: str) -> httpx.Response:
        return self.http.get(target, headers=self.headers("GET", target, ""))

    def post(self, target: str, payload: object) -> httpx.Response:
        body = json.dumps(payload)
        return self.http.post(target, content=body, headers=self.headers("POST", target, body))

    def admin(self, method: str, path: str, payload: object | None = None) -> dict:
        response = self.http.request(method, f"/backstop/v1/{path}",
                                     headers={"X-Backstop-Admin": ADMIN_TOKEN},
                                     content=None if payload is None else json.dumps(payload))
        body = response.json()
        assert response.status_code == 200 and body["code"] == "0", response.text
        return body["data"][0]

    def close(self) -> None:
        self.http.close()


def new_account(url: str, usdt: str = "100000") -> SignedClient:
    """A funded account (USDT and BTC) with its signed client."""
    key = SignedClient(url).admin("POST", "accounts", {"deposits": {"USDT": usdt, "BTC": "10"}})
    return SignedClient(url, key)
