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
from typing import NamedTuple

from backstop.engine import accounts, commands_extra, funding, orders, prices
from backstop.engine.config import EngineConfig
from backstop.engine.deficits import apply_cover_deficits
from backstop.engine.risk_checks import run_risk_checks
from backstop.engine.unit_finder import UnitFinder
from backstop.engine.validation import check_command_surface
from backstop.model import commands as c
from backstop.model.catalogue import Catalogue, default_catalogue
from backstop.model.events import Event, MarkPriceUpdated, Rejected
from backstop.numeric import PPM
from backstop.state.exchange_state import ExchangeState
from backstop.state.invariants import ensure_invariants

Handler = Callable[[ExchangeState, EngineConfig, object], list[Event]]


def _plain(handler: Callable[[ExchangeState, object], list[Event]]) -> Handler:
    return lambda state, _config, command: handler(state, command)


_HANDLERS: dict[type, Handler] = {
    c.Deposit: _plain(accounts.deposit),  # type: ignore[arg-type]
    c.Withdraw: _plain(accounts.withdraw),  # type: ignore[arg-type]
    c.SetLeverage: _plain(accounts.set_leverage),  # type: ignore[arg-type]
    c.AdjustMargin: _plain(accounts.adjust_margin),  # type: ignore[arg-type]
    c.PlaceOrder: orders.place_order,  # type: ignore[dict-item]
    c.CancelOrder: _plain(orders.cancel_order),  # type: ignore[arg-type]
    c.SetIndexPrice: prices.set_index_price,  # type: ignore[dict-item]
    c.SettleFunding: funding.settle_funding,  # type: ignore[dict-item]
    c.InjectInsuranceFund: commands_extra.inject_insurance_fund,  # type: ignore[dict-item]
    c.CheckRisk: lambda state, config, command: [],
}
_MOVES_MARK = (c.SetIndexPrice, c.CheckRisk, c.SettleFunding)


def _refused(command: object, code: str, msg: str) -> Rejected:
    """A command refused at the surface; fields are echoed only when they are well typed."""
    ts = getattr(command, "ts", 0)
    uid = getattr(command, "uid", 0)
    cl_ord_id = getattr(command, "cl_ord_id", "")
    return Rejected(ts if type(ts) is int else 0, uid if type(uid) is int else 0,
                    type(command).__name__, code, msg, cl_ord_id if isinstance(cl_ord_id, str) else "")


class LogEntry(NamedTuple):
    """One accepted command and the events it caused, in order."""

    seq: int
    command: c.Command
    events: tuple[Event, ...]


class Exchange:
    """Takes commands, returns the events they caused, and keeps an append-only log.

    ``check_invariants=True`` runs every invariant of :mod:`backstop.state.invariants` after
    each command and raises ``AssertionError`` (message starting ``Invariant:``) on a breach.
    """

    def __init__(self, catalogue: Catalogue | None = None, config: EngineConfig | None = None, *,
                 check_invariants: bool = False, keep_log: bool = True) -> None:
        self.catalogue = catalogue or default_catalogue()
        self.config = config or EngineConfig()
        fee_share_ppm = int(self.config.insurance_fund.trading_fee_share * PPM)
        bands = {i.inst_id: self.config.price_limit.band_ppm(i.inst_id) for i in self.catalogue}
        self.state = ExchangeState(self.catalogue, self.config.insurance_fund.layout,
                                   self.config.adl.decline_window_ms, self.config.adl.seed,
                                   fee_share_ppm, bands)
        self.check_invariants = check_invariants
        self.keep_log = keep_log
        self.log: list[LogEntry] = []
        self.genesis: tuple[Event, ...] = tuple(commands_extra.apply_genesis(self.state, self.config))
        self.units = UnitFinder(self.catalogue, self.config.risk.screen,
                                self.config.risk.vectorised_from)
        self.settle_currencies = frozenset(i.settle_ccy for i in self.catalogue)

    def execute(self, command: c.Command) -> list[Event]:
        """Run one command; return its events (a refusal is a ``Rejected`` event).

        Every field is checked at the surface first, so bad input is refused, never raised.
        After the handler (and, for a mark move, the risk pass) any deficit the command left
        is covered (:mod:`backstop.engine.deficits`)."""
        handler = _HANDLERS.get(type(command))
        if handler is None:
            raise TypeError(f"not a command: {command!r}")
        refusal = check_command_surface(command, self.settle_currencies)
        if refusal is not None:
            events: list[Event] = [_refused(command, refusal.code, refusal.msg)]
        else:
            state, config, units = self.state, self.config, self.units
            events = handler(state, config, command)
            units.note(events)
            if isinstance(command, _MOVES_MARK):
                moved = {e.inst_id for e in events if isinstance(e, MarkPriceUpdated)} \
                    if isinstance(command, c.SetIndexPrice) else None
                events.extend(run_risk_checks(state, config, units, command.ts, moved))
            covered = apply_cover_deficits(state, config, events, command.ts)
            if covered:
                units.note(covered)
                events.extend(covered)
        if self.keep_log:
            self.log.append(LogEntry(len(self.log), command, tuple(events)))
        if self.check_invariants:
            ensure_invariants(self.state, events)
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
    def replay(cls, log: Iterable[LogEntry], catalogue: Catalogue | None = None,
               config: EngineConfig | None = None) -> Exchange:
        """Rebuild an exchange from a log (with the catalogue and config it ran with); raises
        ``AssertionError`` if any command now gives different events than were logged."""
        exchange = cls(catalogue, config)
        for entry in log:
            events = exchange.execute(entry.command)
            if tuple(events) != entry.events:
                raise AssertionError(f"Invariant: replay diverged at seq {entry.seq}")
        return exchange
