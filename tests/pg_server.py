"""A throwaway PostgreSQL server from Debian's binaries (``apt-get install -y postgresql``) on a
free loopback port, with its data and socket in a temp dir. Shared by the PostgreSQL tests and
``bench/crash_harness.py``.

When running as root the server runs as the ``postgres`` user (``runuser``), since PostgreSQL
refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
PG_MISSING = "PostgreSQL server binaries missing: apt-get install -y postgresql"


def pg_available() -> bool:
    """Whether ``initdb`` is installed."""
    return bool(PG_BINS) and os.path.exists(f"{PG_BINS[-1]}/initdb")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """``initdb`` + ``pg_ctl start`` in a temp dir; trust auth on 127.0.0.1 only."""

    def __init__(self, bin_dir: str | None = None) -> None:
        self.bin_dir = bin_dir or PG_BINS[-1]
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="backstop-pg-"))
        self.data = self.root / "data"
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(f"{self.bin_dir}/initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8")
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                   "-c max_connections=50")
        self._run(f"{self.bin_dir}/pg_ctl", "-D", str(self.data), "-o", options, "-w", "-t", "60",
                  "-l", str(self.root / "log"), "start")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(f"{self.bin_dir}/pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
