"""Backups and snapshots (issue 10, finding 7 and deliverable 6): ``backstop backup`` copies a
live server's log including what is only in its WAL and restores to the same state hash; a
restart starts from the snapshot when it matches the log, and ignores one that does not."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

from clikit import backstop, one_line_error, populate

from backstop.model.commands import Deposit
from backstop.serve import build_service
from serverkit import SignedClient


def rows(db: Path) -> int:
    """Rows in a copied file (0 when even the table is still only in the WAL)."""
    with sqlite3.connect(db) as conn:
        if not conn.execute("SELECT name FROM sqlite_master WHERE name = 'backstop_log'").fetchone():
            return 0
        return conn.execute("SELECT COUNT(*) FROM backstop_log").fetchone()[0]


def test_online_backup_includes_the_wal_and_restores_the_same_state(tmp_path):
    server = populate(tmp_path / "live")
    try:
        state = SignedClient(server.url).admin("GET", "state")
        naive = tmp_path / "naive.sqlite"
        shutil.copyfile(server.data_dir / "backstop.sqlite", naive)  # the main file alone
        assert rows(naive) < int(state["seq"])
        result = backstop("backup", str(tmp_path / "dest"), "--data-dir", str(server.data_dir))
        assert result.returncode == 0, result.stderr
        live = backstop("log", "verify", "--data-dir", str(server.data_dir))  # while it runs
        assert live.returncode == 0 and f"{state['seq']} records" in live.stdout, live.stderr
    finally:
        server.kill()
    dest = tmp_path / "dest"
    assert not Path(f"{dest}/backstop.sqlite-wal").exists()  # self-contained
    assert rows(dest / "backstop.sqlite") == int(state["seq"])
    restored = build_service(dest / "backstop.sqlite", data_dir=dest)
    assert restored.exchange.state_hash() == state["stateHash"]
    assert restored.log.next_seq - 1 == int(state["seq"])
    assert len(restored.keys) == int(state["accounts"])
    restored.log.close()
    assert "already exists" in one_line_error(
        backstop("backup", str(dest), "--data-dir", str(server.data_dir)))


def test_restart_uses_the_shutdown_snapshot_and_ignores_a_mismatched_one(tmp_path):
    server = populate(tmp_path / "data")
    state = SignedClient(server.url).admin("GET", "state")
    assert server.terminate() == 0
    snapshot = server.data_dir / "snapshot.pickle"
    assert snapshot.stat().st_mode & 0o777 == 0o600
    fast = build_service(server.data_dir / "backstop.sqlite", data_dir=server.data_dir)
    assert fast.snapshot_seq == int(state["seq"])
    assert fast.exchange.state_hash() == state["stateHash"]
    fast.log.close()

    header, payload = snapshot.read_bytes().split(b"\n", 1)
    claims = json.loads(header)
    forgeries = ({"hash": "0" * 64}, {"stateHash": "f" * 64}, {"seq": claims["seq"] - 1},
                 {"fingerprint": "0" * 64})  # the last: written by other code or another catalogue
    for forged in forgeries:
        snapshot.write_bytes(json.dumps({**claims, **forged}).encode() + b"\n" + payload)
        slow = build_service(server.data_dir / "backstop.sqlite", data_dir=server.data_dir)
        assert slow.snapshot_seq == 0  # not used: full replay
        assert slow.exchange.state_hash() == state["stateHash"]
        slow.log.close()
    snapshot.write_bytes(header + b"\n" + payload[:-10])  # damaged pickle
    damaged = build_service(server.data_dir / "backstop.sqlite", data_dir=server.data_dir)
    assert damaged.snapshot_seq == 0 and damaged.exchange.state_hash() == state["stateHash"]
    damaged.log.close()


def test_periodic_snapshot_then_tail_replay(tmp_path):
    service = build_service(tmp_path / "backstop.sqlite", data_dir=tmp_path, snapshot_every=10)

    async def run() -> None:
        key = await service.create_account({"USDT": Decimal(1000)})
        for _ in range(25):
            await service.submit(Deposit(0, key.uid, "USDT", Decimal(1)))
        while service._snapshot_pid:
            await asyncio.sleep(0.01)

    asyncio.run(run())
    expected = service.exchange.state_hash()
    service.log.close()
    again = build_service(tmp_path / "backstop.sqlite", data_dir=tmp_path)
    assert 10 <= again.snapshot_seq < again.log.next_seq - 1
    assert again.exchange.state_hash() == expected
    again.log.close()


def test_backup_of_a_missing_log_is_one_line(tmp_path):
    assert "no SQLite log" in one_line_error(backstop("backup", str(tmp_path / "d"), "--data-dir",
                                                      str(tmp_path / "nothing")))
