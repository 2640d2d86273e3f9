"""The exchange service: one engine, one durable log, one writer at a time.

Every command goes through :meth:`ExchangeService.submit`: it is stamped with the clock's
time and run through the engine at once (synchronously, so commands apply in arrival order
with no lock), then queued for the log. The log is written with group commit: one writer
thread (:class:`LogWriter`) stores everything queued since its last write in one transaction
(one fsync), and only after that commit are each command's events, in order, given to the
tracker and the listeners (WebSocket pushes) and returned to the caller, who acknowledges it.
The writer runs beside the event loop (which goes on executing and queueing commands during
an fsync) and wakes it once per batch; a request's handler waits once, for its batch. A
command whose write fails is never acknowledged, and the service then refuses further
commands (50001) because memory is ahead of the log.

On start :meth:`ExchangeService.start` replays the log through a fresh engine, so state after
a restart (or a ``kill -9``) is exactly the state of every acknowledged command.

A command the engine raises on is answered as its own refusal (50026, logged so that replay
repeats exactly what happened) instead of failing the request that carried it, so commands
run before it in the same request stay acknowledged. (The engine itself refuses a
``clOrdId`` already on an open order of the account, 51016, inside the same synchronous
step.)

Start-up verifies the whole log (:meth:`backstop.store.log.CommandLog.verified_records`) and
starts from the latest state snapshot that matches it, replaying only the records after it.
A snapshot is written every ``snapshot_every`` records, when no executed command is waiting
for the log (so the state is exactly the committed log), by a forked child process that
pickles its copy-on-write view of the state, so the event loop does not wait; and at
shutdown. API secrets are
sealed in the log with ``secrets`` (:mod:`backstop.store.secrets`) when it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from cryptography.fernet import Fernet

from backstop.api.tracker import Tracker
from backstop.api.wire import OkxError
from backstop.engine.exchange import Exchange
from backstop.model import codec
from backstop.model.commands import Command, Deposit
from backstop.model.events import Event, Rejected
from backstop.store.log import CommandLog
from backstop.store.secrets import seal, unseal
from backstop.store.snapshot import encode_snapshot, fingerprint, read_snapshot, write_snapshot

log = logging.getLogger("backstop.api.service")

Clock = Callable[[], int]
"""Epoch milliseconds."""

Listener = Callable[[list[Event]], None]
SNAPSHOT_EVERY = 10_000
"""Records between periodic state snapshots."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An account's OKX API credentials (stored in the log as an ``api_key`` record)."""

    uid: int
    api_key: str
    secret_key: str
    passphrase: str

    def as_wire(self) -> dict[str, str]:
        return {"uid": str(self.uid), "apiKey": self.api_key, "secretKey": self.secret_key,
                "passphrase": self.passphrase}


