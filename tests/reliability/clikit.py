"""Running the real ``backstop`` command line in a subprocess, and a small populated data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from serverkit import ServerProcess, new_account

BTC = "BTC-USDT-SWAP"


def backstop(*args: str, env: dict[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess:
    """``backstop ARGS`` to completion: its exit status, stdout and stderr."""
    return subprocess.run([sys.executable, "-c", "from backstop.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The CLI's refusal: exit status 1, exactly one line on stderr, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def populate(data_dir: Path, orders: int = 20) -> ServerProcess:
    """A server over ``data_dir`` with one funded account and ``orders`` resting orders, left
    running (the caller kills or stops it)."""
    server = ServerProcess(data_dir, limits={"rate_scale": 0})
    server.start()
    client = new_account(server.url)
    for i in range(orders):
        order = {"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "0.01",
                 "px": str(50000 + i)}
        assert client.post("/api/v5/trade/order", order).json()["code"] == "0"
    return server
