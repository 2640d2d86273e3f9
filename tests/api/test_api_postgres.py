"""The same recovery tests on PostgreSQL: a throwaway server started from Debian's binaries
(``apt-get install -y postgresql``) on a free port, with its data and socket in a temp dir.

When running as root the server runs as the ``postgres`` user (``runuser``), since PostgreSQL
refuses to run as root. Skipped, with the reason, when the binaries are absent.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from test_api_recovery import check_kill_9_keeps_acknowledged_orders, check_restart_recovers

from backstop.store.log import open_log
from conftest import Server, free_port

PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
pytestmark = pytest.mark.skipif(
    not PG_BINS or not os.path.exists(f"{PG_BINS[-1]}/initdb"),
    reason="PostgreSQL server binaries missing: apt-get install -y postgresql")


class PostgresServer:
    """``initdb`` + ``pg_ctl start`` in a temp dir; trust auth on 127.0.0.1 only."""

    def __init__(self, bin_dir: str) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
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


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer(PG_BINS[-1])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres, request) -> str:
    """A fresh, empty database for one test."""
    return postgres.create_database(f"t_{request.node.name[:40].lower()}_{time.monotonic_ns() % 10**9}")


def test_postgres_log_appends_in_order_and_reopens(pg_url):
    log = open_log(pg_url)
    assert log.description == "postgresql"
    assert [log.append("command", f"body{i}") for i in range(3)] == [1, 2, 3]
    log.close()
    reopened = open_log(pg_url)
    assert [(r.seq, r.kind, r.body) for r in reopened.records()] == [
        (1, "command", "body0"), (2, "command", "body1"), (3, "command", "body2")]
    assert reopened.append("api_key", "{}") == 4
    reopened.close()


def test_postgres_restart_recovers_state_hash_audit_and_keys(pg_url):
    check_restart_recovers(pg_url)


def test_postgres_kill_9_keeps_every_acknowledged_order(pg_url, tmp_path):
    check_kill_9_keeps_acknowledged_orders(Server(tmp_path, db=pg_url))
