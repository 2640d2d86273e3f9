"""Append-only, hash-chained command log on SQLite or PostgreSQL.

Rows are ``(seq, kind, body, hash)``: ``seq`` counts from 1 without gaps, ``kind`` names what
the body holds (``command``: a command as canonical JSON from :mod:`backstop.model.codec`;
``api_key``: an API key record), ``body`` is text, and ``hash`` is :func:`chain_hash` of the
previous row's hash (:data:`GENESIS` for the first), ``seq``, ``kind`` and ``body``. An
append returns only after the rows are durable (SQLite ``synchronous=FULL`` in WAL mode;
PostgreSQL commit); :meth:`CommandLog.append_many` stores a batch in one transaction, so a
group of commands costs one fsync.

After each commit the log's last ``(seq, hash)`` is written in place to a small head file
beside it (:class:`HeadFile`). :meth:`CommandLog.verified_records` reads the log
back and raises :class:`LogCorrupt`, naming the first bad ``seq``, on a gap, an edited or
reordered row, or a log that ends before the head (a truncated file, a damaged WAL frame, a
deleted WAL, an emptied database): none of those can pass as a shorter valid log.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
_COLUMNS = "seq, kind, body, hash"
_CREATE = ("CREATE TABLE IF NOT EXISTS backstop_log "
           "(seq BIGINT PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL, hash TEXT NOT NULL)")
FILE_MODE = 0o600
DIR_MODE = 0o700


class LogCorrupt(ValueError):
    """The log fails verification; ``seq`` is the first record that is missing or wrong."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"log damaged at seq {seq}: {reason}")
        self.seq = seq