@dataclass(slots=True)
class Pending:
    """A record waiting for the group commit; ``events`` are published once it is durable."""

    kind: str
    body: str
    events: list[Event] | None
    future: asyncio.Future[list[Event]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class LogWriter:
    """The log's writer thread. :meth:`write` hands it a batch of records; it stores them in
    one transaction (:meth:`CommandLog.append_many`, one fsync) and calls ``done(error)`` back
    on the event loop (``error`` ``None`` once the batch is durable). One queue, one thread,
    one wake-up of the loop per batch; started on the first write, stopped by :meth:`stop`."""

    def __init__(self, log: CommandLog) -> None:
        self._log = log
        self._jobs: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def write(self, rows: list[tuple[str, str]], loop: asyncio.AbstractEventLoop,
              done: Callable[[BaseException | None], None]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="backstop-log-writer", daemon=True)
            self._thread.start()
        self._jobs.put((rows, loop, done))

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            rows, loop, done = job
            error: BaseException | None = None
            try:
                self._log.append_many(rows)
            except Exception as exc:
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                loop.call_soon_threadsafe(done, error)

    def stop(self) -> None:
        """Let the thread finish what it was handed and end (a later write starts a new one)."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None


def new_api_key(uid: int) -> ApiKey:
    """Random credentials shaped like OKX's (a UUID-like key, a 32-hex-digit secret)."""
    raw = secrets.token_hex(16)
    key = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    return ApiKey(uid, key, secrets.token_hex(16).upper(), secrets.token_urlsafe(12))


class ExchangeService:
    """Owns the engine, the log, the API keys and the event-built order tracker."""

    def __init__(self, make_exchange: Callable[[], Exchange], log: CommandLog,
                 clock: Clock = wall_clock_ms, secrets_key: Fernet | None = None,
                 snapshot_path: Path | None = None, snapshot_every: int = SNAPSHOT_EVERY) -> None:
        self._make_exchange = make_exchange
        self.secrets_key = secrets_key
        self.snapshot_path = snapshot_path
        self.snapshot_every = snapshot_every
        self.snapshot_seq = 0
        self._snapshot_pid = 0
        """The forked child writing a periodic snapshot (0: none)."""
        self.exchange = make_exchange()
        self.log = log
        self.clock = clock
        self.tracker = Tracker()
        self.keys: dict[str, ApiKey] = {}
        self._queue: list[Pending] = []
        self._writer = LogWriter(log)
        self._scheduled: asyncio.Handle | None = None
        """The call that will hand what is queued to the writer (``None``: not scheduled)."""
        self._in_flight: list[Pending] | None = None
        """The batch the writer thread is storing (``None``: none)."""
        self._drained: asyncio.Future[None] | None = None
        self._listeners: list[Listener] = []
        self._last_ts = 0
        self.failed = False

    @property
    def catalogue(self):
        return self.exchange.catalogue

    def now_ms(self) -> int:
        """The clock, never going backwards."""
        self._last_ts = max(self._last_ts, self.clock())
        return self._last_ts

    def start(self) -> int:
        """Rebuild state: the snapshot if it matches the log, then the commands after it
        through the engine, verifying the whole log on the way (``LogCorrupt`` names the
        first bad ``seq``). Returns the commands replayed."""
        self.exchange = self._make_exchange()
        self.tracker = Tracker()
        self.keys = {}
        self.snapshot_seq = self._restore_snapshot()
        replayed = 0
        for record in self.log.verified_records(commands_after=self.snapshot_seq):
            if record.kind == "api_key":
                key = self._key_from_record(record.body)
                self.keys[key.api_key] = key
            elif record.kind == "command":
                command = codec.loads(record.body)
                self.tracker.apply(self._execute(command))
                self._last_ts = max(self._last_ts, command.ts)
                replayed += 1
        return replayed

    def _fingerprint(self, exchange: Exchange) -> str:
        return fingerprint((exchange.catalogue, exchange.config))

    def _restore_snapshot(self) -> int:
        """Install the snapshot if it was written by this code with this catalogue and policy,
        claims a hash the log has at its ``seq``, and reproduces its state hash; the ``seq`` it
        covers (0: none used)."""
        expected = self._fingerprint(self.exchange)
        snap = read_snapshot(self.snapshot_path, expected) if self.snapshot_path is not None else None
        if snap is None or self.log.hash_at(snap.seq) != snap.log_hash:
            return 0
        exchange, tracker, last_ts = snap.state
        if exchange.state_hash() != snap.state_hash:
            return 0
        self.exchange, self.tracker, self._last_ts = exchange, tracker, last_ts
        return snap.seq

    def snapshot_bytes(self) -> bytes:
        """The state as of the last committed record (call only when nothing is queued)."""
        seq = self.log.next_seq - 1
        return encode_snapshot(seq, self.log.last_hash, self.exchange.state_hash(),
                               self._fingerprint(self.exchange), (self.exchange, self.tracker, self._last_ts))

    def write_snapshot_now(self) -> None:
        """Write a snapshot synchronously (shutdown, after :meth:`drain`)."""
        if self._snapshot_pid:
            self._reap(self._snapshot_pid)
        if self.snapshot_path is not None and self.log.next_seq - 1 > self.snapshot_seq:
            write_snapshot(self.snapshot_path, self.snapshot_bytes())
            self.snapshot_seq = self.log.next_seq - 1

    def _maybe_snapshot(self) -> None:
        """Every ``snapshot_every`` records, with nothing queued: fork; the child pickles and
        writes the state as of the fork and exits; the parent reaps it in a thread."""
        due = self.log.next_seq - 1 - self.snapshot_seq >= self.snapshot_every
        busy = self._queue or self._in_flight is not None or self._snapshot_pid or self.failed
        if self.snapshot_path is None or not due or busy:
            return
        pid = os.fork()
        if pid == 0:  # the child: no logging, no event loop, no database; only the file
            gc.disable()  # it exits once written: collecting would only take a core from the parent
            code = 1
            try:
                write_snapshot(self.snapshot_path, self.snapshot_bytes())
                code = 0
            finally:
                os._exit(code)
        self._snapshot_pid, self.snapshot_seq = pid, self.log.next_seq - 1
        asyncio.get_running_loop().run_in_executor(None, self._reap, pid)

    def _reap(self, pid: int) -> None:
        """Wait for the snapshot child; log if it failed."""
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # already reaped by the other waiter
            return
        finally:
            self._snapshot_pid = 0
        if status != 0:
            log.error("state snapshot child exited with status %s", status)

    def _key_record(self, key: ApiKey) -> str:
        """The log body of an API key: its secrets sealed when a secrets key is set."""
        if self.secrets_key is None:
            return json.dumps(asdict(key), sort_keys=True)
        sealed = seal(self.secrets_key, {"secret_key": key.secret_key, "passphrase": key.passphrase})
        return json.dumps({"uid": key.uid, "api_key": key.api_key, "sealed": sealed}, sort_keys=True)

    def _key_from_record(self, body: str) -> ApiKey:
        """An API key from its record. Without a secrets key (an offline replay of a
        PostgreSQL log with no data dir) sealed secrets stay empty, and authentication
        refuses a key with no secret."""
        fields = json.loads(body)
        sealed = fields.pop("sealed", None)
        if sealed is not None:
            opened = unseal(self.secrets_key, sealed) if self.secrets_key is not None else {}
            fields.update({"secret_key": "", "passphrase": "", **opened})
        return ApiKey(**fields)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def submit(self, command: Command) -> list[Event]:
        """Stamp, run, log durably, publish; returns the command's events."""
        return await self._run(command).future

    async def submit_all(self, commands: list[Command]) -> list[list[Event]]:
        """Several commands back to back, with no other command between them."""
        pending = [self._run(c) for c in commands]
        return [await p.future for p in pending]

    def _run(self, command: Command) -> Pending:
        """Execute now and queue for the log (no await: commands apply in call order)."""
        self._ensure_healthy()
        stamped = replace(command, ts=self.now_ms())
        events = self._execute(stamped)
        return self._enqueue("command", codec.dumps(stamped), events)

    def _execute(self, command: Command) -> list[Event]:
        """The engine's events; an exception becomes a 50026 refusal of this command alone
        (the same at replay, so memory and log agree)."""
        try:
            return self.exchange.execute(command)
        except Exception:
            log.exception("engine raised on %s", type(command).__name__)
            return [Rejected(command.ts, getattr(command, "uid", 0), type(command).__name__, "50026",
                             "System error, please try again later", getattr(command, "cl_ord_id", ""))]

    async def create_account(self, deposits: dict[str, Decimal]) -> ApiKey:
        """A new account with API keys, then its deposits, atomically with respect to other
        commands. The caller validates ``deposits`` whole first (known currency, amount in
        range): once the key is queued, the account exists."""
        self._ensure_healthy()
        key = new_api_key(self._next_uid())
        pending = [self._enqueue("api_key", self._key_record(key), None)]
        self.keys[key.api_key] = key
        pending += [self._run(Deposit(0, key.uid, ccy, amount)) for ccy, amount in sorted(deposits.items())]
        for item in pending:
            await item.future
        return key

    def _next_uid(self) -> int:
        known = {k.uid for k in self.keys.values()} | set(self.exchange.state.accounts)
        return max(known, default=0) + 1

    async def drain(self) -> None:
        """Wait until everything queued is committed (and acknowledged), then stop the writer
        thread: graceful shutdown."""
        while self._queue or self._in_flight is not None:
            self._drained = self._drained or asyncio.get_running_loop().create_future()
            await asyncio.shield(self._drained)
        self._writer.stop()

    def _ensure_healthy(self) -> None:
        if self.failed:
            raise OkxError("50001", "Service temporarily unavailable, please try again later")

    def _enqueue(self, kind: str, body: str, events: list[Event] | None) -> Pending:
        item = Pending(kind, body, events)
        self._queue.append(item)
        if self._in_flight is None and self._scheduled is None:
            self._scheduled = asyncio.get_running_loop().call_soon(self._write_queued)
        return item

    def _write_queued(self) -> None:
        """Group commit: hand everything queued, as one batch, to the writer thread (which
        stores it in one transaction and calls :meth:`_written` back on the event loop)."""
        self._scheduled = None
        batch, self._queue = self._queue, []
        if self.failed:
            self._refuse(batch)
            self._settled()
            return
        self._in_flight = batch
        self._writer.write([(p.kind, p.body) for p in batch], asyncio.get_running_loop(), self._written)

    def _written(self, error: BaseException | None) -> None:
        """The batch in flight is durable (``error`` is ``None``): publish and ack it in
        order; else refuse it and everything queued since, and stop the service. Then start
        the next batch, if anything is queued."""
        batch, self._in_flight = self._in_flight or [], None
        if error is None:
            self._publish(batch)
        else:
            log.error("log write failed; refusing further commands", exc_info=error)
            self.failed = True
            self._refuse(batch)
        if self._queue:
            self._write_queued()
            return
        self._settled()

    def _settled(self) -> None:
        """Nothing is queued or in flight: maybe snapshot, and wake :meth:`drain`."""
        self._maybe_snapshot()
        if self._drained is not None:
            self._drained.set_result(None)
            self._drained = None

    def _refuse(self, batch: list[Pending]) -> None:
        """Answer every command of ``batch`` and everything queued 50001 (never logged)."""
        for item in batch + self._queue:
            if not item.future.done():
                item.future.set_exception(OkxError("50001", "Service temporarily unavailable, "
                                                            "please try again later"))
        self._queue = []

    def _publish(self, batch: list[Pending]) -> None:
        """Durable now: follow each command's events (tracker, listeners), then ack it."""
        for item in batch:
            events = item.events or []
            if item.events is not None:
                self.tracker.apply(events)
                for listener in self._listeners:
                    try:
                        listener(events)
                    except Exception:  # a push bug must not withhold the ack of a logged command
                        log.exception("event listener failed")
            if not item.future.done():
                item.future.set_result(events)
