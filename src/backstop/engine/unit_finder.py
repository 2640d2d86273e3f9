"""The units a risk pass acts on: which to liquidate, which are still liquidatable after the
liquidations, and whose liquidation-warning state changed.

Two ways, with the same answers (tests run seeded markets both ways and compare the logs):

- exact: a Python scan of every position (small books, or ``risk.screen = "exact"``);
- screen: a :class:`~backstop.engine.screen.RiskScreen` kept in step with the state lazily
  (every command marks the accounts its events name as dirty; just before a screen their
  positions and cash are copied in again). One screen per pass gives float liquidation
  candidates and the units whose warning state may have changed; both are confirmed exactly.
  After the liquidations, a unit of an account the pass did not touch keeps its answer from
  the screen; an account the pass touched is checked exactly. So the work after a mark
  update is proportional to what changed, not to the number of positions.

Warning flags (screen path): an isolated slot is flagged when its warning key is in
``state.warned``; a cross book's flags satisfy "the account's cross key is in ``state.warned``
exactly when one of its books is flagged". The screen reports every unit whose sure float
answer disagrees with its flag, or that is near the threshold, so an unreported unit's flag
is its exact state and its key's membership is already right.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from backstop.engine.config import ScreenMode
from backstop.engine.liquidation import Unit, find_liquidatable_units
from backstop.engine.queries import (
    cross_figures,
    instrument_of,
    is_cross_liquidatable,
    is_position_liquidatable,
    isolated_margin,
    lever_cents,
    mm_entry_notional,
    unit_equity_and_requirement,
)
from backstop.engine.screen import Candidates, RiskScreen
from backstop.model.catalogue import Catalogue
from backstop.model.enums import MarginMode
from backstop.model.events import AutoDeleveraged, Event, Filled
from backstop.state.exchange_state import ExchangeState
from backstop.state.positions import Position, PositionKey

WarningKey = tuple[int, str, str]
"""``(uid, inst_id, "isolated")`` or ``(uid, "", "cross")``: one entry of ``state.warned``."""
IsBelow = Callable[[int, int], bool]
"""``is_below(equity, requirement)``: the warning rule (:func:`is_below_warning`)."""


def is_below_warning(equity: int, requirement: int, threshold: Decimal) -> bool:
    """A unit is under the warning threshold when it has exposure and equity < threshold ×
    (MM + fee), compared exactly."""
    return bool(requirement) and Decimal(equity) < threshold * requirement


@dataclass(slots=True)
class WarningUpdate:
    """What a pass changes in ``state.warned``: ``below`` lists ``(key, ccy, equity,
    requirement)`` of every unit that enters it (a warning each, in event order); ``add`` and
    ``discard`` are the keys to put in and take out."""

    below: list[tuple[WarningKey, str, int, int]] = field(default_factory=list)
    add: set[WarningKey] = field(default_factory=set)
    discard: set[WarningKey] = field(default_factory=set)


def unit_of(state: ExchangeState, pos: Position) -> Unit:
    """The unit holding ``pos``."""
    if pos.is_isolated:
        return (pos.uid, "isolated", pos.inst_id)
    return (pos.uid, "cross", instrument_of(state, pos).settle_ccy)


def is_unit_liquidatable(state: ExchangeState, unit: Unit) -> bool:
    """The exact check of one unit (no exposure: not liquidatable)."""
    uid, kind, where = unit
    if kind == "cross":
        return is_cross_liquidatable(state, uid, where)
    pos = state.existing_position(uid, where, MarginMode.ISOLATED)
    return pos is not None and bool(pos.size_lots) and \
        is_position_liquidatable(state, pos, instrument_of(state, pos))


def _units_of_account(state: ExchangeState, uid: int) -> set[Unit]:
    return {unit_of(state, p) for p in state.account_positions.get(uid, {}).values() if p.size_lots}


@dataclass(slots=True)
class _Pass:
    candidates: Candidates
    liquidatable: set[Unit]


class UnitFinder:
    """``find(state)`` → the liquidatable units, in account order; then, within the same risk
    pass, :meth:`is_liquidatable_now`, :meth:`any_liquidatable_now` and
    :meth:`warning_update` answer for the state the liquidations left."""

    def __init__(self, catalogue: Catalogue, mode: str, vectorised_from: int) -> None:
        self.mode = mode
        self.vectorised_from = vectorised_from
        self.catalogue = catalogue
        self.currencies = sorted({inst.settle_ccy for inst in catalogue})
        self.screen: RiskScreen | None = None
        self._dirty: set[int] = set()
        self._known: dict[int, set[PositionKey]] = {}
        self._pass: _Pass | None = None
        self._orphan_iso: set[PositionKey] = set()
        self._orphan_cross: set[int] = set()
        self.opening_order = OpeningOrder()

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

    # ---- the start of a pass ------------------------------------------------------------------
    def find(self, state: ExchangeState, warning_ratio: Decimal = Decimal(0)) -> list[Unit]:
        """The units at or below a 100% margin ratio now, exactly; starts a pass (the screen
        also looks at ``warning_ratio``)."""
        if not self._uses_screen(state):
            self._pass = None
            return find_liquidatable_units(state)
        screen = self._synced_screen(state)
        candidates = screen.screen(state.mark_ticks, float(warning_ratio))
        suspects = [*((uid, "isolated", inst_id) for uid, inst_id, _mode in candidates.isolated),
                    *((uid, "cross", ccy) for uid, ccy in candidates.cross)]
        units = {unit for unit in suspects if is_unit_liquidatable(state, unit)}
        self._pass = _Pass(candidates, units)
        return sorted(units)

    def _uses_screen(self, state: ExchangeState) -> bool:
        if self.mode == ScreenMode.EXACT:
            return False
        if self.mode == ScreenMode.VECTORISED or self.screen is not None:
            return True
        return len(state.positions) >= self.vectorised_from

    def _synced_screen(self, state: ExchangeState) -> RiskScreen:
        if self.screen is None:
            self.screen = RiskScreen(list(self.catalogue), track_triggers=False)
            self._dirty = set(state.account_positions) | set(state.accounts)
            for uid in sorted(self._dirty):
                self._sync_account(state, self.screen, uid)
            self._adopt_orphans(state, self.screen)
            self.opening_order.of(state, [])  # index the positions now, with the screen
        else:
            for uid in sorted(self._dirty):
                self._sync_account(state, self.screen, uid)
        self._dirty.clear()
        return self.screen

    def _sync_account(self, state: ExchangeState, screen: RiskScreen, uid: int) -> None:
        positions = {k: p for k, p in state.account_positions.get(uid, {}).items() if p.size_lots}
        warned = state.warned
        for key in self._known.get(uid, set()) - positions.keys():
            screen.remove(key)
            if (uid, key[1], "isolated") in warned and key[2] is MarginMode.ISOLATED:
                self._orphan_iso.add(key)
        currencies: set[str] = set()
        for key, pos in positions.items():
            inst = instrument_of(state, pos)
            margin = isolated_margin(state, pos, inst) if pos.is_isolated else 0
            screen.upsert(key, pos.inst_id, uid, pos.is_isolated, pos.size_lots, pos.cost, margin,
                          lever_cents(state, uid, inst, pos.mgn_mode), state.adl_rank.get(key, 0),
                          mm_entry_notional(inst, pos))
            if pos.is_isolated:
                screen.set_warned(key, (uid, pos.inst_id, "isolated") in warned)
            else:
                currencies.add(inst.settle_ccy)
        for ccy in currencies:
            screen.set_cash(uid, ccy, cross_figures(state, uid, ccy).cash)
        cross_warned = (uid, "", "cross") in warned
        for ccy in self.currencies:
            screen.set_book_warned(uid, ccy, cross_warned)
        self._known[uid] = set(positions)

    def _adopt_orphans(self, state: ExchangeState, screen: RiskScreen) -> None:
        """Warned keys a new screen holds no flag for (their units are gone): checked at the
        next pass."""
        for uid, inst_id, kind in state.warned:
            if kind == "isolated" and (uid, inst_id, MarginMode.ISOLATED) not in screen:
                self._orphan_iso.add((uid, inst_id, MarginMode.ISOLATED))
            elif kind == "cross" and all(screen.book_slot(uid, c) is None for c in self.currencies):
                self._orphan_cross.add(uid)

    # ---- after the liquidations -----------------------------------------------------------------
    def is_liquidatable_now(self, state: ExchangeState, unit: Unit) -> bool:
        """Whether ``unit`` is at or below a 100% margin ratio in the state now."""
        if self._pass is None or unit[0] in self._dirty:
            return is_unit_liquidatable(state, unit)
        return unit in self._pass.liquidatable

    def any_liquidatable_now(self, state: ExchangeState) -> bool:
        """Whether any unit is at or below a 100% margin ratio in the state now."""
        if self._pass is None:
            return bool(find_liquidatable_units(state))
        if any(unit[0] not in self._dirty for unit in self._pass.liquidatable):
            return True
        return any(is_unit_liquidatable(state, unit)
                   for uid in sorted(self._dirty) for unit in sorted(_units_of_account(state, uid)))

    def screen_after_pass(self, state: ExchangeState) -> RiskScreen | None:
        """The screen in step with the state the pass left (``None`` when the pass scanned
        exactly): the accounts it touched are copied in again and their books' equity set
        exactly; the other books keep the equity of this pass's screen (same marks)."""
        if self._pass is None or self.screen is None:
            return None
        touched = sorted(self._dirty)
        screen = self._synced_screen(state)
        for uid in touched:
            for ccy in self.currencies:
                screen.set_book_equity(uid, ccy, cross_figures(state, uid, ccy).equity)
        return screen

    def warning_update(self, state: ExchangeState, is_below: IsBelow) -> WarningUpdate:
        """How ``state.warned`` changes now: every unit with exposure under the threshold is
        in it; a unit entering it gets a warning (isolated units in position-key order, then
        cross books by ``(uid, ccy)``, as the exact scan gives them)."""
        if self._pass is None:
            return _scanned_warning_update(state, is_below)
        iso_keys, cross_uids = self._warning_suspects(state)
        rows: list[tuple[tuple, WarningKey, str, int, int]] = []
        update = WarningUpdate()
        warned, screen = state.warned, self.screen
        assert screen is not None
        for key in iso_keys:
            wkey = (key[0], key[1], "isolated")
            pos = state.positions.get(key)
            below = False
            if pos is not None and pos.size_lots:
                equity, requirement = unit_equity_and_requirement(state, pos)
                below = is_below(equity, requirement)
                if below and wkey not in warned:
                    rows.append(((0, key[0], key[1]), wkey, instrument_of(state, pos).settle_ccy,
                                 equity, requirement))
            (update.add if below else update.discard).add(wkey)
            screen.set_warned(key, below)
        for uid in cross_uids:
            wkey = (uid, "", "cross")
            exposed = {instrument_of(state, p).settle_ccy
                       for p in state.account_positions.get(uid, {}).values()
                       if p.size_lots and not p.is_isolated}
            any_below = False
            for ccy in self.currencies:
                below = False
                if ccy in exposed:
                    figures = cross_figures(state, uid, ccy)
                    below = is_below(figures.equity, figures.mm_plus_fee)
                    if below and wkey not in warned:
                        rows.append(((1, uid, ccy), wkey, ccy, figures.equity, figures.mm_plus_fee))
                any_below |= below
                screen.set_book_warned(uid, ccy, below)
            (update.add if any_below else update.discard).add(wkey)
        rows.sort(key=lambda row: row[0])
        update.below = [row[1:] for row in rows]
        self._orphan_iso.clear()
        self._orphan_cross.clear()
        return update

    def _warning_suspects(self, state: ExchangeState) -> tuple[set[PositionKey], set[int]]:
        """Isolated position keys and accounts (cross) whose warning state may have changed:
        what the screen reported, orphans, and every unit of an account the pass touched."""
        assert self._pass is not None
        dirty, candidates = self._dirty, self._pass.candidates
        iso_keys = {key for key in candidates.warn_isolated if key[0] not in dirty} | self._orphan_iso
        cross_uids = {uid for uid, _ccy in candidates.warn_cross if uid not in dirty} | self._orphan_cross
        for uid in dirty:
            cross_uids.add(uid)
            for key in self._known.get(uid, set()) | state.account_positions.get(uid, {}).keys():
                if key[2] is MarginMode.ISOLATED:
                    iso_keys.add(key)
        return iso_keys, cross_uids


