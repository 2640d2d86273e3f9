"""Append-only command log on SQLite or PostgreSQL.

Rows are ``(seq, kind, body)``: ``seq`` counts from 1 without gaps, ``kind`` names what the
body holds (``command``: a command as canonical JSON from :mod:`backstop.model.codec`;
``api_key``: an API key record), ``body`` is text. An append returns only after the row is
durable (SQLite ``synchronous=FULL`` in WAL mode; PostgreSQL commit). :meth:`CommandLog.append_many`
stores a batch in one transaction, so a group of commands costs one fsync.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SELECT = "SELECT seq, kind, body FROM backstop_log ORDER BY seq"
_CREATE = ("CREATE TABLE IF NOT EXISTS backstop_log "
           "(seq BIGINT PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL)")


@dataclass(frozen=True, slots=True)
class Record:
    """One stored row."""

    seq: int
    kind: str
    body: str


class CommandLog:
    """A durable, ordered log over a DB-API connection. Not thread safe: one writer at a time."""

    def __init__(self, conn: Any, placeholder: str, description: str) -> None:
        self._conn = conn
        self._insert = f"INSERT INTO backstop_log (seq, kind, body) VALUES ({placeholder}, " \
                       f"{placeholder}, {placeholder})"
        self.description = description
        self._execute(_CREATE)
        self._commit()
        self.next_seq = self._last_seq() + 1

    def _execute(self, sql: str, params: tuple = ()) -> Any:
        cursor = self._conn.cursor()
        cursor.execute(sql, params)
        return cursor

    def _commit(self) -> None:
        if not getattr(self._conn, "autocommit", False):
            self._conn.commit()

    def _last_seq(self) -> int:
        row = self._execute("SELECT MAX(seq) FROM backstop_log").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def append(self, kind: str, body: str) -> int:
        """Store one row durably; returns its ``seq``."""
        return self.append_many([(kind, body)])

    def append_many(self, rows: list[tuple[str, str]]) -> int:
        """Store rows ``(kind, body)`` durably in one transaction (group commit: one fsync);
        returns the last ``seq``. Nothing is stored if it fails."""
        first = self.next_seq
        params = [(first + i, kind, body) for i, (kind, body) in enumerate(rows)]
        transaction = getattr(self._conn, "transaction", None)
        if transaction is not None:  # psycopg in autocommit: one explicit transaction
            with transaction(), self._conn.cursor() as cursor:
                cursor.executemany(self._insert, params)
        else:
            try:
                self._conn.cursor().executemany(self._insert, params)
                self._commit()
            except Exception:
                self._conn.rollback()
                raise
        self.next_seq = first + len(rows)
        return self.next_seq - 1

    def records(self) -> Iterator[Record]:
        """Every row in ``seq`` order."""
        for seq, kind, body in self._execute(_SELECT).fetchall():
            yield Record(int(seq), str(kind), str(body))

    def close(self) -> None:
        self._conn.close()


def open_log(target: str | Path) -> CommandLog:
    """Open (creating if needed) the log at a SQLite file path or a ``postgresql://`` URL."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return _open_postgres(text)
    return _open_sqlite(Path(text))


def _open_sqlite(path: Path) -> CommandLog:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return CommandLog(conn, "?", f"sqlite:{path}")


def _open_postgres(url: str) -> CommandLog:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    return CommandLog(conn, "%s", "postgresql")
