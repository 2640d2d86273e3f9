"""The command log on SQLite: durable settings, order, reopening."""

from __future__ import annotations

from backstop.store.log import open_log


def test_sqlite_log_appends_in_order_and_reopens(tmp_path):
    path = tmp_path / "data" / "log.sqlite"
    log = open_log(path)
    assert log._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert log._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert [log.append("command", f"body{i}") for i in range(3)] == [1, 2, 3]
    log.close()
    reopened = open_log(path)
    assert [(r.seq, r.kind, r.body) for r in reopened.records()] == [
        (1, "command", "body0"), (2, "command", "body1"), (3, "command", "body2")]
    assert reopened.append("api_key", "{}") == 4
    reopened.close()
