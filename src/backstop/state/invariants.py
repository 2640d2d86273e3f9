"""Invariants checked after every step in tests and simulations.

Each failure raises ``AssertionError`` with a message starting ``Invariant:``. None of them
excuses any special case: an account being liquidatable, a fund in ADL mode or a policy.
Two further invariants are checked where the money moves, on the way out, because only
there is the slice visible: an ADL'd winner realizes no loss on the slice closed
(:mod:`backstop.engine.adl`), and ADL runs only in a recorded ADL state (the same module).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from backstop.model.enums import MarginMode
from backstop.state.exchange_state import ExchangeState
from backstop.state.ledger import isolated_key, reserved_key


@dataclass(frozen=True, slots=True)
class ConservationReport:
    """One currency's audit: ``deposits − withdrawals = accounts + unsettled + funds + fees``.

    ``accounts`` is cash, reserved order money and isolated margin; ``unsettled`` is the PnL owed between open
    positions, ``−Σ cost`` (for linear contracts, exactly the sum of every position's upl at
    any common price).
    """

    ccy: str
    deposits: int
    withdrawals: int
    accounts: int
    unsettled: int
    funds: int
    fees: int

    @property
    def difference(self) -> int:
        return (self.deposits - self.withdrawals
                - (self.accounts + self.unsettled + self.funds + self.fees))

    @property
    def ok(self) -> bool:
        return self.difference == 0


def conservation_reports(state: ExchangeState) -> list[ConservationReport]:
    """The audit for every currency seen, from independent sources: deposit counters, ledger
    balances, and positions' cost bases."""
    ledger = state.ledger
    cost_by_ccy: defaultdict[str, int] = defaultdict(int)
    for pos in state.positions.values():
        cost_by_ccy[state.catalogue.instruments[pos.inst_id].settle_ccy] += pos.cost  # type: ignore[index]
    reports = []
    for ccy in sorted(ledger.currencies() | set(cost_by_ccy)):
        reports.append(ConservationReport(
            ccy=ccy,
            deposits=ledger.deposited.get(ccy, 0),
            withdrawals=ledger.withdrawn.get(ccy, 0),
            accounts=(ledger.total_by_kind("cash", ccy) + ledger.total_by_kind("reserved", ccy)
                      + ledger.total_by_kind("isolated", ccy)),
            unsettled=-cost_by_ccy[ccy],
            funds=ledger.total_by_kind("fund", ccy),
            fees=ledger.total_by_kind("fees", ccy),
        ))
    return reports


def ensure_conservation(state: ExchangeState) -> None:
    for report in conservation_reports(state):
        if not report.ok:
            raise AssertionError(f"Invariant: conservation broken in {report.ccy}: {report}")
    sums: defaultdict[str, int] = defaultdict(int)
    for (_kind, _owner, ccy), value in state.ledger.balances.items():
        sums[ccy] += value
    for ccy, total in sums.items():
        if total:
            raise AssertionError(f"Invariant: ledger for {ccy} does not sum to zero ({total})")


def ensure_books_uncrossed(state: ExchangeState) -> None:
    for inst_id, book in state.books.items():
        if book.is_crossed():
            raise AssertionError(f"Invariant: book {inst_id} is crossed")


