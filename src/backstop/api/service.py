"""The exchange service: one engine, one durable log, one writer at a time.

Every command goes through :meth:`ExchangeService.submit`: under one asyncio lock it is
stamped with the clock's time, run through the engine, written to the log (durably), and only
then are its events handed to listeners (WebSocket pushes) and returned to the caller, who
acknowledges it. A command whose write fails is never acknowledged, and the service then
refuses further commands (50001) because memory is ahead of the log.

On start :meth:`ExchangeService.start` replays the log through a fresh engine, so state after
a restart (or a ``kill -9``) is exactly the state of every acknowledged command.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from decimal import Decimal

from backstop.api.tracker import Tracker
from backstop.api.wire import OkxError
from backstop.engine.exchange import Exchange
from backstop.model import codec
from backstop.model.commands import Command, Deposit
from backstop.model.events import Event
from backstop.store.log import CommandLog

Clock = Callable[[], int]
"""Epoch milliseconds."""

Listener = Callable[[list[Event]], None]


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


def new_api_key(uid: int) -> ApiKey:
    """Random credentials shaped like OKX's (a UUID-like key, a 32-hex-digit secret)."""
    raw = secrets.token_hex(16)
    key = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    return ApiKey(uid, key, secrets.token_hex(16).upper(), secrets.token_urlsafe(12))


class ExchangeService:
    """Owns the engine, the log, the API keys and the event-built order tracker."""

    def __init__(self, make_exchange: Callable[[], Exchange], log: CommandLog,
                 clock: Clock = wall_clock_ms) -> None:
        self._make_exchange = make_exchange
        self.exchange = make_exchange()
        self.log = log
        self.clock = clock
        self.tracker = Tracker()
        self.keys: dict[str, ApiKey] = {}
        self._lock = asyncio.Lock()
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
        """Rebuild state from the log through a fresh engine; returns the records replayed."""
        self.exchange = self._make_exchange()
        self.tracker = Tracker()
        self.keys = {}
        count = 0
        for record in self.log.records():
            if record.kind == "command":
                command = codec.loads(record.body)
                self.tracker.apply(self.exchange.execute(command))
                self._last_ts = max(self._last_ts, command.ts)
            elif record.kind == "api_key":
                key = ApiKey(**json.loads(record.body))
                self.keys[key.api_key] = key
            count += 1
        return count

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def submit(self, command: Command) -> list[Event]:
        """Stamp, run, log durably, publish; returns the command's events."""
        async with self._lock:
            return await self._submit_locked(command)

    async def submit_all(self, commands: list[Command]) -> list[list[Event]]:
        """Several commands back to back, with no other command between them."""
        async with self._lock:
            return [await self._submit_locked(c) for c in commands]

    async def _submit_locked(self, command: Command) -> list[Event]:
        self._ensure_healthy()
        stamped = replace(command, ts=self.now_ms())
        events = self.exchange.execute(stamped)
        await self._append("command", codec.dumps(stamped))
        self.tracker.apply(events)
        for listener in self._listeners:
            listener(events)
        return events

    async def create_account(self, deposits: dict[str, Decimal]) -> ApiKey:
        """A new account with API keys, then its deposits, atomically with respect to other
        commands."""
        async with self._lock:
            self._ensure_healthy()
            key = new_api_key(self._next_uid())
            await self._append("api_key", json.dumps(asdict(key), sort_keys=True))
            self.keys[key.api_key] = key
            for ccy, amount in sorted(deposits.items()):
                await self._submit_locked(Deposit(0, key.uid, ccy, amount))
            return key

    def _next_uid(self) -> int:
        known = {k.uid for k in self.keys.values()} | set(self.exchange.state.accounts)
        return max(known, default=0) + 1

    def _ensure_healthy(self) -> None:
        if self.failed:
            raise OkxError("50001", "Service temporarily unavailable, please try again later")

    async def _append(self, kind: str, body: str) -> None:
        try:
            await asyncio.to_thread(self.log.append, kind, body)
        except Exception as exc:
            self.failed = True
            raise OkxError("50001", "Service temporarily unavailable, please try again later") from exc