def chain_hash(prev: str, seq: int, kind: str, body: str) -> str:
    """SHA-256 (hex) of the previous hash, this row's ``seq`` and ``kind`` (newline-separated)
    and its body (UTF-8)."""
    digest = hashlib.sha256(f"{prev}\n{seq}\n{kind}\n".encode())
    digest.update(body.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Record:
    """One stored row."""

    seq: int
    kind: str
    body: str
    hash: str = ""


class HeadFile:
    """The last committed ``(seq, hash)``: one fixed-size line (within one disk sector)
    rewritten in place after every commit (mode 0600). It is written only once the commit is
    durable and is not itself fsynced (that would double the cost of a commit): after a crash
    or power loss it may lag the log (checking less), never lead it."""

    SIZE = 100

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        os.chmod(path, FILE_MODE)

    def read(self) -> tuple[int, str] | None:
        """The recorded head, or ``None`` for a new (empty) head file."""
        raw = os.pread(self._fd, self.SIZE, 0).rstrip(b" \n\0")
        if not raw:
            return None
        try:
            head = json.loads(raw)
            return int(head["seq"]), str(head["hash"])
        except (ValueError, KeyError, TypeError) as exc:
            raise LogCorrupt(0, f"head file {self.path} is unreadable") from exc

    def write(self, seq: int, digest: str) -> None:
        line = json.dumps({"seq": seq, "hash": digest}).encode().ljust(self.SIZE - 1) + b"\n"
        os.pwrite(self._fd, line, 0)

    def close(self) -> None:
        os.close(self._fd)


class CommandLog:
    """A durable, ordered, hash-chained log over a DB-API connection. Not thread safe: one
    writer at a time."""

    def __init__(self, conn: Any, placeholder: str, description: str, head: HeadFile | None = None) -> None:
        self._conn = conn
        self._ph = placeholder
        self._insert = f"INSERT INTO backstop_log ({_COLUMNS}) VALUES ({', '.join([placeholder] * 4)})"
        self.description = description
        self.head = head
        self._execute(_CREATE)
        self._commit()
        self._add_missing_chain()
        self.next_seq, self.last_hash = self._tail()

    def _execute(self, sql: str, params: tuple = ()) -> Any:
        cursor = self._conn.cursor()
        cursor.execute(sql, params)
        return cursor

    def _commit(self) -> None:
        if not getattr(self._conn, "autocommit", False):
            self._conn.commit()

    def _tail(self) -> tuple[int, str]:
        row = self._execute("SELECT seq, hash FROM backstop_log ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)

    def _add_missing_chain(self) -> None:
        """Logs written before the chain existed get the column and their hashes once."""
        columns = [d[0] for d in self._execute("SELECT * FROM backstop_log LIMIT 0").description]
        if "hash" in columns:
            return
        self._execute("ALTER TABLE backstop_log ADD COLUMN hash TEXT NOT NULL DEFAULT ''")
        prev, updates = GENESIS, []
        rows = self._execute("SELECT seq, kind, body FROM backstop_log ORDER BY seq").fetchall()
        for seq, kind, body in rows:
            prev = chain_hash(prev, int(seq), str(kind), str(body))
            updates.append((prev, seq))
        self._conn.cursor().executemany(f"UPDATE backstop_log SET hash = {self._ph} WHERE seq = {self._ph}",
                                        updates)
        self._commit()

    def append(self, kind: str, body: str) -> int:
        """Store one row durably; returns its ``seq``."""
        return self.append_many([(kind, body)])

    def append_many(self, rows: list[tuple[str, str]]) -> int:
        """Store rows ``(kind, body)`` durably in one transaction (group commit: one fsync),
        chained to the last row; returns the last ``seq``. Nothing is stored if it fails."""
        first, prev, params = self.next_seq, self.last_hash, []
        for i, (kind, body) in enumerate(rows):
            prev = chain_hash(prev, first + i, kind, body)
            params.append((first + i, kind, body, prev))
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
        self.next_seq, self.last_hash = first + len(rows), prev
        if self.head is not None:
            self.head.write(self.next_seq - 1, prev)
        return self.next_seq - 1

    def records(self) -> Iterator[Record]:
        """Every row in ``seq`` order, as stored (unverified)."""
        cursor = self._execute(f"SELECT {_COLUMNS} FROM backstop_log ORDER BY seq")
        while rows := cursor.fetchmany(4096):
            for seq, kind, body, digest in rows:
                yield Record(int(seq), str(kind), str(body), str(digest))

    def hash_at(self, seq: int) -> str | None:
        """The stored hash of row ``seq`` (``None`` when there is no such row)."""
        row = self._execute(f"SELECT hash FROM backstop_log WHERE seq = {self._ph}", (seq,)).fetchone()
        return str(row[0]) if row else None

    def verified_records(self, commands_after: int = 0) -> Iterator[Record]:
        """Every row in order, each checked as it is read: ``seq`` continuity and the hash
        chain; at the end, that the log reaches the head file. Raises :class:`LogCorrupt`.
        Every row is checked, but ``command`` rows up to ``commands_after`` (covered by a
        snapshot) are not yielded. The head is read first: it is written after each commit,
        so a log read afterwards reaches it even while a server is appending."""
        head = self.head.read() if self.head is not None else None
        expected, prev = 1, GENESIS
        cursor = self._execute(f"SELECT {_COLUMNS} FROM backstop_log ORDER BY seq")
        while rows := cursor.fetchmany(4096):
            for seq, kind, body, digest in rows:
                if seq != expected:
                    raise LogCorrupt(expected, f"missing (next stored row is seq {seq})")
                prev = chain_hash(prev, seq, kind, body)
                if digest != prev:
                    raise LogCorrupt(seq, "hash does not match its contents and predecessor")
                expected += 1
                if seq > commands_after or kind != "command":
                    yield Record(int(seq), str(kind), str(body), str(digest))
        self._check_head(head, expected - 1, prev)

    def _check_head(self, head: tuple[int, str] | None, last_seq: int, last_hash: str) -> None:
        if head is None:
            return
        head_seq, head_hash = head
        if head_seq > last_seq:
            raise LogCorrupt(last_seq + 1, f"missing: the log ends at seq {last_seq} but seq {head_seq} "
                                           "was committed (truncated file or lost WAL)")
        if (last_hash if head_seq == last_seq else self.hash_at(head_seq)) != head_hash:
            raise LogCorrupt(head_seq, "differs from the committed head")

    def verify(self) -> tuple[int, str]:
        """Check the whole log; its last ``(seq, hash)``."""
        last = (0, GENESIS)
        for record in self.verified_records():
            last = (record.seq, record.hash)
        return last

    def close(self) -> None:
        self._conn.close()
        if self.head is not None:
            self.head.close()


def open_log(target: str | Path, head_path: Path | None = None) -> CommandLog:
    """Open (creating if needed) the log at a SQLite file path or a ``postgresql://`` URL.
    A SQLite log keeps its head file beside it (``<file>-head``); a PostgreSQL log uses
    ``head_path`` when given (the server's data dir)."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return _open_postgres(text, head_path)
    return _open_sqlite(Path(text), head_path)


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with mode 0700. An existing directory is left as
    it is: it may be shared (``/tmp``) or deliberately set by its owner."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask


def _open_sqlite(path: Path, head_path: Path | None) -> CommandLog:
    if path.is_dir():
        raise ValueError(f"--db {path} is a directory, not a database file")
    private_dir(path.parent)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE))  # SQLite gives -wal/-shm this mode
    try:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        log = CommandLog(conn, "?", f"sqlite:{path}", HeadFile(head_path or Path(f"{path}-head")))
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"cannot open {path} as a backstop log: {exc}") from exc
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            os.chmod(f"{path}{suffix}", FILE_MODE)
    return log


def _open_postgres(url: str, head_path: Path | None) -> CommandLog:
    try:
        import psycopg
    except ImportError as exc:
        raise ValueError("a postgresql:// log needs psycopg: pip install 'backstop[postgres]'") from exc
    try:
        conn = psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        raise ValueError(f"cannot connect to PostgreSQL: {str(exc).strip().splitlines()[0]}") from exc
    return CommandLog(conn, "%s", "postgresql", HeadFile(head_path) if head_path is not None else None)
