"""``backstop log verify`` and ``backstop backup``: check a log's chain, and copy a live one.

:func:`backup` uses SQLite's online backup API through a second connection, so it copies a
consistent state of the database *including what is still in the WAL* while the server keeps
writing (WAL readers never block the writer). The destination is a directory holding
``backstop.sqlite`` (a self-contained file, no WAL), its head file, and the secrets key, all
0600 in a directory created 0700; ``backstop serve --data-dir DEST`` restores from it. The copy is
verified before :func:`backup` returns.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from backstop.store.log import FILE_MODE, HeadFile, open_log, private_dir

DB_NAME = "backstop.sqlite"
COMPANIONS = ("secret.key",)
"""Files copied beside the database (the state snapshot is not: it is rebuilt)."""


@dataclass(frozen=True, slots=True)
class LogSummary:
    """A verified log: its record count and last hash."""

    records: int
    head_hash: str


def verify_log(target: str | Path, head_path: Path | None = None) -> LogSummary:
    """Check the log at ``target`` (SQLite file or ``postgresql://`` URL); ``LogCorrupt``
    names the first bad ``seq``."""
    if not str(target).startswith(("postgresql://", "postgres://")) and not Path(target).is_file():
        raise ValueError(f"no log at {target}")
    log = open_log(target, head_path)
    try:
        seq, digest = log.verify()
    finally:
        log.close()
    return LogSummary(seq, digest)


def backup(source_dir: Path, dest: Path) -> LogSummary:
    """Copy the SQLite log in ``source_dir`` (live or not) and its secrets key into ``dest``."""
    source = source_dir / DB_NAME
    if not source.is_file():
        raise ValueError(f"no SQLite log at {source}")
    if (dest / DB_NAME).exists():
        raise ValueError(f"{dest / DB_NAME} already exists; choose an empty destination")
    private_dir(dest)
    target = dest / DB_NAME
    os.close(os.open(target, os.O_RDWR | os.O_CREAT, FILE_MODE))
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    for name in COMPANIONS:
        if (source_dir / name).is_file():
            shutil.copyfile(source_dir / name, dest / name)
            os.chmod(dest / name, FILE_MODE)
    summary = verify_log(target)
    head = HeadFile(Path(f"{target}-head"))
    try:
        head.write(summary.records, summary.head_hash)
    finally:
        head.close()
    return summary
