"""Invariants checked after every step in tests and simulations.

Each failure raises ``AssertionError`` with a message starting ``Invariant:``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from backstop.model.enums import MarginMode
from backstop.state.exchange_state import ExchangeState
from backstop.engine.queries import account_negative_outside_liquidation
from backstop.state.ledger import isolated_key


@dataclass(frozen=True, slots=True)
class ConservationReport:
    """One currency's audit: ``deposits − withdrawals = accounts + unsettled + funds + fees``.

    ``accounts`` is cash plus isolated margin; ``unsettled`` is the PnL owed between open
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
            accounts=ledger.total_by_kind("cash", ccy) + ledger.total_by_kind("isolated", ccy),
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
    """Open orders match the books, and frozen margin totals match the orders."""
    frozen: defaultdict[tuple[int, str], int] = defaultdict(int)
    for uid, orders in state.open_orders.items():
        for ord_id, info in orders.items():
            resting = state.books[info.inst_id].orders.get(ord_id)
            if resting is None or resting.payload is not info or resting.remaining <= 0:
                raise AssertionError(f"Invariant: open order {ord_id} of {uid} not in its book")
            if info.frozen < 0:
                raise AssertionError(f"Invariant: order {ord_id} has negative frozen margin")
            frozen[(uid, info.ccy)] += info.frozen
    booked = sum(len(b.orders) for b in state.books.values())
    if booked != sum(len(o) for o in state.open_orders.values()):
        raise AssertionError("Invariant: books hold orders the engine does not know")
    for key, total in state.frozen.items():
        if total != frozen.get(key, 0):
            raise AssertionError(f"Invariant: frozen margin of {key} is {total}, orders say "
                                 f"{frozen.get(key, 0)}")


def ensure_closed_positions_hold_no_margin(state: ExchangeState) -> None:
    for (kind, owner, ccy), value in state.ledger.balances.items():
        if kind != "isolated" or value == 0:
            continue
        uid_text, inst_id = owner.split("/", 1)
        pos = state.existing_position(int(uid_text), inst_id, MarginMode.ISOLATED)
        if pos is None or pos.size_lots == 0:
            raise AssertionError(f"Invariant: closed position {owner} still holds margin {value}"
                                 f" {ccy} (key {isolated_key(int(uid_text), inst_id, ccy)})")


def ensure_no_negative_free_balance(state: ExchangeState) -> None:
    """Outside a liquidation no account has negative equity: an account with negative cross
    equity or a negative isolated position must be at or below maintenance (liquidatable)."""
    uid = account_negative_outside_liquidation(state)
    if uid is not None:
        raise AssertionError(f"Invariant: account {uid} has negative equity but is not "
                             "liquidatable")


def ensure_invariants(state: ExchangeState) -> None:
    """Every invariant; raises on the first breach."""
    ensure_conservation(state)
    ensure_books_uncrossed(state)
    ensure_orders_consistent(state)
    ensure_closed_positions_hold_no_margin(state)
    ensure_no_negative_free_balance(state)
