"""Which units to liquidate: an exact scan for small books, or the vectorised screen.

The vectorised path keeps a :class:`~backstop.engine.screen.RiskScreen` in step with the
state lazily: every command marks the accounts its events name as dirty, and just before a
screen their positions and cash are copied in again. Its float candidates are then confirmed
exactly against the real state, so both paths liquidate exactly the same units (a test runs a
seeded market both ways and compares the event logs).
"""

from __future__ import annotations

from collections.abc import Iterable

from backstop.engine.config import ScreenMode
from backstop.engine.liquidation import Unit, find_liquidatable_units
from backstop.engine.queries import (
    cross_figures,
    instrument_of,
    is_cross_liquidatable,
    is_position_liquidatable,
    isolated_margin,
)
from backstop.engine.screen import RiskScreen
from backstop.model.catalogue import Catalogue
from backstop.model.enums import MarginMode
from backstop.model.events import AutoDeleveraged, Event, Filled
from backstop.state.exchange_state import ExchangeState
from backstop.state.positions import PositionKey


class UnitFinder:
    """``find(state)`` → the liquidatable units, in account order."""

    def __init__(self, catalogue: Catalogue, mode: str, vectorised_from: int) -> None:
        self.mode = mode
        self.vectorised_from = vectorised_from
        self.catalogue = catalogue
        self._screen: RiskScreen | None = None
        self._dirty: set[int] = set()
        self._known: dict[int, set[PositionKey]] = {}

    def note(self, events: Iterable[Event]) -> None:
        """Mark the accounts these events touched."""
        dirty = self._dirty
        for event in events:
            if isinstance(event, Filled):
                dirty.add(event.taker_uid)
                dirty.add(event.maker_uid)
            elif isinstance(event, AutoDeleveraged):
                dirty.add(event.uid)
                dirty.add(event.liquidated_uid)
            else:
                uid = getattr(event, "uid", None)
                if uid is not None:
                    dirty.add(uid)

    def find(self, state: ExchangeState) -> list[Unit]:
        if not self._uses_screen(state):
            return find_liquidatable_units(state)
        screen = self._synced_screen(state)
        candidates = screen.screen(state.mark_ticks)
        units: set[Unit] = set()
        for uid, inst_id, _mode in candidates.isolated:
            pos = state.existing_position(uid, inst_id, MarginMode.ISOLATED)
            if pos is not None and pos.size_lots and \
                    is_position_liquidatable(state, pos, instrument_of(state, pos)):
                units.add((uid, "isolated", inst_id))
        units.update((uid, "cross", ccy) for uid, ccy in candidates.cross
                     if is_cross_liquidatable(state, uid, ccy))
        return sorted(units)

    def _uses_screen(self, state: ExchangeState) -> bool:
        if self.mode == ScreenMode.EXACT:
            return False
        if self.mode == ScreenMode.VECTORISED or self._screen is not None:
            return True
        return len(state.positions) >= self.vectorised_from

    def _synced_screen(self, state: ExchangeState) -> RiskScreen:
        if self._screen is None:
            self._screen = RiskScreen(list(self.catalogue), track_triggers=False)
            self._dirty = set(state.account_positions) | set(state.accounts)
        for uid in sorted(self._dirty):
            self._sync_account(state, self._screen, uid)
        self._dirty.clear()
        return self._screen

    def _sync_account(self, state: ExchangeState, screen: RiskScreen, uid: int) -> None:
        positions = state.account_positions.get(uid, {})
        for key in self._known.get(uid, set()) - positions.keys():
            screen.remove(key)
        currencies: set[str] = set()
        for key, pos in positions.items():
            inst = instrument_of(state, pos)
            margin = isolated_margin(state, pos, inst) if pos.is_isolated else 0
            screen.upsert(key, pos.inst_id, uid, pos.is_isolated, pos.size_lots, pos.cost, margin)
            if not pos.is_isolated:
                currencies.add(inst.settle_ccy)
        for ccy in currencies:
            screen.set_cash(uid, ccy, cross_figures(state, uid, ccy).cash)
        self._known[uid] = set(positions)