def ensure_orders_consistent(state: ExchangeState) -> None:
    """Open orders match the books, each account's ``reserved`` ledger balance is exactly
    what its orders reserve (reserved + free cash = the wallet), and the count of reduce-only
    orders per account is the open orders' own."""
    reserved: defaultdict[tuple[int, str], int] = defaultdict(int)
    reduce_only: defaultdict[int, int] = defaultdict(int)
    for uid, orders in state.open_orders.items():
        for ord_id, info in orders.items():
            reduce_only[uid] += info.reduce_only
            resting = state.books[info.inst_id].orders.get(ord_id)
            if resting is None or resting.payload is not info or resting.remaining <= 0:
                raise AssertionError(f"Invariant: open order {ord_id} of {uid} not in its book")
            if info.reserved != info.reserve_per_lot * resting.remaining or info.reserved < 0:
                raise AssertionError(f"Invariant: order {ord_id} reserves {info.reserved}, its "
                                     f"{resting.remaining} lots need {info.reserve_per_lot} each")
            reserved[(uid, info.ccy)] += info.reserved
    booked = sum(len(b.orders) for b in state.books.values())
    if booked != sum(len(o) for o in state.open_orders.values()):
        raise AssertionError("Invariant: books hold orders the engine does not know")
    for (kind, owner, ccy), balance in state.ledger.balances.items():
        if kind == "reserved" and balance != reserved.get((int(owner), ccy), 0):
            raise AssertionError(f"Invariant: account {owner} has {balance} {ccy} reserved, its "
                                 f"orders {reserved.get((int(owner), ccy), 0)}")
    for (uid, ccy), total in reserved.items():
        if total and state.ledger.balance(reserved_key(uid, ccy)) != total:
            raise AssertionError(f"Invariant: orders of {uid} reserve {total} {ccy} the ledger lacks")
    for (uid, cl_ord_id), ord_id in state.live_cl_ord_ids.items():
        info = state.open_orders.get(uid, {}).get(ord_id)
        if info is None or info.cl_ord_id != cl_ord_id:
            raise AssertionError(f"Invariant: clOrdId {cl_ord_id!r} of {uid} names no live order")
    if state.reduce_only_orders != {uid: n for uid, n in reduce_only.items() if n}:
        raise AssertionError("Invariant: the reduce-only order count differs from the open orders")


def ensure_closed_positions_hold_no_margin(state: ExchangeState) -> None:
    for (kind, owner, ccy), value in state.ledger.balances.items():
        if kind != "isolated" or value == 0:
            continue
        uid_text, inst_id = owner.split("/", 1)
        pos = state.existing_position(int(uid_text), inst_id, MarginMode.ISOLATED)
        if pos is None or pos.size_lots == 0:
            raise AssertionError(f"Invariant: closed position {owner} still holds margin {value}"
                                 f" {ccy} (key {isolated_key(int(uid_text), inst_id, ccy)})")


def ensure_no_negative_money(state: ExchangeState) -> None:
    """No account holds negative cash, reserved money or isolated margin, and no fund is
    below zero, once a command completes."""
    for (kind, owner, ccy), value in state.ledger.balances.items():
        if value < 0 and kind in ("cash", "reserved", "isolated", "fund"):
            raise AssertionError(f"Invariant: {kind} of {owner} is {value} {ccy} (negative)")


def ensure_adl_recorded(state: ExchangeState, events: Iterable[object]) -> None:
    """Every ADL trade of the command happened while its fund was in a recorded ADL state.

    The events are replayed in order: a fund is in ADL mode from an ``adl`` start record to
    its ``adl_end``; at the start of the command it was in the mode its first record in the
    command leaves (``adl_end`` means it was), or else in the mode it is in now."""
    events = list(events)
    active = {f.fund_id for f in state.funds.values() if f.adl_state}
    seen: set[str] = set()
    for event in events:
        if type(event).__name__ == "AdlStateChanged" and event.fund_id not in seen:  # type: ignore[attr-defined]
            seen.add(event.fund_id)  # type: ignore[attr-defined]
            if event.adl_type == "adl_end":  # type: ignore[attr-defined]
                active.add(event.fund_id)  # type: ignore[attr-defined]
            else:
                active.discard(event.fund_id)  # type: ignore[attr-defined]
    for event in events:
        kind = type(event).__name__
        if kind == "AdlStateChanged":
            if event.adl_type == "adl_end":  # type: ignore[attr-defined]
                active.discard(event.fund_id)  # type: ignore[attr-defined]
            else:
                active.add(event.fund_id)  # type: ignore[attr-defined]
        elif kind in ("AutoDeleveraged", "ProfitHaircut") and state.fund_of[event.inst_id] not in active:  # type: ignore[attr-defined]
            raise AssertionError(f"Invariant: ADL on {event.inst_id} "  # type: ignore[attr-defined]
                                 "outside a recorded ADL state")


def ensure_invariants(state: ExchangeState, events: Iterable[object] = ()) -> None:
    """Every invariant; raises on the first breach. ``events`` are the last command's."""
    ensure_conservation(state)
    ensure_books_uncrossed(state)
    ensure_orders_consistent(state)
    ensure_closed_positions_hold_no_margin(state)
    ensure_no_negative_money(state)
    ensure_adl_recorded(state, events)
