"""The same recovery tests on PostgreSQL: a throwaway server started from Debian's binaries
(``apt-get install -y postgresql``) on a free port, with its data and socket in a temp dir.

When running as root the server runs as the ``postgres`` user (``runuser``), since PostgreSQL
refuses to run as root. Skipped, with the reason, when the binaries are absent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from test_api_recovery import check_kill_9_keeps_acknowledged_orders, check_restart_recovers

from backstop.store.log import open_log
from conftest import Server
from pg_server import PG_MISSING, PostgresServer, pg_available

pytestmark = pytest.mark.skipif(not pg_available(), reason=PG_MISSING)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
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
