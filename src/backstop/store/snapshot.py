"""State snapshots, so that a restart replays only the log's tail.

A snapshot file holds one JSON header line and a pickle of the service's state (the engine
object, the order tracker and the clock's last stamp) as it was right after the log committed
``seq``. The header records that ``seq``, the log's chained hash at it, the engine's
``state_hash`` and a SHA-256 of the pickle. :func:`read_snapshot` returns it only if the pickle
matches its digest; the caller uses it only if the log's hash at ``seq`` is the one claimed
and the unpickled engine reproduces the claimed state hash. Anything else is ignored and the
whole log is replayed, so a bad snapshot costs time, never correctness. The same holds for a
snapshot written by other code (:func:`fingerprint`): an upgrade replays the log once.

The file is written to a temporary name, fsynced and renamed (mode 0600). It lives in the
server's data dir, which only its owner can read: unpickling runs code chosen by whoever can
write that file, and so can anyone who can write the log.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backstop.store.log import FILE_MODE


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A verified-by-digest snapshot: the log position it claims and the pickled state."""

    seq: int
    log_hash: str
    state_hash: str
    fingerprint: str
    state: Any


def encode_snapshot(seq: int, log_hash: str, state_hash: str, fingerprint: str, state: Any) -> bytes:
    """The file's bytes (the pickling is done by the caller's thread: it reads live state)."""
    payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    header = {"seq": seq, "hash": log_hash, "stateHash": state_hash, "fingerprint": fingerprint,
              "sha256": hashlib.sha256(payload).hexdigest()}
    return json.dumps(header).encode() + b"\n" + payload


def write_snapshot(path: Path, data: bytes) -> None:
    """Write atomically: temporary file, fsync, rename."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_snapshot(path: Path, expected_fingerprint: str) -> Snapshot | None:
    """The snapshot at ``path`` if it exists, has ``expected_fingerprint`` (checked before
    anything is unpickled) and its pickle matches its digest; else ``None``."""
    try:
        raw = path.read_bytes()
        header_line, payload = raw.split(b"\n", 1)
        header = json.loads(header_line)
        if header["fingerprint"] != expected_fingerprint:
            return None
        if hashlib.sha256(payload).hexdigest() != header["sha256"]:
            return None
        return Snapshot(int(header["seq"]), str(header["hash"]), str(header["stateHash"]),
                        str(header["fingerprint"]), _loads_without_gc(payload))
    except (OSError, ValueError, KeyError, TypeError, pickle.UnpicklingError, EOFError, AttributeError):
        return None


def _loads_without_gc(payload: bytes) -> Any:
    """Unpickle with the cyclic garbage collector paused: unpickling allocates millions of
    objects, each allocation counting toward a full collection that would find nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return pickle.loads(payload)
    finally:
        if enabled:
            gc.enable()


def fingerprint(obj: Any) -> str:
    """SHA-256 of this code (:func:`code_digest`) and ``repr(obj)``: identifies the code and
    the catalogue and policies (frozen dataclasses, whose repr is deterministic) an engine was
    built with. A snapshot from other code is not used, so a restart always equals a full
    replay of the log by the running code."""
    return hashlib.sha256(f"{code_digest()}\n{obj!r}".encode()).hexdigest()


@functools.cache
def code_digest() -> str:
    """SHA-256 over the path and bytes of every ``.py`` file of the ``backstop`` package."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