def _scanned_warning_update(state: ExchangeState, is_below: IsBelow) -> WarningUpdate:
    """The exact scan: every unit with exposure, isolated in position-key order, then cross
    books by ``(uid, ccy)``; ``state.warned`` becomes the set of those below."""
    update = WarningUpdate(discard=set(state.warned))
    cross: set[tuple[int, str]] = set()
    for pos in sorted(state.positions.values(), key=lambda p: p.key):
        if not pos.size_lots:
            continue
        inst = instrument_of(state, pos)
        if pos.is_isolated:
            equity, requirement = unit_equity_and_requirement(state, pos)
            _scanned_unit(update, state, (pos.uid, pos.inst_id, "isolated"), inst.settle_ccy,
                          equity, requirement, is_below)
        else:
            cross.add((pos.uid, inst.settle_ccy))
    for uid, ccy in sorted(cross):
        figures = cross_figures(state, uid, ccy)
        _scanned_unit(update, state, (uid, "", "cross"), ccy, figures.equity, figures.mm_plus_fee,
                      is_below)
    update.discard -= update.add
    return update


def _scanned_unit(update: WarningUpdate, state: ExchangeState, key: WarningKey, ccy: str,
                  equity: int, requirement: int, is_below: IsBelow) -> None:
    if is_below(equity, requirement):
        update.add.add(key)
        if key not in state.warned:
            update.below.append((key, ccy, equity, requirement))


class OpeningOrder:
    """Where positions stand in ``state.positions`` (the order they were opened), for ranking
    exact ties, without a scan per question: an index built once, and the dict's tail (the
    positions opened since, found walking it backwards until an indexed, unchanged
    position) read per question. Rebuilt when the tail passes :attr:`TAIL` positions
    (amortised O(positions / TAIL) per position opened)."""

    TAIL = 4096

    def __init__(self) -> None:
        self._index: dict[PositionKey, tuple[int, object]] = {}

    def of(self, state: ExchangeState, keys: list[PositionKey]) -> dict[PositionKey, int]:
        tail = self._tail(state)
        if len(tail) > self.TAIL:
            self._index = {key: (i, pos) for i, (key, pos) in enumerate(state.positions.items())}
            tail = []
        after = {key: len(self._index) + i for i, key in enumerate(reversed(tail))}
        return {key: after[key] if key in after else self._index[key][0] for key in keys}

    def _tail(self, state: ExchangeState) -> list[PositionKey]:
        """Keys opened since the index was built, newest first."""
        tail, index = [], self._index
        for key in reversed(state.positions):
            entry = index.get(key)
            if entry is not None and entry[1] is state.positions[key]:
                break
            tail.append(key)
        return tail
