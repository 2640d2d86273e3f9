"""A log you can trust (issue 10, finding 7): every way of damaging a ``kill -9``'d server's
log found by the hostile pass (edited or deleted row, truncated tail, damaged WAL frame,
deleted WAL, emptied main file) is refused at start-up naming the first bad ``seq``; the same
for PostgreSQL. Real SQLite files, real server processes."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clikit import backstop, one_line_error, populate

from backstop.serve import build_service
from backstop.store.log import LogCorrupt, open_log
from pg_server import PG_MISSING, PostgresServer, pg_available


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> tuple[Path, int]:
    """A data dir whose server was killed with ``kill -9``, and its record count."""
    data_dir = tmp_path_factory.mktemp("killed")
    server = populate(data_dir)
    server.kill()
    assert Path(f"{data_dir}/backstop.sqlite-wal").stat().st_size > 0
    probe = tmp_path_factory.mktemp("probe") / "copy"
    shutil.copytree(data_dir, probe)  # opening a log checkpoints its WAL: count on a copy
    service = build_service(probe / "backstop.sqlite", data_dir=probe)
    records = service.log.next_seq - 1
    service.log.close()
    return data_dir, records


def damaged_copy(killed: tuple[Path, int], tmp_path: Path, damage: Callable[[Path], None]) -> Path:
    source, _ = killed
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    damage(copy / "backstop.sqlite")
    return copy


def edit(sql: str) -> Callable[[Path], None]:
    def run(db: Path) -> None:
        with sqlite3.connect(db) as conn:
            conn.execute(sql)
    return run


def remove_wal(db: Path) -> None:
    Path(f"{db}-wal").unlink()
    Path(f"{db}-shm").unlink(missing_ok=True)


def empty_main_file(db: Path) -> None:
    db.write_bytes(b"")


def damage_wal_frame(db: Path) -> None:
    wal = Path(f"{db}-wal")
    raw = bytearray(wal.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 64] = bytes(64)
    wal.write_bytes(bytes(raw))


CASES = {
    "edited row": (edit("UPDATE backstop_log SET body = body || ' ' WHERE seq = 8"), lambda n: 8),
    "deleted row": (edit("DELETE FROM backstop_log WHERE seq = 5"), lambda n: 5),
    "truncated tail": (edit("DELETE FROM backstop_log WHERE seq > 10"), lambda n: 11),
    "edited kind": (edit("UPDATE backstop_log SET kind = 'command ' WHERE seq = 3"), lambda n: 3),
    "deleted WAL": (remove_wal, None),
    "emptied main file": (empty_main_file, None),
    "damaged WAL frame": (damage_wal_frame, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_log_is_refused_naming_the_first_bad_seq(killed, tmp_path, case):
    damage, first_bad = CASES[case]
    copy = damaged_copy(killed, tmp_path, damage)
    with pytest.raises(ValueError, match=r"seq \d+") as refused:
        build_service(copy / "backstop.sqlite", data_dir=copy)
    if first_bad is not None:
        assert isinstance(refused.value, LogCorrupt) and refused.value.seq == first_bad(killed[1])
    else:
        assert isinstance(refused.value, LogCorrupt) and 1 <= refused.value.seq <= killed[1]


def test_the_undamaged_copy_starts(killed, tmp_path):
    copy = damaged_copy(killed, tmp_path, lambda db: None)
    service = build_service(copy / "backstop.sqlite", data_dir=copy)
    assert service.log.next_seq - 1 == killed[1]
    service.log.close()


def test_serve_and_log_verify_refuse_in_one_line_naming_the_seq(killed, tmp_path):
    copy = damaged_copy(killed, tmp_path, edit("DELETE FROM backstop_log WHERE seq = 6"))
    line = one_line_error(backstop("serve", "--data-dir", str(copy), "--port", "0", "--market", "manual"))
    assert "log damaged at seq 6" in line
    assert "log damaged at seq 6" in one_line_error(backstop("log", "verify", "--data-dir", str(copy)))
    intact = damaged_copy(killed, tmp_path / "intact", lambda db: None)
    good = backstop("log", "verify", "--data-dir", str(intact))
    assert good.returncode == 0 and f"{killed[1]} records" in good.stdout


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if not pg_available():
        pytest.skip(PG_MISSING)
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


def test_postgres_log_carries_the_same_chain(postgres, tmp_path):
    import psycopg

    url = postgres.create_database(f"chain_{time.monotonic_ns() % 10**9}")
    head = tmp_path / "log-head"
    log = open_log(url, head)
    for i in range(6):
        log.append("command", f"body{i}")
    log.close()
    sqlite_twin = open_log(tmp_path / "twin.sqlite")
    for i in range(6):
        sqlite_twin.append("command", f"body{i}")
    assert open_log(url, head).verify() == sqlite_twin.verify()  # same chain on both stores
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE backstop_log SET body = 'forged' WHERE seq = 4")
    with pytest.raises(LogCorrupt) as edited:
        open_log(url, head).verify()
    assert edited.value.seq == 4
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM backstop_log WHERE seq >= 4")
    with pytest.raises(LogCorrupt) as truncated:
        open_log(url, head).verify()
    assert truncated.value.seq == 4
