"""The exchange: the one entry point of the library.

>>> from decimal import Decimal
>>> from backstop import Exchange
>>> from backstop.model.commands import Deposit
>>> ex = Exchange()
>>> ex.execute(Deposit(ts=0, uid=1, ccy="USDT", amount=Decimal("100")))
[Deposited(ts=0, uid=1, ccy='USDT', amount=10000000000)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from backstop.engine import accounts, orders, prices
from backstop.model import commands as c
from backstop.model.catalogue import Catalogue, default_catalogue
from backstop.model.events import Event
from backstop.state.exchange_state import ExchangeState
from backstop.state.invariants import ensure_invariants

Handler = Callable[[ExchangeState, object], list[Event]]

_HANDLERS: dict[type, Handler] = {
    c.Deposit: accounts.deposit,  # type: ignore[dict-item]
    c.Withdraw: accounts.withdraw,  # type: ignore[dict-item]
    c.SetLeverage: accounts.set_leverage,  # type: ignore[dict-item]
    c.AdjustMargin: accounts.adjust_margin,  # type: ignore[dict-item]
    c.PlaceOrder: orders.place_order,  # type: ignore[dict-item]
    c.CancelOrder: orders.cancel_order,  # type: ignore[dict-item]
    c.SetIndexPrice: prices.set_index_price,  # type: ignore[dict-item]
}


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One accepted command and the events it caused, in order."""

    seq: int
    command: c.Command
    events: tuple[Event, ...]


class Exchange:
    """Takes commands, returns the events they caused, and keeps an append-only log.

    ``check_invariants=True`` runs every invariant of :mod:`backstop.state.invariants` after
    each command and raises ``AssertionError`` (message starting ``Invariant:``) on a breach.
    """

    def __init__(self, catalogue: Catalogue | None = None, *, check_invariants: bool = False,
                 keep_log: bool = True) -> None:
        self.catalogue = catalogue or default_catalogue()
        self.state = ExchangeState(self.catalogue)
        self.check_invariants = check_invariants
        self.keep_log = keep_log
        self.log: list[LogEntry] = []

    def execute(self, command: c.Command) -> list[Event]:
        """Run one command; return its events (a refusal is a ``Rejected`` event)."""
        handler = _HANDLERS.get(type(command))
        if handler is None:
            raise TypeError(f"not a command: {command!r}")
        events = handler(self.state, command)
        if self.keep_log:
            self.log.append(LogEntry(len(self.log), command, tuple(events)))
        if self.check_invariants:
            ensure_invariants(self.state)
        return events

    def execute_all(self, commands: Iterable[c.Command]) -> list[Event]:
        """Run commands in order; return all their events."""
        out: list[Event] = []
        for command in commands:
            out.extend(self.execute(command))
        return out

    def state_hash(self) -> str:
        return self.state.state_hash()

    @classmethod
    def replay(cls, log: Iterable[LogEntry], catalogue: Catalogue | None = None) -> Exchange:
        """Rebuild an exchange from a log; raises ``AssertionError`` if any command now gives
        different events than were logged."""
        exchange = cls(catalogue)
        for entry in log:
            events = exchange.execute(entry.command)
            if tuple(events) != entry.events:
                raise AssertionError(f"Invariant: replay diverged at seq {entry.seq}")
        return exchange
